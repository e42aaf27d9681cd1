#!/usr/bin/env python3
"""Statement times from a server log written with `--log-level "sqlx=debug,warn"
--log-format json`: count, total, mean, p50 and p90 per statement shape (savepoint numbers
folded), the largest total first.

    target/release/profiled serve ... --log-level "sqlx=debug,warn" --log-format json 2> sqlx.log
    python3 bench/sqlx-statements.py sqlx.log
"""
import collections
import json
import re
import sys

times = collections.defaultdict(list)
for line in open(sys.argv[1]):
    try:
        fields = json.loads(line).get("fields", {})
    except ValueError:
        continue
    if "elapsed_secs" in fields:
        shape = re.sub(r"w\d+", "wN", fields.get("summary", ""))[:30]
        times[shape].append(fields["elapsed_secs"] * 1e3)
for shape, ms in sorted(times.items(), key=lambda kv: -sum(kv[1]))[:12]:
    ms.sort()
    print(f"{len(ms):7d}  total {sum(ms) / 1e3:7.3f} s  mean {sum(ms) / len(ms):6.3f} ms  "
          f"p50 {ms[len(ms) // 2]:6.3f}  p90 {ms[int(len(ms) * 0.9)]:6.3f}  {shape}")
