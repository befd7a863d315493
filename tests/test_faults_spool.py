"""The spool under faults: its folder deleted under a live tracker, a full disk, power loss.

Nothing lost, nothing reported stored that is not: records whose segment file is removed
are written again from this process's descriptor, the folder and the writer's lock file
are made again (so no other process takes the live writer's segments), a full disk sends
records to the next spool directory (the state folder, then the system temporary folder)
instead of memory, and when nothing can be written the warning says exactly how many
records were lost. Durability modes sync what ``record()`` returned.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability_workers import spool_segments
from tokentrail import Tracker
from tokentrail.store import reading
from tokentrail.store.paths import primary_spool_dir

ROOT = Path(__file__).resolve().parents[1]


def _pythonpath() -> str:
    """The children import what this process imports (and ``tests`` from the repo)."""
    return os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p)


@pytest.fixture(autouse=True)
def _private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR read again


def _record(tracker: Tracker, prefix: str, n: int) -> None:
    for i in range(n):
        tracker.record(
            model="gpt-4o-mini",
            usage={"input_tokens": 10, "output_tokens": 5},
            request_id=f"{prefix}:{i}",
        )


def _stored(db: Path, prefix: str) -> tuple[int, int]:
    with reading(db) as con:
        row = con.execute(
            "SELECT count(*), count(DISTINCT request_id) FROM usage WHERE request_id LIKE ?",
            [f"{prefix}:%"],
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


# ---------------------------------------------------------------------- folder deleted
def test_spool_folder_deleted_under_a_live_tracker_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "usage.duckdb"
    caplog.set_level(logging.WARNING, logger="tokentrail")
    with Tracker(db) as tracker:
        tracker.store.interval = tracker.store.max_delay = 3600.0  # only flush() stores
        _record(tracker, "before", 1000)
        shutil.rmtree(primary_spool_dir(db))  # a tmp cleaner, a redeploy
        _record(tracker, "after", 2000)
        # The writer's lock file is back: another process must not take its segments.
        spool = tracker.store._spool
        assert spool is not None
        time.sleep(0.5)  # a few group-sync ticks
        assert (primary_spool_dir(db) / f"{spool.token}.lock").exists()
        assert tracker.flush(30) is True
        assert tracker.store.pending() == 0
    assert _stored(db, "before") == (1000, 1000)
    assert _stored(db, "after") == (2000, 2000)
    assert spool_segments(db) == []


def test_deleted_segments_beyond_those_held_are_counted_lost_exactly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tokentrail.store import segments

    held = getattr(segments, "_HELD", 0)  # descriptors kept to read deleted segments back
    db = tmp_path / "usage.duckdb"
    caplog.set_level(logging.WARNING, logger="tokentrail")
    tracker = Tracker(db)
    try:
        tracker.store.interval = tracker.store.max_delay = 3600.0
        tracker.store.segment_rows = 10  # 100 closed segments wait for the batch
        _record(tracker, "gone", 1000)
        for segment in primary_spool_dir(db).glob("*.jsonl"):
            segment.unlink()
        assert tracker.flush(30) is False  # never "stored" what is not
        assert tracker.store.pending() == 0  # nothing waits: stored or counted lost
        lost = [r.getMessage() for r in caplog.records if "were lost" in r.getMessage()]
        assert len(lost) == 1, [r.getMessage() for r in caplog.records]
        counted = int(lost[0].split("tokentrail: ")[1].split()[0])
        stored = _stored(db, "gone")
        assert stored[0] == stored[1] >= held * 10  # the held ones were written again
        assert counted + stored[0] == 1000  # exactly the records that are not stored
    finally:
        tracker.close()


# ---------------------------------------------------------------------- full disk
@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[bool]:
    where.mkdir(parents=True)
    mounted = False
    if sys.platform.startswith("linux") and os.geteuid() == 0 and shutil.which("mount"):
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
        )
        mounted = done.returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(directory: Path) -> None:
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 65536, 4096, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size) == size:
                    pass
    finally:
        os.close(fd)


_KILLED_CHILD = """
import os, sys
from tokentrail import Tracker
t = Tracker(sys.argv[1])
t.store.interval = t.store.max_delay = 3600.0
for i in range(int(sys.argv[2])):
    t.record(model="gpt-4o-mini", usage={"input_tokens": 10, "output_tokens": 5},
             request_id=f"full:{i}")
