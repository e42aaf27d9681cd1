#!/usr/bin/env bash
# The server's instructions per request, counted by callgrind, which repeats exactly on a noisy
# machine: serves a fresh copy of a preloaded data directory under valgrind, sends N1 and then
# N2 sequential requests on one connection (two servings), and divides the difference of the
# two totals by N2 - N1, so that start-up and shutdown cancel out. The requests are gets by
# user id, with WORKLOAD=search the harness's search (`properties.plan = X`, limit 20), or with
# WORKLOAD=upsert the upserts of bench/upsert.lua, one at a time (each commits on its own).
#   target/release/profiled-bench preload --profiles 100000 --data-dir /tmp/bd > /tmp/bd.key
#   bench/callgrind-requests.sh BINARY            (N1=200, N2=2200; SOURCE=/tmp/bd, KEY_FILE=/tmp/bd.key)
#   WORKLOAD=search bench/callgrind-requests.sh BINARY
#   WORKLOAD=upsert bench/callgrind-requests.sh BINARY
# KEEP=FILE keeps the larger run's callgrind output for callgrind_annotate.
set -euo pipefail
BINARY=$1 N1=${N1:-200} N2=${N2:-2200}
SOURCE=${SOURCE:-/tmp/bd} KEY_FILE=${KEY_FILE:-/tmp/bd.key} COPY=${SOURCE}-callgrind
total() {
  rm -rf "$COPY" && cp -r "$SOURCE" "$COPY"
  valgrind --tool=callgrind --callgrind-out-file="$COPY.out" "$BINARY" serve --data-dir "$COPY" \
    --listen 127.0.0.1:8080 --log-level warn >/dev/null 2>&1 &
  local server=$!
  python3 - "$1" "$KEY_FILE" "${WORKLOAD:-get}" <<'PY'
import http.client, json, random, sys, time
n, key, workload = int(sys.argv[1]), open(sys.argv[2]).read().strip(), sys.argv[3]
for _ in range(600):
    try:
        c = http.client.HTTPConnection('127.0.0.1', 8080, timeout=60)
        c.request('GET', '/healthz'); c.getresponse().read(); break
    except OSError:
        time.sleep(0.2)
random.seed(1)
auth = {'Authorization': 'Bearer ' + key}
for _ in range(n):
    if workload == 'upsert':
        # The shape of bench/upsert.lua; one at a time, so each is a batch of its own.
        n = random.randint(0, 99999)
        body = json.dumps({'identities': {'user_id': 'u%014d' % n, 'email': 'user%d@example.com' % n},
                           'set': {'plan': random.choice(['free', 'pro', 'team', 'enterprise']),
                                   'age': random.randint(18, 90), 'score': random.random(),
                                   'country': 'DE', 'lang': 'de', 'newsletter': True, 'tags': ['a', 'b'],
                                   'address': {'city': 'Berlin', 'zip': '10115'},
                                   'last_login': random.randint(1, 1000000), 'visits': random.randint(1, 1000)}},
                          separators=(',', ':'))
        c.request('POST', '/v1/profiles', body,
                  headers=dict(auth, **{'Content-Type': 'application/json'}))
    elif workload == 'search':
        plan = random.choice(['free', 'starter', 'pro', 'enterprise'])
        body = json.dumps({'filter': 'properties.plan = "%s"' % plan, 'limit': 20})
        c.request('POST', '/v1/profiles/search', body,
                  headers=dict(auth, **{'Content-Type': 'application/json'}))
    else:
        c.request('GET', '/v1/profiles/by/user_id/u%014d' % random.randint(0, 99999), headers=auth)
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
  kill -TERM "$server"; wait "$server" || true
  grep -m1 '^summary' "$COPY.out" | awk '{print $2}'
}
small=$(total "$N1")
large=$(total "$N2")
[ -z "${KEEP:-}" ] || cp "$COPY.out" "$KEEP"
rm -rf "$COPY" "$COPY.out"
echo "$(basename "$BINARY") ${WORKLOAD:-get} instructions_per_request=$(( (large - small) / (N2 - N1) ))"
