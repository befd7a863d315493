"""Ingest: records/s through ``Tracker.record()`` until the rows are queryable in DuckDB,
against the naive path (one DuckDB ``executemany`` insert per row) in the same run; and the
latency of ``record()`` on the caller's thread (median and p99).

Each ``record()`` (counts differing per call, see ``usage_pool``) normalizes the usage,
prices it with the catalog (a known model), and copies one line into the crash-safe spool
(a memory-mapped segment file); a background thread copies the spool into DuckDB in
batches.
Run: ``python -m benchmarks.bench_ingest`` (``--quick`` for a short run).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .usage_pool import tokentrail_usages

MODEL = "gpt-4o"
# Counts differ from call to call, as in real traffic (see ``usage_pool``).
USAGES = tokentrail_usages()


def _row(i: int) -> dict[str, Any]:
    return {"user_id": f"user-{i % 50}", "operation": "chat" if i % 2 else "search"}


def _ours(db: Path, n: int) -> tuple[float, float, list[float], int]:
    """Records/s (wall, and per CPU-second of the whole process) from the first record()
    to all rows queryable; per-call latencies (s); rows stored."""
    from tokentrail import Tracker
    from tokentrail.store import reading

    tracker = Tracker(db)
    # warm up: pricing catalog, provider tables, first segment, DuckDB import in the writer
    for i in range(200):
        tracker.record(model=MODEL, usage=USAGES[i % len(USAGES)], **_row(i))
    assert tracker.flush(60)
    clock = time.perf_counter
    latencies = [0.0] * n
    cpu0 = time.process_time()
    start = clock()
    for i in range(n):
        t0 = clock()
        tracker.record(model=MODEL, usage=USAGES[i % len(USAGES)], **_row(i))
        latencies[i] = clock() - t0
    assert tracker.flush(600), "not every record reached DuckDB"
    elapsed = clock() - start
    cpu = time.process_time() - cpu0
    tracker.close()
    with reading(db) as con:
        stored = int(con.execute("SELECT count(*) FROM usage").fetchall()[0][0])
    return n / elapsed, n / cpu, latencies, stored


def _naive(db: Path, n: int) -> tuple[float, float, list[float]]:
    """Row-by-row: price the call, then one ``executemany`` INSERT of that row."""
    import duckdb

    from tokentrail import pricing
    from tokentrail.records import COLUMNS, UsageRecord, encode_row
    from tokentrail.store.migrate import migrate
    from tokentrail.usage import Usage

    con = duckdb.connect(str(db))
    migrate(con)
    sql = f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
    clock = time.perf_counter
    latencies = [0.0] * n
    cpu0 = time.process_time()
    start = clock()
    for i in range(n):
        t0 = clock()
        usage = Usage.from_counts(USAGES[i % len(USAGES)])
        rec = UsageRecord(
            model=MODEL,
            provider="openai",
            usage=usage,
            cost=pricing.cost(MODEL, provider="openai", usage=usage),
            **_row(i),
        )
        con.executemany(sql, [encode_row(rec)])
        latencies[i] = clock() - t0
    elapsed = clock() - start
    cpu = time.process_time() - cpu0
    con.close()
    return n / elapsed, n / cpu, latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure; return one dict per figure (see ``benchmarks/__main__.py``)."""
    n = 20_000 if quick else 200_000
    n_naive = 300 if quick else 1_000
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        os.environ.setdefault("XDG_STATE_HOME", os.path.join(tmp, "state"))
        rate, cpu_rate, latencies, stored = _ours(Path(tmp) / "ours.duckdb", n)
        naive_rate, naive_cpu_rate, naive_lat = _naive(Path(tmp) / "naive.duckdb", n_naive)
    assert stored == n + 200, (stored, n)
    median = statistics.median(latencies) * 1e6
    p99 = _pct(latencies, 0.99) * 1e6
    naive_median = statistics.median(naive_lat) * 1e6
    naive_p99 = _pct(naive_lat, 0.99) * 1e6
    return [
        {
            "name": f"ingest: record() -> rows queryable in DuckDB ({n:,} records)",
            "value": round(rate),
            "unit": "records/s",
            "baseline_name": "naive row-by-row DuckDB executemany insert",
            "baseline_value": round(naive_rate),
            "ratio": round(rate / naive_rate, 1),
            "goal": ">= 100,000 records/s and >= 50x naive",
            "met": rate >= 100_000 and rate / naive_rate >= 50,
        },
        {
            "name": "ingest CPU cost: records per CPU-second (all threads, DuckDB included)",
            "value": round(cpu_rate),
            "unit": "records/CPU-s",
            "baseline_name": "naive row-by-row insert, per CPU-second",
            "baseline_value": round(naive_cpu_rate),
            "ratio": round(cpu_rate / naive_cpu_rate, 1),
            "goal": "(reported: independent of other load on the machine)",
            "met": True,
        },
        {
            "name": "record() latency on the caller's thread, median (priced, spooled)",
            "value": round(median, 1),
            "unit": "µs",
            "baseline_name": "naive: price + synchronous single-row insert, median",
            "baseline_value": round(naive_median, 1),
            "ratio": round(median / naive_median, 3),
            "goal": "median < 20 µs",
            "met": median < 20,
        },
        {
            "name": "record() latency on the caller's thread, p99",
            "value": round(p99, 1),
            "unit": "µs",
            "baseline_name": "naive: price + synchronous single-row insert, p99",
            "baseline_value": round(naive_p99, 1),
            "ratio": round(p99 / naive_p99, 3),
            "goal": "(reported)",
            "met": True,
        },
    ]


if __name__ == "__main__":
    for result in run(quick="--quick" in sys.argv):
        print(result)
