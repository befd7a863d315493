"""The SIGKILL loop of the chaos test and the soak run: kill a writer, recover, check.

A writer process records calls as fast as it can and notes each record ``record()``
returned; it is killed with SIGKILL at a random moment, then a new ``Tracker`` drains
what it left in the spool, and the table must hold every returned record exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

from tests.reliability_workers import forkserver, record_forever, spool_segments
from tokentrail import Tracker
from tokentrail.store import reading

__all__ = ["kill_and_recover"]


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
            drained = recovering.flush(30)
            left = [(p.name, p.stat().st_size) for p in spool_segments(db)]
            assert drained, f"run {run}: the killed writer's spool was not drained: {left}"
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
