#!/usr/bin/env python3
"""What the parts of profiled's SQLite read statements cost, without HTTP or profiled: each
variant of the get-by-identity and the 20-profile search runs N times from Python's sqlite3 on
a copy of a preloaded data directory, and the mean time per statement is printed. Python's
own overhead is in every figure alike, so compare the variants with each other only.
    target/release/profiled-bench preload --profiles 100000 --data-dir /tmp/bd > /tmp/bd.key
    cp -r /tmp/bd /tmp/bdx && python3 bench/statement-costs.py /tmp/bdx/profiled.db
The `identities by subquery` variants are the select list before session 12 (docs/benchmarks.md).
"""
import random
import sqlite3
import sys
import time

path = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
conn = sqlite3.connect(path)
conn.execute("PRAGMA cache_size = -200000")  # the whole 100,000-profile file: no disk reads
ws = conn.execute("SELECT workspace_id FROM identities LIMIT 1").fetchone()[0]
IDENTITIES = ("(SELECT json_group_array(json_array(kind, value)) FROM identities AS i "
              "WHERE i.workspace_id = p.workspace_id AND i.profile_id = p.id)")
SEGMENTS = ("(SELECT json_group_array(s.segment_key) FROM segment_members AS s "
            "WHERE s.workspace_id = p.workspace_id AND s.profile_id = p.id)")
COLUMNS = ("p.id, p.properties, p.computed, p.created_at, p.updated_at, p.version, p.set_once, "
           "p.location, p.device, p.activity, p.company_id")
has_column = any(r[1] == "identities" for r in conn.execute("PRAGMA table_info(profiles)"))
lists = {"identities by subquery, segments": f", {IDENTITIES}, {SEGMENTS}",
         "segments only": f", {SEGMENTS}",
         "columns only": ""}
if has_column:
    lists = {"identities from the row, segments": f", p.identities, {SEGMENTS}", **lists}
GET = ("SELECT {} FROM identities AS o JOIN profiles AS p ON p.workspace_id = o.workspace_id "
       "AND p.id = o.profile_id WHERE o.workspace_id = ? AND o.kind = 'user_id' AND o.value = ?")
SEARCH = ("SELECT {} FROM profiles AS p WHERE p.workspace_id = ? "
          "AND json_extract(properties, '$.\"plan\"') = ? ORDER BY p.id LIMIT 20")
ids = ["u%014d" % random.randint(0, 99999) for _ in range(runs)]
plans = ["free", "starter", "pro", "enterprise"]
for round_ in (1, 2):
    for name, extra in lists.items():
        for kind, sql, args in (("get", GET, lambda i: (ws, ids[i])),
                                ("search", SEARCH, lambda i: (ws, plans[i % 4]))):
            n = runs if kind == "get" else runs // 4
            statement = sql.format(COLUMNS + extra)
            start = time.perf_counter()
            for i in range(n):
                conn.execute(statement, args(i)).fetchall()
            print(f"round {round_}  {kind:6}  {name:36} {(time.perf_counter() - start) / n * 1e6:7.1f} µs")
