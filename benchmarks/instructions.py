"""CPU instructions per call, counted by valgrind's callgrind: figures that do not move
with the load other processes put on a shared machine (timings there swing 2-3x).

Run on demand: ``python -m benchmarks.instructions`` (needs ``valgrind``; about 8 minutes).
Each scenario runs in a child process under callgrind twice, with ``N1`` and ``N2`` calls
after a warm-up; instructions per call = the difference / (N2 - N1). Garbage collection is
frozen after the warm-up, the store's background writer is not started and the spool is
not group-synced (``durability="os"``), so both runs do the same work per call. Counts are user-space instructions: the page faults of the spool's memory
map are not counted, and DuckDB's batch insert (on the
background thread, in the time-based benchmarks) is not part of any figure here.

Same in-process models as ``bench_langchain`` / ``bench_llamaindex`` (token counts from
``usage_pool``, different every call).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

N1, N2 = 100, 300
HERE = Path(__file__).resolve().parent

# The child: runs one scenario variant n times (after a warm-up) and exits at once.
_CHILD = r"""
import gc, os, sys, tempfile
sys.path.insert(0, {root!r})
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp()
from pathlib import Path
scenario, variant, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
import inspect
from tokentrail import Tracker
from tokentrail.store.writer import UsageStore
# No background writer at all (records stay in the spool): its thread's first look, run
# or not before the exit, moved whole runs by ~300M instructions; both runs must do the
# same work per call and nothing else. The store starts it when it is built: patched on
# the class, before.
UsageStore._start_thread = lambda self: None
# durability="os": no group-sync thread either, whose ticks (every 0.1 s of a run that
# valgrind makes ~50x slower) grew with the run's length. Older code has no such thread.
quiet = {{"durability": "os"}} if "durability" in inspect.signature(Tracker).parameters else {{}}
tracker = Tracker(Path(tempfile.mkdtemp()) / "bench.duckdb", **quiet)
if scenario == "langchain":
    from langchain_core.callbacks import UsageMetadataCallbackHandler
    from benchmarks.bench_langchain import _model
    model = _model()
    handlers = {{"none": None, "theirs": [UsageMetadataCallbackHandler()],
                "ours": [tracker.langchain(user_id="bench", operation="bench")]}}
    config = {{"callbacks": handlers[variant]}} if handlers[variant] else None
    def call():
        model.invoke("hello", config=config)
elif scenario == "llamaindex":
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
    from benchmarks.bench_llamaindex import _llm
    llm = _llm()
    if variant == "theirs":
        llm.callback_manager = CallbackManager([TokenCountingHandler()])
    if variant == "ours":
        tracker.llamaindex(user_id="bench", operation="bench")
    messages = [ChatMessage(role="user", content="hello")]
    def call():
        llm.chat(messages)
else:
    from benchmarks.usage_pool import tokentrail_usages
    usages = tokentrail_usages()
    turn = iter(range(10**9))
    def call():
        i = next(turn)
        if variant == "ours":
            tracker.record(model="gpt-4o", usage=usages[i % len(usages)],
                           user_id="user-" + str(i % 50), operation="chat")
        else:  # the loop alone: the same arguments built, no record()
            (usages[i % len(usages)], "user-" + str(i % 50))
for _ in range(50):
    call()
gc.collect()
gc.freeze()
for _ in range(n):
    call()
os._exit(0)
"""


def _instructions(script: Path, scenario: str, variant: str, n: int) -> int:
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            str(script),
            scenario,
            variant,
            str(n),
        ],
        capture_output=True,
        text=True,
        check=True,
        # One hash seed for every run: string hashes decide dict layouts, which moved the
        # counts by ~5% from one process to the next.
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_call(script: Path, scenario: str, variant: str) -> float:
    """Instructions per call of one variant (difference of two run lengths)."""
    # One run outside valgrind first: a run that finds the compiled pricing catalog missing
    # from the user's cache builds it (~350M instructions), which made the first of the two
    # measured runs the longer one and the figure negative.
    subprocess.run(
        [sys.executable, str(script), scenario, variant, "1"], capture_output=True, check=True
    )
    low = _instructions(script, scenario, variant, N1)
    high = _instructions(script, scenario, variant, N2)
    return (high - low) / (N2 - N1)


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure; one row per scenario (see ``benchmarks/__main__.py`` for the row format)."""
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed (apt-get install valgrind)")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "child.py"
        script.write_text(_CHILD.format(root=str(HERE.parent)))
        # LlamaIndex is left out: TokenCountingHandler measured *fewer* instructions per
        # call than no handler (-6,000 of ~700,000; its time cost is real, ~38 µs), so a
        # ratio against it means nothing here; bench_llamaindex times it instead.
        for scenario, theirs_name, goal in (("langchain", "UsageMetadataCallbackHandler", 2.0),):
            none = per_call(script, scenario, "none")
            theirs = per_call(script, scenario, "theirs") - none
            ours = per_call(script, scenario, "ours") - none
            rows.append(
                {
                    "name": f"{scenario}: instructions per call added by our handler "
                    "(capture, pricing, spool write)",
                    "value": round(ours),
                    "unit": "instructions",
                    "baseline_name": f"{theirs_name}: instructions per call added",
                    "baseline_value": round(theirs),
                    "ratio": round(ours / theirs, 2),
                    "goal": f"(reported; the time-based goal is ≤ {goal:g}× baseline)",
                    "met": True,
                }
            )
        loop = per_call(script, "record", "none")
        record = per_call(script, "record", "ours") - loop
        rows.append(
            {
                "name": "record(): instructions per call (priced, spooled; counts vary)",
                "value": round(record),
                "unit": "instructions",
                "baseline_name": "the calling loop alone",
                "baseline_value": round(loop),
                "ratio": None,
                "goal": "(reported)",
                "met": True,
            }
        )
    return rows


if __name__ == "__main__":
    for result in run(quick="--quick" in sys.argv):
        print(result)
