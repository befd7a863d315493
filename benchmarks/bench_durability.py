"""What each durability mode costs per ``record()``.

``Tracker(durability=...)`` decides when a spooled record is on the disk itself, not only
in the page cache (which survives the process being killed, not a power cut):

* ``os``: when the kernel writes it back (the behaviour before durability modes): the
  baseline;
* ``interval`` (default): a background thread fdatasyncs the open segment every 100 ms,
  off the caller's thread;
* ``call``: an fdatasync before ``record()`` returns.

Each mode runs in a fresh subprocess on a database in the system temporary folder (its
disk decides what a sync costs: a tmpfs syncs for free, an SSD in ~0.1-2 ms, a disk with
a volatile cache honestly flushed in several ms) and reports the mean wall time of
``record()`` over the timed calls, and the CPU the process spent per call (the sync
thread included).

Run: ``python -m benchmarks.bench_durability`` (``--quick`` for a short run).
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from .child import run_child

_CHILD = """
import json, sys, time
import tokentrail

mode, calls, db = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tracker = tokentrail.Tracker(db, durability=mode)
tracker.store.interval = tracker.store.max_delay = 3600.0  # measure the spool, not DuckDB
usage = {"input_tokens": 1200, "output_tokens": 300}
for i in range(200):  # warm-up: catalog, first segment
    tracker.record(model="gpt-4o", usage=usage, user_id=f"user-{i % 100}")
cpu0, t0 = time.process_time(), time.perf_counter()
for i in range(calls):
    tracker.record(model="gpt-4o", usage=usage, user_id=f"user-{i % 100}")
wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
tracker.close()
print(json.dumps({"us_per_call": wall * 1e6 / calls, "cpu_us_per_call": cpu * 1e6 / calls}))
"""


def _measure(mode: str, calls: int, tmp: str) -> dict[str, Any]:
    env = dict(os.environ, XDG_STATE_HOME=os.path.join(tmp, f"state-{mode}"))
    db = os.path.join(tmp, f"durability-{mode}.duckdb")
    return run_child(_CHILD, [mode, str(calls), db], env, timeout=900)


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure; return one dict per figure (see ``benchmarks/__main__.py``)."""
    calls = {"os": 20_000, "interval": 20_000, "call": 2_000}
    if quick:
        calls = {mode: n // 10 for mode, n in calls.items()}
    with tempfile.TemporaryDirectory(prefix="bench-durability-") as tmp:
        found = {mode: _measure(mode, n, tmp) for mode, n in calls.items()}
    base = found["os"]
    results = []
    for mode in ("interval", "call"):
        for key, what in (("us_per_call", "wall"), ("cpu_us_per_call", "CPU")):
            results.append(
                {
                    "name": f"record() with durability={mode!r}: {what} time",
                    "value": round(found[mode][key], 1),
                    "unit": "µs per call",
                    "baseline_name": "durability='os' (no sync, the page cache only)",
                    "baseline_value": round(base[key], 1),
                    "ratio": round(found[mode][key] / max(base[key], 1e-9), 2),
                    "goal": "(reported)",
                    "met": True,
                }
            )
    return results


if __name__ == "__main__":
    for result in run(quick="--quick" in sys.argv):
        print(result)
