#!/usr/bin/env bash
# The server's CPU time per request, which varies less than req/s on a shared machine: serves a
# fresh copy of a preloaded data directory with BINARY, warms it with SCRIPT for 2 s, then
# divides the server's CPU time (utime + stime, /proc/PID/stat) over D seconds of wrk by the
# requests served. Run it alternately for the builds or settings being compared.
#   target/release/profiled-bench preload --profiles 100000 --data-dir /tmp/bd > /tmp/bd.key
#   bench/cpu-per-request.sh LABEL BINARY get     (or search, upsert, merge: bench/SCRIPT.lua)
# Settings: SOURCE (/tmp/bd), KEY_FILE (/tmp/bd.key), D (seconds, 6). Environment variables
# such as PROFILED_SQLITE__MMAP_MIB reach the server.
set -euo pipefail
cd "$(dirname "$0")/.."
LABEL=$1 BINARY=$2 SCRIPT=$3
SOURCE=${SOURCE:-/tmp/bd} COPY=${SOURCE}-cpu KEY=$(cat "${KEY_FILE:-/tmp/bd.key}")
. bench/serve-copy.sh
serve_copy "$BINARY" "$SOURCE" "$COPY" target/cpu-server.log
trap 'stop_copy "$COPY"' EXIT
KEY=$KEY wrk -t1 -c32 -d2s -s "bench/$SCRIPT.lua" http://127.0.0.1:8080 >/dev/null
ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
before=$(ticks)
out=$(KEY=$KEY wrk -t1 -c32 -d"${D:-6}"s -s "bench/$SCRIPT.lua" http://127.0.0.1:8080)
after=$(ticks)
requests=$(echo "$out" | awk '/requests in/ {print $1}')
rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
python3 -c "import os; print('$LABEL $SCRIPT req/s=$rps server_cpu_us_per_request=%.1f' % (($after - $before) * 1e6 / os.sysconf('SC_CLK_TCK') / $requests))"
