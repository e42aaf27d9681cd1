-- wrk script: the harness's search (properties.plan = X, limit 20), bodies built in Lua (lighter on wrk).
-- KEY=<api key> wrk -t1 -c32 -d6s -s bench/search.lua http://127.0.0.1:8080
local key = os.getenv("KEY")
local plans = {"free","starter","pro","enterprise"}
request = function()
  local body = string.format('{"filter":"properties.plan = \\"%s\\"","limit":20}', plans[math.random(1,4)])
  return wrk.format("POST", "/v1/profiles/search", {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}, body)
end
