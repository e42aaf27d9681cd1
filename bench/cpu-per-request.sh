#!/usr/bin/env bash
# The server's CPU time per request, which varies less than req/s on a shared machine: serves a
# fresh copy of a preloaded data directory with BINARY, warms it with SCRIPT for 2 s, then
# divides the server's CPU time (utime + stime, /proc/PID/stat) over D seconds of wrk by the
# requests served. Run it alternately for the builds or settings being compared.
#   target/release/profiled-bench preload --profiles 100000 --data-dir /tmp/bd > /tmp/bd.key
#   bench/cpu-per-request.sh LABEL BINARY get     (or search, upsert, merge: bench/SCRIPT.lua)
# Settings: SOURCE (/tmp/bd), KEY_FILE (/tmp/bd.key), D (seconds, 6). Environment variables
# such as PROFILED_SQLITE__MMAP_MIB reach the server.
# On PostgreSQL, with DATABASE_URL set, it serves the preloaded schema profiled_bench as it is
# (no copy) and also reports the database's CPU per request (every `postgres` process):
#   target/release/profiled-bench preload --profiles 100000 --database-url "$DATABASE_URL" --schema profiled_bench > /tmp/pg.key
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test KEY_FILE=/tmp/pg.key bench/cpu-per-request.sh LABEL BINARY get
set -euo pipefail
cd "$(dirname "$0")/.."
LABEL=$1 BINARY=$2 SCRIPT=$3
KEY=$(cat "${KEY_FILE:-/tmp/bd.key}")
if [ -n "${DATABASE_URL:-}" ]; then
  PROFILED_DATABASE_URL=$DATABASE_URL PROFILED_POSTGRES__SCHEMA=profiled_bench \
    "$BINARY" serve --listen 127.0.0.1:8080 --log-level warn 2> target/cpu-server.log &
  SERVER_PID=$!
  trap 'kill $SERVER_PID; wait $SERVER_PID 2>/dev/null || true' EXIT
  for _ in $(seq 50); do curl -sf http://127.0.0.1:8080/healthz >/dev/null && break; sleep 0.1; done
else
  SOURCE=${SOURCE:-/tmp/bd} COPY=${SOURCE}-cpu
  . bench/serve-copy.sh
  serve_copy "$BINARY" "$SOURCE" "$COPY" target/cpu-server.log
  trap 'stop_copy "$COPY"' EXIT
fi
KEY=$KEY wrk -t1 -c32 -d2s -s "bench/$SCRIPT.lua" http://127.0.0.1:8080 >/dev/null
ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
# "pid ticks" of every database process; one that starts meanwhile counts from zero.
database_ticks() {
  for pid in $(pgrep -f '^postgres' || true); do
    echo "$pid $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null)"
  done
}
before=$(ticks) database_before=$(database_ticks)
out=$(KEY=$KEY wrk -t1 -c32 -d"${D:-6}"s -s "bench/$SCRIPT.lua" http://127.0.0.1:8080)
after=$(ticks) database_after=$(database_ticks)
requests=$(echo "$out" | awk '/requests in/ {print $1}')
rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
DATABASE_BEFORE=$database_before DATABASE_AFTER=$database_after python3 - <<PY
import os
tick = 1e6 / os.sysconf('SC_CLK_TCK') / $requests
line = '$LABEL $SCRIPT req/s=$rps server_cpu_us_per_request=%.1f' % (($after - $before) * tick)
if '${DATABASE_URL:-}':
    read = lambda name: dict(l.split() for l in os.environ[name].splitlines() if len(l.split()) == 2)
    before, after = read('DATABASE_BEFORE'), read('DATABASE_AFTER')
    used = sum(int(t) - int(before.get(pid, 0)) for pid, t in after.items())
    line += ' database_cpu_us_per_request=%.1f' % (used * tick)
print(line)
PY
