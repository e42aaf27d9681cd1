-- POST /v1/events with batches of 100 events for random preloaded users (u0 .. u<PROFILES-1>):
-- page views, clicks and purchases with an amount and a browser user agent.
math.randomseed(11)
local profiles = tonumber(os.getenv("PROFILES") or "100000")
local names = {"page_view", "click", "purchase"}
local agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
local headers = {["Authorization"] = "Bearer " .. os.getenv("PROFILED_BENCH_KEY"), ["Content-Type"] = "application/json"}
request = function()
  local events = {}
  for i = 1, 100 do
    events[i] = string.format(
      '{"identities":{"user_id":"u%d"},"name":"%s","properties":{"amount":%d},"context":{"user_agent":"%s"}}',
      math.random(0, profiles - 1), names[math.random(1, 3)], math.random(1, 500), agent)
  end
  return wrk.format("POST", "/v1/events", headers, '{"events":[' .. table.concat(events, ",") .. ']}')
end
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format("events/s: %.0f (batches/s %.1f), p50 %.1f ms, p99 %.1f ms, errors %d\n",
    summary.requests * 100 / seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
