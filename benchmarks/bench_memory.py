"""Memory: peak RSS of a process recording 100k and 1M calls through ``Tracker.record()``
(every row stored in DuckDB and checked), against the RSS of a bare interpreter that only
imports tokentrail, each in a fresh subprocess. A warm-up of 150,000 calls at full speed
comes first, so the writer has already stored batches of the sizes the run makes (tens of
thousands of rows, up to ``batch.GROUP_ROWS``): loading DuckDB (once per process) and a
batch's working memory are then in the baseline level, and "flat" compares growth with
the number of calls, not batch sizes (after a 1,000-call warm-up, the first ~70,000-row
batch of a 100k run showed as +30 MB of "growth"). RSS is sampled 100 times in the run
and 100 times in the warm-up; the run's second half is compared with everything before.

The store keeps records in its spool files, not in a queue, so memory should stay flat
whatever the number of calls. Run: ``python -m benchmarks.bench_memory`` (``--quick``).
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from .child import run_child

_CHILD = """
import json, resource, sys, time
import psutil
n, db = int(sys.argv[1]), sys.argv[2]
WARM_UP = 150_000  # long enough for batches as large as the run's (see the docstring)
import tokentrail
proc = psutil.Process()
samples = []
warm = []
if n:
    from tokentrail.store import reading
    tracker = tokentrail.Tracker(db)
    usage = {"input_tokens": 1200, "output_tokens": 300}
    # Warm-up: batches of the run's sizes, so that loading DuckDB and a batch's working
    # memory are not counted as growth with the number of calls.
    for i in range(WARM_UP):
        tracker.record(model="gpt-4o", usage=usage, user_id=f"user-{i % 100}")
        if (i + 1) % 1_500 == 0:
            warm.append(proc.memory_info().rss)
    tracker.flush()
    step = max(1, n // 100)
    for i in range(n):
        tracker.record(model="gpt-4o", usage=usage, user_id=f"user-{i % 100}")
        if (i + 1) % step == 0:
            samples.append(proc.memory_info().rss)
    ok = tracker.flush(1800)
    tracker.close()
    with reading(db) as con:
        stored = con.execute("SELECT count(*) FROM usage").fetchall()[0][0]
    assert ok and stored == n + WARM_UP, (ok, stored, n)
def high_water_mark():
    # VmHWM belongs to this address space; ru_maxrss is not used because Linux carries it
    # over fork+exec, so it would report the (larger) parent's size at spawn.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
peak = high_water_mark()
print(json.dumps({"peak": peak, "samples": samples, "warm": warm}))
"""


def _measure(n: int, tmp: str) -> dict[str, Any]:
    env = dict(os.environ, XDG_STATE_HOME=os.path.join(tmp, "state"))
    db = os.path.join(tmp, f"mem-{n}.duckdb")
    return run_child(_CHILD, [str(n), db], env, timeout=3600)


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure; return one dict per figure (see ``benchmarks/__main__.py``)."""
    sizes = [100_000] if quick else [100_000, 1_000_000]
    mb = 1024 * 1024
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        base = _measure(0, tmp)["peak"] / mb
        for n in sizes:
            got = _measure(n, tmp)
            peak = got["peak"] / mb
            samples = [s / mb for s in got["samples"]]
            warm = [s / mb for s in got["warm"]]
            # RSS swings with each DuckDB batch, so "flat" compares the highest sample of
            # the second half of the run with the highest before it (warm-up and first
            # half: batches of the same sizes); the peak includes everything.
            half = len(samples) // 2
            growth = max(samples[half:]) - max(warm + samples[:half]) if half else 0.0
            # A 100k run lasts ~3 s: two or three batches, whose sizes (so RSS, by ±40 MB)
            # depend on timing; "flat" is judged on runs long enough for many batches.
            judged = n >= 1_000_000
            results.append(
                {
                    "name": f"peak RSS recording {n:,} calls (highest RSS, 2nd half of the "
                    f"run vs before it: {growth:+.1f} MB)",
                    "value": round(peak, 1),
                    "unit": "MB",
                    "baseline_name": "bare interpreter importing tokentrail",
                    "baseline_value": round(base, 1),
                    "ratio": round(peak / base, 2),
                    "goal": "< 200 MB and flat" if judged else "< 200 MB",
                    "met": peak < 200 and (growth < 20 or not judged),
                }
            )
    return results


if __name__ == "__main__":
    for result in run(quick="--quick" in sys.argv):
        print(result)
