"""Chaos: writers killed with SIGKILL at random points, and 8 writer processes on one file.

Real processes (forked from a preloaded multiprocessing forkserver), real spool files, a
real DuckDB file. ``tests/soak`` runs the same kill loop (``tests/kill_loop.py``) 200 times.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from tests.kill_loop import kill_and_recover
from tests.reliability_workers import forkserver, record_n, spool_segments
from tokentrail.store import reading

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")


def test_sigkill_at_random_points_loses_no_returned_record(tmp_path: Path) -> None:
    figures = kill_and_recover(tmp_path / "usage.duckdb", tmp_path, runs=20, seed=20261123)
    assert figures["runs"] == 20
    print(f"\nSIGKILL chaos: {figures}")


def _poll(db: Path, stop: threading.Event, seen: list[int], errors: list[BaseException]) -> None:
    """A notebook-style reader: count rows over and over while the writers run."""
    while not stop.is_set():
        try:
            with reading(db, timeout=30) as con:
                seen.append(con.execute("SELECT count(*) FROM usage").fetchone()[0])
        except BaseException as exc:  # every error is a failure of the promise
            errors.append(exc)
            return
        time.sleep(0.005)


def test_eight_writer_processes_and_a_reader_store_every_record_once(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    writers, per_writer = 8, 200
    ctx = forkserver()
    procs = [
        ctx.Process(
            target=record_n,
            args=(str(db), per_writer, f"w{w}", 0.0, 25, str(tmp_path / f"warn-{w}.txt"), 10),
        )
        for w in range(writers)
    ]
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []
    reader = threading.Thread(target=_poll, args=(db, stop, seen, errors))
    reader.start()
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
    finally:
        stop.set()
        reader.join(60)
    assert [p.exitcode for p in procs] == [0] * writers
    assert not errors, f"the reader saw {errors[0]!r}"
    warned = [
        line
        for w in range(writers)
        if (f := tmp_path / f"warn-{w}.txt").exists()
        for line in f.read_text().splitlines()
    ]
    assert not warned, f"writers surfaced problems: {warned[:3]}"
    assert seen == sorted(seen), "the reader saw the row count go down"
    assert len(seen) > 3, "the reader never overlapped the writers"
    with reading(db) as con:
        total, distinct_ids, distinct_requests = con.execute(
            "SELECT count(*), count(DISTINCT id), count(DISTINCT request_id) FROM usage"
        ).fetchone()
        per = dict(
            con.execute(
                "SELECT split_part(request_id, ':', 1), count(*) FROM usage GROUP BY 1"
            ).fetchall()
        )
    assert total == distinct_ids == distinct_requests == writers * per_writer
    assert per == {f"w{w}": per_writer for w in range(writers)}
    assert spool_segments(db) == []
