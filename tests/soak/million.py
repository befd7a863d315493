"""A process that records N calls through ``Tracker.record()`` and reports its figures.

Run by ``tests/soak/test_soak.py`` (``python -m tests.soak.million DB N``): prints one
JSON line with the peak RSS, RSS samples, per-call latency by decile and the time the
final flush took. Memory is sampled with psutil every 1% of the run.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from array import array

import psutil

from tokentrail import Tracker


def main(db: str, n: int) -> dict[str, object]:
    proc = psutil.Process(os.getpid())
    rss_start = proc.memory_info().rss
    latencies = array("d", bytes(8 * n))  # preallocated: the measurement must not grow
    samples: list[tuple[int, int]] = []
    step = max(1, n // 100)
    tracker = Tracker(db)
    clock = time.perf_counter
    t_start = clock()
    for i in range(n):
        t0 = clock()
        tracker.record(
            model="gpt-4o-mini" if i % 3 else "claude-haiku-4-5",
            usage={"input_tokens": 100 + i % 997, "output_tokens": 1 + i % 211},
            user_id=f"user-{i % 50}",
            operation="soak",
            request_id=str(i),
        )
        latencies[i] = clock() - t0
        if i % step == 0:
            samples.append((i, proc.memory_info().rss))
    t_recorded = clock()
    flushed = tracker.flush(600)
    t_flushed = clock()
    tracker.close()
    samples.append((n, proc.memory_info().rss))
    deciles = []
    size = n // 10
    for d in range(10):
        part = latencies[d * size : (d + 1) * size]
        ordered = sorted(part)
        deciles.append(
            {
                "median_us": statistics.median(ordered) * 1e6,
                "p99_us": ordered[int(len(ordered) * 0.99)] * 1e6,
                "mean_us": statistics.fmean(part) * 1e6,
            }
        )
    peak = getattr(proc.memory_info(), "peak_wset", None)
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    except Exception:
        pass
    return {
        "n": n,
        "flushed": flushed,
        "record_seconds": t_recorded - t_start,
        "flush_seconds": t_flushed - t_recorded,
        "records_per_second": n / (t_recorded - t_start),
        "rss_start": rss_start,
        "rss_samples": samples,
        "peak_rss": peak,
        "deciles": deciles,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))), flush=True)
