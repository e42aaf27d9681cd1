#!/usr/bin/env bash
# One build against another on the same data: serves a fresh copy of a preloaded data
# directory with BINARY and drives the workloads, then stops it. Run it alternately for the
# builds being compared; each run starts from the same data.
#   target/release/profiled-bench preload --profiles 100000 --data-dir /tmp/bd > /tmp/bd.key
#   bench/ab.sh LABEL BINARY                      the peers' harness (bench.py), W=upsert,merge
#   TOOL=wrk bench/ab.sh LABEL BINARY             the lighter wrk scripts, SCRIPTS="upsert merge"
# Settings: SOURCE (/tmp/bd), KEY_FILE (/tmp/bd.key), D (seconds, 10), OUT (target/bench-data/ab.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."
LABEL=$1 BINARY=$2
SOURCE=${SOURCE:-/tmp/bd} COPY=${SOURCE}-ab KEY=$(cat "${KEY_FILE:-/tmp/bd.key}")
. bench/serve-copy.sh
serve_copy "$BINARY" "$SOURCE" "$COPY" target/ab-server.log
trap 'stop_copy "$COPY"' EXIT
if [ "${TOOL:-harness}" = wrk ]; then
  line=$LABEL
  for s in ${SCRIPTS:-upsert merge}; do
    line="$line $s=$(KEY=$KEY wrk -t1 -c32 -d"${D:-8}"s -s bench/$s.lua http://127.0.0.1:8080 | awk '/Requests\/sec/ {print $2}')"
  done
  echo "$line"
else
  PROFILED_BENCH_KEY=$KEY python3 "${HARNESS:-../shared/bench}/harness/bench.py" run --adapter bench/profiled.json \
    --duration "${D:-10}" --connections 32 --repeat 1 --variant "$LABEL" --quiet-wait 3 \
    --workload "${W:-upsert,merge}" --out "${OUT:-target/bench-data/ab.jsonl}" | grep "req/s"
fi
