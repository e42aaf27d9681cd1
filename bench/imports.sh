#!/usr/bin/env bash
# Bulk import over HTTP into a fresh server: PROFILES generated profiles (default 100,000) as
# profiled's NDJSON (POST /v1/imports), then the same profiles as a mediarithmics document
# import execution (/compat/mediarithmics), each into an empty workspace of its own; prints
# the time and rate of each.
#   bench/imports.sh
#   PROFILES=1000000 bench/imports.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILES=${PROFILES:-100000}
DATA=target/bench-data/imports
PORT=${PORT:-18095}
API=http://127.0.0.1:$PORT

cargo build --release -q -p profiled -p profiled-bench
rm -rf "$DATA" && mkdir -p "$DATA"
target/release/profiled-bench ndjson --profiles "$PROFILES" > "$DATA/profiled.ndjson"
target/release/profiled-bench ndjson --profiles "$PROFILES" --dialect mediarithmics > "$DATA/mediarithmics.ndjson"
NATIVE=$(target/release/profiled workspaces create native --data-dir "$DATA/db")
MICS=$(target/release/profiled workspaces create mics --data-dir "$DATA/db")
target/release/profiled serve --data-dir "$DATA/db" --listen 127.0.0.1:$PORT --log-level warn 2> "$DATA/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null' EXIT
for _ in $(seq 50); do curl -sf $API/healthz >/dev/null && break; sleep 0.1; done

rate() { python3 -c "import sys; n, s = int(sys.argv[1]), float(sys.argv[2]); print(f'{n} profiles in {s:.2f} s: {n / s:,.0f} profiles/s')" "$@"; }

start=$(date +%s.%N)
curl -sf -X POST $API/v1/imports -H "Authorization: Bearer $NATIVE" -H 'Content-Type: application/x-ndjson' \
  --data-binary @"$DATA/profiled.ndjson" > "$DATA/native-report.json"
end=$(date +%s.%N)
echo "profiled NDJSON (POST /v1/imports):   $(rate "$PROFILES" "$(echo "$end - $start" | bc)")"

IMPORT=$(curl -sf -X POST $API/compat/mediarithmics/v1/datamarts/mics/document_imports -H "Authorization: $MICS" \
  -H 'Content-Type: application/json' \
  -d '{"document_type": "USER_PROFILE", "mime_type": "APPLICATION_X_NDJSON", "encoding": "utf-8", "name": "bench"}' \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["id"])')
start=$(date +%s.%N)
curl -sf -X POST $API/compat/mediarithmics/v1/datamarts/mics/document_imports/$IMPORT/executions \
  -H "Authorization: $MICS" -H 'Content-Type: application/x-ndjson' \
  --data-binary @"$DATA/mediarithmics.ndjson" > "$DATA/mediarithmics-report.json"
end=$(date +%s.%N)
echo "mediarithmics execution:               $(rate "$PROFILES" "$(echo "$end - $start" | bc)")"
python3 - "$DATA" <<'PY'
import json, sys
native = json.load(open(f"{sys.argv[1]}/native-report.json"))["counts"]
mics = json.load(open(f"{sys.argv[1]}/mediarithmics-report.json"))["data"]["result"]
print("native counts:", native)
print("mediarithmics result:", mics)
PY
