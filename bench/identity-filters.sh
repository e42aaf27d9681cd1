#!/usr/bin/env bash
# Counts with identity filters: serves a fresh copy of a preloaded data directory with BINARY
# and prints the median time of 20 `POST /v1/profiles/count` for each filter, with its count.
# Run it alternately for the builds being compared.
#   target/release/profiled-bench preload --profiles 100000 --data-dir /tmp/bd > /tmp/bd.key
#   bench/identity-filters.sh LABEL BINARY
# Settings: SOURCE (/tmp/bd), KEY_FILE (/tmp/bd.key).
set -euo pipefail
cd "$(dirname "$0")/.."
LABEL=$1 BINARY=$2
SOURCE=${SOURCE:-/tmp/bd} COPY=${SOURCE:-/tmp/bd}-identities
. bench/serve-copy.sh
serve_copy "$BINARY" "$SOURCE" "$COPY" target/identity-filters-server.log
trap 'stop_copy "$COPY"' EXIT
KEY=$(cat "${KEY_FILE:-/tmp/bd.key}") LABEL=$LABEL python3 - <<'PY'
import json, os, statistics, time, urllib.request

def count(filter_text):
    request = urllib.request.Request(
        "http://127.0.0.1:8080/v1/profiles/count",
        data=json.dumps({"filter": filter_text}).encode(),
        headers={"Authorization": "Bearer " + os.environ["KEY"], "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)["count"]

for filter_text in ['identities.email = "user5@example.com"', 'identities.email starts_with "user99"']:
    times = []
    for _ in range(20):
        started = time.perf_counter()
        n = count(filter_text)
        times.append(time.perf_counter() - started)
    print(f'{os.environ["LABEL"]} {filter_text} count={n} median_ms={statistics.median(times) * 1000:.1f}')
PY
