-- wrk script: the harness's merge workload (one property set by user_id), bodies built in Lua (lighter on wrk than the harness's templates).
-- KEY=<api key> wrk -t1 -c32 -d8s -s bench/merge.lua http://127.0.0.1:8080
local key = os.getenv("KEY")
request = function()
  local uid = string.format("u%014d", math.random(0, 99999))
  local body = string.format('{"identities":{"user_id":"%s"},"set":{"last_seen":%d}}', uid, math.random(1,1000000000))
  return wrk.format("POST", "/v1/profiles", {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}, body)
end
