"""Soak: the long runs of the reliability suite (on demand; minutes, not seconds).

    python -m pytest -m soak tests/soak -s

* 1,000,000 records through one process's ``Tracker.record()`` while a notebook-style
  reader polls the file: exact row count, peak RSS under 200 MB and flat, no growth in
  ``record()`` latency from the first to the last decile.
* 200 SIGKILLs at random points (the CI test does 20).
* 10,000 calls per integration across 32 threads and 500 asyncio tasks (CI: ~1,300),
  and the budget under the same load.

Each test prints its figures (run with ``-s``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.concurrency_load import (
    Load,
    assert_exact,
    langchain_load,
    llamaindex_load,
)
from tests.kill_loop import kill_and_recover
from tokentrail.store import reading

pytestmark = pytest.mark.soak

MB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]


def _notebook_reader(
    db: Path, stop: threading.Event, polls: list[tuple[float, int, float]], errors: list[Any]
) -> None:
    """What a notebook does: re-run a summary query over the file every 200 ms."""
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            with reading(db, timeout=60) as con:
                rows = con.execute(
                    "SELECT model, count(*), sum(total_cost) FROM usage GROUP BY model"
                ).fetchall()
            polls.append((t0, sum(r[1] for r in rows), time.perf_counter() - t0))
        except Exception as exc:
            errors.append(exc)
        stop.wait(0.2)


def test_one_million_records_bounded_memory_and_flat_latency(tmp_path: Path) -> None:
    n = int(os.environ.get("TOKENTRAIL_SOAK_N", "1000000"))
    db = tmp_path / "usage.duckdb"
    stop = threading.Event()
    polls: list[tuple[float, int, float]] = []
    errors: list[Any] = []
    reader = threading.Thread(target=_notebook_reader, args=(db, stop, polls, errors))
    reader.start()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "tests.soak.million", str(db), str(n)],
            capture_output=True,
            text=True,
            timeout=3600,
            cwd=ROOT,
        )
    finally:
        stop.set()
        reader.join(120)
    assert out.returncode == 0, out.stderr[-2000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["flushed"] is True
    with reading(db) as con:
        rows, ids, requests = con.execute(
            "SELECT count(*), count(DISTINCT id), count(DISTINCT request_id) FROM usage"
        ).fetchone()
    assert rows == ids == requests == n

    assert not errors, f"the reader saw {errors[0]!r}"
    counts = [c for _, c, _ in polls]
    assert counts == sorted(counts), "the reader saw the row count go down"
    assert len(polls) >= 3 and max(counts[:-1] or [1]) > 0, "the reader never overlapped"

    samples = figures["rss_samples"]
    peak = figures["peak_rss"]
    # RSS per tenth of the run (median and max of its 1% samples): spikes are DuckDB
    # batches; a leak shows as medians that keep rising.
    tenths = [
        [rss for i, rss in samples if d * n // 10 <= i < (d + 1) * n // 10] for d in range(10)
    ]
    rss_median = [statistics.median(t) / MB for t in tenths if t]
    rss_max = [max(t) / MB for t in tenths if t]
    growth = rss_median[-1] - rss_median[1]
    first, last = figures["deciles"][0], figures["deciles"][-1]
    report = {
        "records": n,
        "records_per_second": round(figures["records_per_second"]),
        "final_flush_s": round(figures["flush_seconds"], 2),
        "peak_rss_mb": round(peak / MB, 1),
        "rss_start_mb": round(figures["rss_start"] / MB, 1),
        "rss_median_mb_by_tenth": [round(x) for x in rss_median],
        "rss_max_mb_by_tenth": [round(x) for x in rss_max],
        "latency_median_us_by_tenth": [round(d["median_us"], 1) for d in figures["deciles"]],
        "latency_p99_us_first_last": (round(first["p99_us"], 1), round(last["p99_us"], 1)),
        "latency_mean_us_first_last": (round(first["mean_us"], 1), round(last["mean_us"], 1)),
        "reader_polls": len(polls),
        "reader_max_query_ms": round(max(p[2] for p in polls) * 1000, 1),
    }
    print(f"\nsoak 1M: {json.dumps(report)}")
    assert peak < 200 * MB, report
    assert growth < 30, report  # flat: the buffer is bounded
    # No growth in the cost of a call: an O(n) structure would show here as a multiple.
    assert last["median_us"] < 2 * first["median_us"] + 20, report


def test_two_hundred_sigkills_lose_nothing(tmp_path: Path) -> None:
    figures = kill_and_recover(tmp_path / "usage.duckdb", tmp_path, runs=200, seed=7)
    print(f"\nsoak SIGKILL: {figures}")
    assert figures["runs"] == 200


FULL = Load(threads=32, per_thread=250, tasks=500, per_task=4)  # 10,000 calls


def test_ten_thousand_langchain_calls(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    t0 = time.perf_counter()
    out = langchain_load(db, FULL)
    print(f"\nsoak LangChain 10k: {time.perf_counter() - t0:.1f}s")
    assert out["errors"] == []
    assert_exact(db, FULL.total)


def test_ten_thousand_llamaindex_calls(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    t0 = time.perf_counter()
    out = llamaindex_load(db, FULL)
    print(f"\nsoak LlamaIndex 10k: {time.perf_counter() - t0:.1f}s")
    assert out["errors"] == []
    assert_exact(db, FULL.total)
