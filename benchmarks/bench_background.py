"""Background cost of storing a steady, modest stream of calls (10 calls a second).

An LLM app makes a few calls a second, each taking a second or more. Every DuckDB batch
costs about the same CPU (~30 ms: attach, planning, commit, checkpoint) and file writes
(~800 KB: the checkpoint rewrites the table's last row group) for 1 row as for 1,000, so
what the background writer costs such an app is set by how often it stores a batch.

Each variant runs in a fresh subprocess that records 10 calls a second for ``seconds``
seconds (after a warm-up of 5,000 stored rows) and reports its CPU time and the bytes it
wrote to disk (``/proc/self/io``) per second of that run:

* ours: the default cadence (a batch when 1,000 calls wait, else within ``max_delay``);
* baseline: a batch at every look of the writer (``max_delay = 0``: once a second).

Run: ``python -m benchmarks.bench_background`` (``--quick`` for a short run).
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from .child import run_child

_CHILD = """
import json, os, sys, time
import tokentrail

seconds, max_delay, db = float(sys.argv[1]), sys.argv[2], sys.argv[3]


def written() -> int:
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split(":")[1])
    return 0


tracker = tokentrail.Tracker(db)
if max_delay != "default":
    tracker.store.max_delay = float(max_delay)
usage = {"input_tokens": 1200, "output_tokens": 300}
for i in range(5_000):
    tracker.record(model="gpt-4o", usage=usage, user_id=f"user-{i % 100}")
assert tracker.flush(60)
calls = 0
cpu0, io0, t0 = time.process_time(), written(), time.monotonic()
while time.monotonic() - t0 < seconds:
    tracker.record(model="gpt-4o", usage=usage, user_id=f"user-{calls % 100}")
    calls += 1
    time.sleep(0.1)
elapsed = time.monotonic() - t0
cpu, io = time.process_time() - cpu0, written() - io0
tracker.close()
print(json.dumps({"cpu_ms_per_s": cpu * 1e3 / elapsed, "kib_per_s": io / 1024 / elapsed,
                  "calls": calls}))
"""


def _measure(max_delay: str, seconds: float, tmp: str) -> dict[str, Any]:
    env = dict(os.environ, XDG_STATE_HOME=os.path.join(tmp, f"state-{max_delay}"))
    db = os.path.join(tmp, f"background-{max_delay}.duckdb")
    return run_child(_CHILD, [str(seconds), max_delay, db], env, timeout=600)


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure; return one dict per figure (see ``benchmarks/__main__.py``)."""
    seconds = 8.0 if quick else 30.0
    with tempfile.TemporaryDirectory(prefix="bench-background-") as tmp:
        ours = _measure("default", seconds, tmp)
        every_look = _measure("0", seconds, tmp)
    baseline = "a DuckDB batch at every look of the writer (once a second)"
    return [
        {
            "name": "background CPU while the app makes 10 calls/s",
            "value": round(ours["cpu_ms_per_s"], 1),
            "unit": "ms CPU per second",
            "baseline_name": baseline,
            "baseline_value": round(every_look["cpu_ms_per_s"], 1),
            "ratio": round(ours["cpu_ms_per_s"] / every_look["cpu_ms_per_s"], 2),
            "goal": "(reported)",
            "met": True,
        },
        {
            "name": "disk writes while the app makes 10 calls/s",
            "value": round(ours["kib_per_s"]),
            "unit": "KiB per second",
            "baseline_name": baseline,
            "baseline_value": round(every_look["kib_per_s"]),
            "ratio": round(ours["kib_per_s"] / max(every_look["kib_per_s"], 1e-9), 2),
            "goal": "(reported)",
            "met": True,
        },
    ]


if __name__ == "__main__":
    for result in run(quick="--quick" in sys.argv):
        print(result)
