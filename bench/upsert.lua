-- wrk script: upserts by user_id + email setting ten properties (the shape of the harness's upsert), bodies built in Lua (lighter on wrk than the harness's templates).
-- KEY=<api key> wrk -t1 -c32 -d8s -s bench/upsert.lua http://127.0.0.1:8080
local key = os.getenv("KEY")
local plans = {"free","pro","team","enterprise"}
request = function()
  local n = math.random(0, 99999)
  local uid = string.format("u%014d", n)
  local body = string.format('{"identities":{"user_id":"%s","email":"user%d@example.com"},"set":{"plan":"%s","age":%d,"score":%f,"country":"DE","lang":"de","newsletter":true,"tags":["a","b"],"address":{"city":"Berlin","zip":"10115"},"last_login":%d,"visits":%d}}', uid, n, plans[math.random(1,4)], math.random(18,90), math.random(), math.random(1,1000000), math.random(1,1000))
  return wrk.format("POST", "/v1/profiles", {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}, body)
end
