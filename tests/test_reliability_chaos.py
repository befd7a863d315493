"""Chaos: writers killed with SIGKILL at random points, and 8 writer processes on one file.

Real processes (forked from a preloaded multiprocessing forkserver), real spool files, a
real DuckDB file. ``tests/soak`` runs the same kill loop 200 times.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.reliability_workers import forkserver, record_forever, record_n, spool_segments
from tokentrail import Tracker
from tokentrail.store import reading

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")


def _read_ids(path: Path) -> dict[str, str]:
    """``request_id -> record id`` for every line the child finished writing."""
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        parts = line.split(" ")
        if len(parts) == 2 and len(parts[1]) == 36:  # a line cut by the kill is not a return
            out[parts[0]] = parts[1]
    return out


def _wait_for_first_id(path: Path, proc: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size > 0:
            return
        if not proc.is_alive():
            raise AssertionError(f"writer died on its own (exit code {proc.exitcode})")
        time.sleep(0.002)
    raise AssertionError("writer never recorded a call")


def kill_and_recover(db: Path, work: Path, runs: int, seed: int) -> dict[str, Any]:
    """SIGKILL ``runs`` writers at random moments; after each, a new Tracker drains the spool.

    Asserts after every run: each record the child saw ``record()`` return is in the
    ``usage`` table exactly once, the run's rows are a gap-free prefix of what it recorded
    (at most the one call in flight when killed is missing) and the spool is empty.
    Returns figures for the report.
    """
    rng = random.Random(seed)
    ctx = forkserver()
    figures = {"runs": 0, "returned": 0, "stored": 0, "in_flight_kept": 0, "killed_between": 0}
    for run in range(runs):
        ids_path = work / f"ids-{run}.txt"
        tag = f"r{run}"
        segment_rows = rng.choice([1, 7, 64, 500, 10_000])
        interval = rng.choice([0.0, 0.005, 0.05])
        proc = ctx.Process(
            target=record_forever,
            args=(str(db), str(ids_path), tag, interval, segment_rows, 10**9),
        )
        proc.start()
        _wait_for_first_id(ids_path, proc)
        time.sleep(rng.uniform(0.0, 0.2))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        assert proc.exitcode == -signal.SIGKILL, proc.exitcode
        returned = _read_ids(ids_path)
        assert returned, "the child returned no record before the kill"
        if db.exists():
            with reading(db) as con:
                (early,) = con.execute(
                    "SELECT count(*) FROM usage WHERE request_id LIKE ?", [f"{tag}:%"]
                ).fetchone()
            if early and spool_segments(db):
                figures["killed_between"] += 1  # part stored by the child, part left spooled

        with Tracker(db) as recovering:  # a new process's Tracker drains the dead spool
            assert recovering.flush(30), "the spool of the killed writer was not drained"
        with reading(db) as con:
            got = con.execute(
                "SELECT request_id, id FROM usage WHERE request_id LIKE ? ", [f"{tag}:%"]
            ).fetchall()
            dupes = con.execute(
                "SELECT count(*) - count(DISTINCT id) FROM usage WHERE request_id LIKE ?",
                [f"{tag}:%"],
            ).fetchone()
        assert dupes == (0,), f"run {run}: {dupes[0]} duplicated rows"
        stored = dict(got)
        assert len(stored) == len(got), f"run {run}: a request stored twice"
        missing = {k: v for k, v in returned.items() if stored.get(k) != v}
        assert not missing, f"run {run}: {len(missing)} returned records lost, e.g. {missing}"
        seqs = sorted(int(k.split(":")[1]) for k in stored)
        assert seqs == list(range(len(seqs))), f"run {run}: a gap in the stored records"
        assert len(returned) <= len(stored) <= len(returned) + 1
        assert spool_segments(db) == [], "segments left behind after recovery"
        figures["runs"] += 1
        figures["returned"] += len(returned)
        figures["stored"] += len(stored)
        figures["in_flight_kept"] += len(stored) - len(returned)
    with reading(db) as con:
        total, distinct = con.execute("SELECT count(*), count(DISTINCT id) FROM usage").fetchone()
    assert total == distinct == figures["stored"]
    return figures


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
