#!/usr/bin/env python3
"""Defines COUNT segments over the bench data set (bench/run.sh with SEGMENTS=N calls this)
and waits until every one is backfilled; prints how long the backfill took.

The filters mix what segments usually test: equality on a plan or country, ranges on
numbers, booleans, array membership, prefixes on a nested key and timestamps."""
import json
import sys
import time
import urllib.request

base, key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
plans = ["free", "starter", "pro", "enterprise"]
countries = ["US", "DE", "FR", "GB", "IN", "BR", "JP", "ES", "IT", "NL"]
templates = [
    lambda i: f'properties.plan = "{plans[i % 4]}"',
    lambda i: f'properties.country = "{countries[i % 10]}"',
    lambda i: f"properties.age >= {20 + i % 50}",
    lambda i: f"properties.score > {(i * 37) % 1000}",
    lambda i: f'properties.newsletter = true and properties.lang = "{["en", "de", "fr", "es"][i % 4]}"',
    lambda i: f'properties.tags contains "t{i % 20}"',
    lambda i: f'properties.address.city starts_with "city-{i % 10}"',
    lambda i: f"properties.signup_ts > 20{20 + i % 5}-01-01T00:00:00Z",
]


def call(method, path, body=None):
    request = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as reply:
        return json.load(reply)


started = time.monotonic()
for i in range(count):
    call("PUT", f"/v1/segments/s{i:02}", {"name": f"segment {i}", "filter": templates[i % len(templates)](i)})
while True:
    segments = call("GET", "/v1/segments")["segments"]
    if all(s["status"] == "ready" for s in segments):
        break
    time.sleep(0.5)
elapsed = time.monotonic() - started
sizes = [call("GET", f"/v1/segments/{s['key']}")["members"] for s in segments]
print(
    f"{count} segments backfilled in {elapsed:.1f} s: {sum(sizes):,} memberships "
    f"({sum(sizes) / elapsed:,.0f}/s), {min(sizes):,} to {max(sizes):,} members each",
    file=sys.stderr,
)
