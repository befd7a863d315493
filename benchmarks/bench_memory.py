"""Memory: peak RSS of a process recording 100k and 1M calls through ``Tracker.record()``
(every row stored in DuckDB and checked), against the RSS of a bare interpreter that only
imports tokentrail, each in a fresh subprocess. A warm-up of 150,000 calls stored in one
DuckDB batch comes first: loading DuckDB (once per process) and the working memory of the
largest batch the writer makes (``writer._GROUP_ROWS`` rows) are then part of the baseline
level, so "flat" compares growth with the number of calls, not batch sizes (with a
1,000-call warm-up, the first ~70,000-row batch of a 100k run showed as +30 MB "growth").

The store keeps records in its spool files, not in a queue, so memory should stay flat
whatever the number of calls. Run: ``python -m benchmarks.bench_memory`` (``--quick``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from typing import Any

_CHILD = """
import json, resource, sys, time
import psutil
n, db = int(sys.argv[1]), sys.argv[2]
WARM_UP = 150_000  # the writer's largest batch (store.writer._GROUP_ROWS)
import tokentrail
proc = psutil.Process()
samples = []
if n:
    from tokentrail.store import reading
    tracker = tokentrail.Tracker(db)
    usage = {"input_tokens": 1200, "output_tokens": 300}
    # Warm-up: one DuckDB batch of the largest size, so that loading DuckDB and a batch's
    # working memory are not counted as growth with the number of calls.
    for i in range(WARM_UP):
        tracker.record(model="gpt-4o", usage=usage, user_id=f"user-{i % 100}")
    tracker.flush()
    step = max(1, n // 10)
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
print(json.dumps({"peak": peak, "samples": samples}))
"""


def _measure(n: int, tmp: str) -> dict[str, Any]:
    env = dict(os.environ, XDG_STATE_HOME=os.path.join(tmp, "state"))
    db = os.path.join(tmp, f"mem-{n}.duckdb")
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CHILD), str(n), db],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


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
            # RSS swings with each DuckDB batch, so "flat" compares the highest sample of
            # the second half of the run with the highest of the first half (both after
            # the warm-up batch that loads DuckDB; the peak includes it).
            half = len(samples) // 2
            growth = max(samples[half:]) - max(samples[:half]) if half else 0.0
            results.append(
                {
                    "name": f"peak RSS recording {n:,} calls (highest RSS, 2nd half vs 1st "
                    f"half of the run: {growth:+.1f} MB)",
                    "value": round(peak, 1),
                    "unit": "MB",
                    "baseline_name": "bare interpreter importing tokentrail",
                    "baseline_value": round(base, 1),
                    "ratio": round(peak / base, 2),
                    "goal": "< 200 MB and flat",
                    "met": peak < 200 and growth < 20,
                }
            )
    return results


if __name__ == "__main__":
    for result in run(quick="--quick" in sys.argv):
        print(result)
