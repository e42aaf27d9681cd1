#!/usr/bin/env python3
"""How long fdatasync takes on this disk for writes of a given size, as the write-ahead log's
sync does: pwrite N bytes, then fdatasync, 1,000 times, appending to a new file or rewriting
one already written and synced.
    python3 bench/fsync.py [DIR]      (default /tmp)"""
import os
import sys
import time

def run(directory, size, rewrite, count=1000):
    path = os.path.join(directory, "profiled-fsync-probe")
    if os.path.exists(path):
        os.unlink(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        if rewrite:
            os.write(fd, b"x" * size * count)
            os.fsync(fd)
        block, times = b"y" * size, []
        for i in range(count):
            os.pwrite(fd, block, i * size)
            start = time.perf_counter()
            os.fdatasync(fd)
            times.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        os.unlink(path)
    times.sort()
    kind = "rewrite" if rewrite else "append"
    print(f"{kind:7} {size // 1024:4} KiB  p50 {times[count // 2] * 1e3:.3f} ms"
          f"  p90 {times[count * 9 // 10] * 1e3:.3f} ms  mean {sum(times) / count * 1e3:.3f} ms")

directory = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
for size in (4096, 65536, 131072, 262144):
    run(directory, size, rewrite=False)
    run(directory, size, rewrite=True)
