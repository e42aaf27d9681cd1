#!/usr/bin/env bash
# HTTP benchmark of profiled with the peers' harness (../shared/bench): builds a release,
# preloads PROFILES generated profiles (default 100,000) into a fresh data directory, serves
# it on 127.0.0.1:8080 and drives the five workloads with wrk (DUR seconds, CONN connections,
# REPEAT runs each). Results go to target/bench-data/runs.jsonl and are printed as a table.
#   bench/run.sh                      all workloads
#   DUR=10 REPEAT=1 bench/run.sh      shorter
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test bench/run.sh
#                                     the same on PostgreSQL (schema profiled_bench, recreated)
#   SEGMENTS=50 WORKLOADS=upsert bench/run.sh
#                                     with 50 live segments (bench/segments.py), backfilled first
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=${HARNESS:-../shared/bench}
PROFILES=${PROFILES:-100000}
DATA=target/bench-data/http
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }

cargo build --release -q -p profiled -p profiled-bench
rm -rf "$DATA"
mkdir -p target/bench-data
if [ -n "${DATABASE_URL:-}" ]; then
  psql "$DATABASE_URL" -qc "DROP SCHEMA IF EXISTS profiled_bench CASCADE"
  export PROFILED_DATABASE_URL="$DATABASE_URL" PROFILED_POSTGRES__SCHEMA=profiled_bench
  export PROFILED_POSTGRES__MAX_CONNECTIONS=${PG_CONNECTIONS:-32}
  VARIANT=${VARIANT:-postgres}
  export PROFILED_BENCH_KEY=$(target/release/profiled-bench preload --profiles "$PROFILES" --database-url "$DATABASE_URL" --schema profiled_bench)
  # What autovacuum would do soon after a bulk load: statistics and the visibility map
  # (index-only counts need it).
  psql "$DATABASE_URL" -qc "VACUUM ANALYZE profiled_bench.profiles, profiled_bench.identities"
else
  export PROFILED_BENCH_KEY=$(target/release/profiled-bench preload --profiles "$PROFILES" --data-dir "$DATA")
fi

# Started as the harness starts every peer (pb.sh, parse.sh, pg.sh): in a session of its own
# at nice -10, and that session's autogroup raised to -10 too, so that it shares the cores with
# wrk (which the harness runs the same way) on equal terms.
setsid nice -n "${BENCH_NICE:--10}" target/release/profiled serve --data-dir "$DATA" --listen 127.0.0.1:8080 \
  --log-level "${LOG_LEVEL:-warn}" 2> target/bench-data/server.log < /dev/null &
echo $! > /tmp/profiled-bench.pid
sleep 0.2; "$HARNESS/harness/prio.sh" "$(cat /tmp/profiled-bench.pid)" >/dev/null
trap 'kill $(cat /tmp/profiled-bench.pid) 2>/dev/null; rm -f /tmp/profiled-bench.pid' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:8080/healthz >/dev/null && break; sleep 0.1; done
if [ "${SEGMENTS:-0}" -gt 0 ]; then
  [ -z "${DATABASE_URL:-}" ] || { echo "SEGMENTS runs on the embedded default only" >&2; exit 2; }
  ADMIN_KEY=$(target/release/profiled keys create --data-dir "$DATA" --workspace bench --scope admin)
  python3 bench/segments.py http://127.0.0.1:8080 "$ADMIN_KEY" "$SEGMENTS"
  VARIANT=${VARIANT:-segments-$SEGMENTS}
fi

python3 "$HARNESS/harness/bench.py" run --adapter bench/profiled.json \
  --duration "${DUR:-15}" --connections "${CONN:-32}" --repeat "${REPEAT:-2}" \
  --variant "${VARIANT:-default}" --quiet-wait "${QUIET_WAIT:-20}" --workload "${WORKLOADS:-all}" \
  --out target/bench-data/runs.jsonl
python3 "$HARNESS/harness/bench.py" report --out target/bench-data/runs.jsonl --last "${REPEAT:-2}"
