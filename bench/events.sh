#!/usr/bin/env bash
# Event ingestion: preloads PROFILES profiles (default 100,000) into a fresh data directory,
# serves it, and sends batches of 100 events (bench/events.lua) for DUR seconds over CONN
# connections; prints events per second and batch latency.
#   bench/events.sh
#   COMPUTED=1 bench/events.sh     with three workspace-defined computed properties, one windowed
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILES=${PROFILES:-100000}
DATA=target/bench-data/events
PORT=${PORT:-18094}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }

cargo build --release -q -p profiled -p profiled-bench
rm -rf "$DATA"
mkdir -p target/bench-data
export PROFILED_BENCH_KEY=$(target/release/profiled-bench preload --profiles "$PROFILES" --data-dir "$DATA")
ADMIN_KEY=$(target/release/profiled keys create --data-dir "$DATA" --workspace bench --scope admin)
target/release/profiled serve --data-dir "$DATA" --listen 127.0.0.1:$PORT --log-level warn 2> target/bench-data/events-server.log &
SERVER=$!
trap 'kill $SERVER 2>/dev/null' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
if [ -n "${COMPUTED:-}" ]; then
  define() {
    curl -sf -X PUT http://127.0.0.1:$PORT/v1/computed/$1 -H "Authorization: Bearer $ADMIN_KEY" \
      -H 'Content-Type: application/json' -d "$2" >/dev/null
  }
  define spent '{"event": "purchase", "aggregate": "sum", "property": "amount"}'
  define biggest '{"event": "purchase", "aggregate": "max", "property": "amount"}'
  define clicks_7d '{"event": "click", "aggregate": "count", "window": "7d"}'
fi
PROFILES=$PROFILES wrk -t1 -c"${CONN:-8}" -d"${DUR:-20}"s --timeout 10s -s bench/events.lua http://127.0.0.1:$PORT
