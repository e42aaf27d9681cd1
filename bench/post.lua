-- One POST, over and over: the body in BODY, the credential header in AUTH_HEADER
-- ("Authorization" unless set) with the value AUTH_VALUE ("Bearer $PROFILED_BENCH_KEY" unless set).
--   BODY='{"filter": "properties.plan = \"pro\"", "limit": 20}' wrk -t1 -c32 -d6s -s bench/post.lua http://127.0.0.1:8080/v1/profiles/search
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers[os.getenv("AUTH_HEADER") or "Authorization"] =
  os.getenv("AUTH_VALUE") or ("Bearer " .. os.getenv("PROFILED_BENCH_KEY"))
