"""Real processes on one database file: SIGKILL, normal and exception exits, 4 writers + a reader."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tokentrail.store import UsageStore, reading
from tokentrail.store.paths import primary_spool_dir
from tokentrail.store.segments import SEGMENT_SUFFIX, read_segment


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ)
    e["XDG_STATE_HOME"] = str(tmp_path / "state")
    e.pop("TOKENTRAIL_DB", None)
    return e


def run_child(
    code: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stored_ids(db: Path) -> list[str]:
    with reading(db) as con:
        return sorted(r[0] for r in con.execute("SELECT id FROM usage").fetchall())


RECORD_N = """
import sys, tokentrail
tracker = tokentrail.Tracker(sys.argv[1] if len(sys.argv) > 1 else {db!r})
for i in range({n}):
    r = tracker.record(model="gpt-4o", usage={{"input_tokens": 100, "output_tokens": i}}, user_id="u")
    print(r.id, flush=True)
"""


def test_sigkill_right_after_record_loses_nothing(tmp_path: Path, env: dict[str, str]):
    db = tmp_path / "usage.duckdb"
    code = (
        RECORD_N.format(db=str(db), n=300)
        + "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = run_child(code, env)
    assert proc.returncode == -signal.SIGKILL
    printed = sorted(proc.stdout.split())
    assert len(printed) == 300
    # The records are on disk in the dead process's spool, whatever reached DuckDB before.
    spooled = [
        row[0]
        for seg in primary_spool_dir(db).glob(f"*{SEGMENT_SUFFIX}")
        for row in read_segment(seg)[0]
    ]
    assert spooled, "the test should exercise the spool"
    with UsageStore(db) as store:  # the next open drains it
        assert store.flush(20)
    assert stored_ids(db) == printed
    assert list(primary_spool_dir(db).glob(f"*{SEGMENT_SUFFIX}")) == []
    # Opening again drains nothing twice.
    with UsageStore(db) as store:
        assert store.flush(20)
    assert stored_ids(db) == printed


def test_normal_exit_writes_everything(tmp_path: Path, env: dict[str, str]):
    db = tmp_path / "usage.duckdb"
    proc = run_child(RECORD_N.format(db=str(db), n=250), env)
    assert proc.returncode == 0, proc.stderr
    assert stored_ids(db) == sorted(proc.stdout.split())
    assert list(primary_spool_dir(db).glob(f"*{SEGMENT_SUFFIX}")) == []


def test_exception_exit_writes_everything(tmp_path: Path, env: dict[str, str]):
    db = tmp_path / "usage.duckdb"
    proc = run_child(
        RECORD_N.format(db=str(db), n=120) + "raise RuntimeError('app crashed')\n", env
    )
    assert proc.returncode == 1
    assert "app crashed" in proc.stderr
    assert stored_ids(db) == sorted(proc.stdout.split())


WRITER = """
import logging, sys, time, tokentrail
logging.basicConfig(level=logging.WARNING)
tracker = tokentrail.Tracker({db!r})
tracker.store.interval = tracker.store.max_delay = 0.02  # many small batches: many lock conflicts
for i in range(500):
    tracker.record(model="gpt-4o", usage={{"input_tokens": 10, "output_tokens": 1}}, user_id="w{w}")
    if i % 50 == 0:
        time.sleep(0.01)
"""


def test_four_writer_processes_and_a_reader_store_every_record_once(
    tmp_path: Path, env: dict[str, str]
):
    db = tmp_path / "usage.duckdb"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WRITER.format(db=str(db), w=w))],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    seen = []
    reads = 0
    deadline = time.monotonic() + 120
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        if db.exists():
            with reading(db) as con:  # read-only, retries while a writer holds the file
                seen.append(con.execute("SELECT count(*) FROM usage").fetchall()[0][0])
                reads += 1
        time.sleep(0.02)
    outputs = [p.communicate(timeout=60) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        # The only warning allowed: a writer whose exit-time flush met the file locked
        # for too long says its records wait in the spool (drained below).
        other = [line for line in err.splitlines() if "WARNING" in line and "kept in" not in line]
        assert "Traceback" not in err and not other, err
    assert reads > 0
    assert seen == sorted(seen)  # counts only grow
    from tokentrail import Tracker

    with Tracker(db) as tracker:  # opening drains what exited writers left in the spool
        assert tracker.flush()
    with reading(db) as con:
        total, distinct = con.execute("SELECT count(*), count(DISTINCT id) FROM usage").fetchall()[
            0
        ]
        per_writer = dict(con.execute("SELECT user_id, count(*) FROM usage GROUP BY 1").fetchall())
    assert (total, distinct) == (2000, 2000)
    assert per_writer == {"w0": 500, "w1": 500, "w2": 500, "w3": 500}


def test_a_writer_waits_for_a_long_lock_held_by_another_process(
    tmp_path: Path, env: dict[str, str]
):
    db = tmp_path / "usage.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"con = duckdb.connect({str(db)!r})\n"
            "print('locked', flush=True)\n"
            "time.sleep(1.5)\n"
            "con.close()\n",
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    from tokentrail import Tracker

    t0 = time.monotonic()
    with Tracker(db) as tracker:
        rec = tracker.record(model="gpt-4o", usage={"input_tokens": 1, "output_tokens": 1})
        assert time.monotonic() - t0 < 1.0  # record() never waits for the lock
        assert tracker.flush(20)
    holder.wait(10)
    assert stored_ids(db) == [rec.id]


def test_fork_child_records_without_deadlock(tmp_path: Path):
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    from tokentrail import Tracker

    db = tmp_path / "usage.duckdb"
    tracker = Tracker(db)
    first = tracker.record(model="gpt-4o", usage={"input_tokens": 1})
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            child = tracker.record(model="gpt-4o", usage={"input_tokens": 2})
            ok = tracker.flush(20)
            (tmp_path / "child-id").write_text(child.id)
            code = 0 if ok else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        assert time.monotonic() < deadline, "the forked child hung"
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0
    last = tracker.record(model="gpt-4o", usage={"input_tokens": 3})
    assert tracker.flush(20)
    tracker.close()
    child_id = (tmp_path / "child-id").read_text()
    assert stored_ids(db) == sorted([first.id, child_id, last.id])