print("recorded", flush=True)
os.kill(os.getpid(), 9)
"""


def test_full_disk_spools_to_the_next_directory_and_survives_kill_9(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "small", "6m") as mounted:
        if not mounted:
            pytest.skip("needs a tmpfs mount (run as root on Linux)")
        db = tmp_path / "small" / "usage.duckdb"
        state = tmp_path / "small" / "state"  # the state folder is on the full disk too
        with Tracker(db) as setup:
            _record(setup, "setup", 10)
        _fill(db.parent)
        env = {**os.environ, "XDG_STATE_HOME": str(state), "TMPDIR": str(tmp_path / "tmp")}
        env["PYTHONPATH"] = _pythonpath()
        out = subprocess.run(
            [sys.executable, "-c", _KILLED_CHILD, str(db), "5000"],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert "recorded" in out.stdout, out.stderr
        assert out.returncode == -9
        (db.parent / "filler").unlink()  # space comes back
        os.environ_backup = None  # type: ignore[attr-defined]
        code = (
            "import sys; from tokentrail import Tracker\n"
            "t = Tracker(sys.argv[1]); print(t.flush(60)); t.close()\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, str(db)],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert done.stdout.strip() == "True", done.stderr
        assert _stored(db, "full") == (5000, 5000)


_NOWHERE_CHILD = """
import json, logging, sys, tempfile
tempfile.tempdir = sys.argv[3]  # the system temporary folder is on the full disk too
from tokentrail import Tracker
messages = []
class H(logging.Handler):
    def emit(self, r): messages.append(r.getMessage())
logging.getLogger("tokentrail").addHandler(H(logging.WARNING))
t = Tracker(sys.argv[1])
t.store.interval = t.store.max_delay = 3600.0
for i in range(int(sys.argv[2])):
    t.record(model="gpt-4o-mini", usage={"input_tokens": 10, "output_tokens": 5},
             request_id=f"x:{i}")
flushed = t.flush(2)
t.store.close(2)
print(json.dumps({"flushed": flushed, "warnings": messages}))
"""


def test_nothing_writable_says_exactly_how_many_records_were_lost(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "small", "2m") as mounted:
        if not mounted:
            pytest.skip("needs a tmpfs mount (run as root on Linux)")
        small = tmp_path / "small"
        db = small / "usage.duckdb"
        for folder in ("s", "t"):  # the state and temporary folders: on the full disk too
            (small / folder).mkdir()
        _fill(small)
        env = {**os.environ, "XDG_STATE_HOME": str(small / "s"), "TMPDIR": str(small / "t")}
        env["PYTHONPATH"] = _pythonpath()
        out = subprocess.run(
            [sys.executable, "-c", _NOWHERE_CHILD, str(db), "700", str(small / "t")],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["flushed"] is False
        lost = [w for w in result["warnings"] if "lost" in w]
        assert lost and "700 records" in lost[-1], result["warnings"]
        assert not any("kept in memory" in w and "next tracker" in w for w in result["warnings"])


# ---------------------------------------------------------------------- durability
def _synced_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file fdatasync'ed or fsync'ed from now on (by name, through /proc)."""
    seen: list[str] = []
    for name in ("fdatasync", "fsync"):
        real = getattr(os, name)

        def spy(fd: int, real: object = real) -> None:
            with contextlib.suppress(OSError):
                seen.append(os.readlink(f"/proc/self/fd/{fd}"))
            real(fd)  # type: ignore[operator]

        monkeypatch.setattr(os, name, spy)
    return seen


@pytest.mark.parametrize("mode", ["call", "interval"])
def test_a_returned_record_is_synced_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    import tokentrail.store.segments as segments

    synced = _synced_paths(monkeypatch)
    monkeypatch.setattr(segments, "_fdatasync", os.fdatasync, raising=False)
    db = tmp_path / "usage.duckdb"
    tracker = Tracker(db, durability=mode)
    try:
        tracker.store.interval = tracker.store.max_delay = 3600.0
        _record(tracker, "d", 1)
        spool = str(primary_spool_dir(db))
        if mode == "interval":
            deadline = time.monotonic() + 2.0  # the window is 100 ms; a loaded machine
            while time.monotonic() < deadline and not (
                spool in synced and any(p.endswith(".jsonl") for p in synced)
            ):
                time.sleep(0.01)
        assert any(p.endswith(".jsonl") and p.startswith(spool) for p in synced), synced
        assert spool in synced, synced  # the new segment's name is durable too
    finally:
        tracker.close()


def test_durability_os_does_not_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tokentrail.store.segments as segments

    synced = _synced_paths(monkeypatch)
    monkeypatch.setattr(segments, "_fdatasync", os.fdatasync, raising=False)
    tracker = Tracker(tmp_path / "usage.duckdb", durability="os")
    try:
        tracker.store.interval = tracker.store.max_delay = 3600.0
        _record(tracker, "d", 10)
        time.sleep(0.3)
        assert not any(p.endswith(".jsonl") for p in synced), synced
    finally:
        tracker.close()


def test_an_unknown_durability_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval, call, os"):
        Tracker(tmp_path / "usage.duckdb", durability="sometimes")  # type: ignore[arg-type]
