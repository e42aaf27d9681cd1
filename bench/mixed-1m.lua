math.randomseed(7)
local plans = {"free", "starter", "pro", "enterprise"}
request = function()
  if math.random() < 0.5 then
    local n = math.random(0, 999999)
    -- PADDED=1: the user ids `profiled-bench preload` writes (u%014d); else the search data set's.
    local id = os.getenv("PADDED") and string.format("u%014d", n) or ("u" .. n)
    return wrk.format("GET", "/v1/profiles/by/user_id/" .. id, {["Authorization"]="Bearer " .. os.getenv("PROFILED_BENCH_KEY")})
  end
  return wrk.format("POST", "/v1/profiles/search", {["Authorization"]="Bearer " .. os.getenv("PROFILED_BENCH_KEY"), ["Content-Type"]="application/json"}, '{"filter": "properties.plan = \\"' .. plans[math.random(1,4)] .. '\\"", "limit": 20}')
end
