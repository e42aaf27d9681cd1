-- wrk script: the harness's get by identity (user_id of a preloaded profile).
-- KEY=<api key> wrk -t1 -c32 -d6s -s bench/get.lua http://127.0.0.1:8080
local key = os.getenv("KEY")
request = function()
  local uid = string.format("u%014d", math.random(0, 99999))
  return wrk.format("GET", "/v1/profiles/by/user_id/" .. uid, {["Authorization"] = "Bearer " .. key})
end
