"""Bad storage: a read-only directory, a full disk, a corrupt file, a newer schema.

Each must give a clear error from the CLI, or in a running app one logged warning while
``record()`` keeps returning, the records wait (spool or memory) and land exactly once
when the problem is fixed. Real files, real permissions (a root test process drops its
file capabilities in a child so ``chmod`` binds it), a real full filesystem (a 16 MB tmpfs
when mounts are allowed, else ``RLIMIT_FSIZE``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.reliability_workers import forkserver, record_through_bad_storage, spool_segments
from tokentrail import Tracker
from tokentrail.cli import cli
from tokentrail.store import reading

N = 300


def _rows(db: Path, prefix: str) -> tuple[int, int]:
    with reading(db) as con:
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT request_id) FROM usage WHERE request_id LIKE ?",
            [f"{prefix}:%"],
        ).fetchone()
    return int(total), int(distinct)


def _tokentrail_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "tokentrail" and r.levelno >= logging.WARNING
    ]


def _record(tracker: Tracker, prefix: str, n: int) -> None:
    for i in range(n):
        rec = tracker.record(
            model="gpt-4o-mini",
            usage={"input_tokens": 10, "output_tokens": 5},
            request_id=f"{prefix}:{i}",
        )
        assert rec.cost is not None  # record() returned a full record, nothing raised


def _cli(db: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=True)


def _assert_clear_cli_error(result: Any, *needles: str) -> None:
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    text = result.output
    assert "Traceback" not in text
    assert any(n.lower() in text.lower() for n in needles), text


# ---------------------------------------------------------------------- corrupt file
def test_corrupt_file_warns_once_keeps_records_and_stores_them_once_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "usage.duckdb"
    db.write_bytes(os.urandom(64 * 1024))  # not a DuckDB file
    caplog.set_level(logging.WARNING, logger="tokentrail")
    with Tracker(db) as tracker:
        _record(tracker, "c", N)
        assert tracker.flush(2) is False
        _record(tracker, "c2", N)  # the app keeps going after the failure
        assert tracker.flush(2) is False
        warnings = _tokentrail_warnings(caplog)
        assert len(warnings) == 1, warnings
        assert "not a DuckDB database" in warnings[0]
        assert str(db) in warnings[0]

        result = _cli(db, "status")
        _assert_clear_cli_error(result, "not a DuckDB database")
        result = _cli(db, "report")
        _assert_clear_cli_error(result, "not a DuckDB database")

        db.rename(tmp_path / "usage.duckdb.corrupt")  # the user moves the bad file away
        assert tracker.flush(30) is True
    assert _rows(db, "c") == (N, N)
    assert _rows(db, "c2") == (N, N)
    assert spool_segments(db) == []


# ---------------------------------------------------------------------- newer schema
def test_newer_schema_warns_once_keeps_records_and_stores_them_after_upgrade(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as first:
        _record(first, "old", 3)
    import duckdb

    con = duckdb.connect(str(db))
    con.execute("INSERT INTO tokentrail_migrations (version, name) VALUES (999, 'future')")
    con.close()

    caplog.set_level(logging.WARNING, logger="tokentrail")
    with Tracker(db) as tracker:
        _record(tracker, "new", N)
        assert tracker.flush(2) is False
        _record(tracker, "new2", 10)
        assert tracker.flush(2) is False
        warnings = _tokentrail_warnings(caplog)
        assert len(warnings) == 1, warnings
        assert "newer" in warnings[0] and "999" in warnings[0]

        for command in ("status", "report"):
            _assert_clear_cli_error(_cli(db, command), "newer", "upgrade")

        # "Upgrading tokentrail": the schema becomes one this version reads.
        con = duckdb.connect(str(db))
        con.execute("DELETE FROM tokentrail_migrations WHERE version = 999")
        con.close()
        assert tracker.flush(30) is True
    assert _rows(db, "old") == (3, 3)
    assert _rows(db, "new") == (N, N)
    assert _rows(db, "new2") == (10, 10)


# ---------------------------------------------------------------------- read-only directory
def _run_bad_storage_child(
    db: Path, state: Path, fix: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    ctx = forkserver()
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=record_through_bad_storage, args=(str(db), str(state), N, child))
    proc.start()
    try:
        assert parent.poll(60), "the child did not report"
        before = parent.recv()
        fix()
        parent.send("fixed")
        assert parent.poll(60), "the child did not report after the fix"
        after = parent.recv()
        proc.join(30)
    finally:
        if proc.is_alive():
            proc.kill()
    assert proc.exitcode == 0
    return before, after


def test_read_only_directory_spools_elsewhere_and_stores_once_writable(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    db = ro / "usage.duckdb"
    with Tracker(db) as setup:  # an existing database in a directory that turns read-only
        _record(setup, "setup", 2)
    spool = ro / "usage.duckdb.spool"
    for path, mode in ((spool, 0o555), (ro, 0o555), (db, 0o444)):
        if path.exists():
            os.chmod(path, mode)
    state = tmp_path / "state"
    state.mkdir()

    def fix() -> None:
        for path, mode in ((spool, 0o755), (ro, 0o755), (db, 0o644)):
            if path.exists():
                os.chmod(path, mode)

    try:
        before, after = _run_bad_storage_child(db, state, fix)
    finally:
        fix()
    assert before["raised"] == []
    assert before["flushed"] is False
    warnings = before["warnings"]
    assert len(warnings) == len(set(warnings)) <= 2, warnings  # one per problem, not per call
    assert any("spooling to" in w for w in warnings), warnings  # told where records wait
    assert after["flushed"] is True, after
    assert _rows(db, "bad") == (N, N)
    assert spool_segments(db) == []


def test_nothing_writable_keeps_records_in_memory_until_fixed(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    state = tmp_path / "state"
    state.mkdir()
    db = ro / "usage.duckdb"
    os.chmod(ro, 0o555)
    os.chmod(state, 0o555)

    def fix() -> None:
        os.chmod(ro, 0o755)
        os.chmod(state, 0o755)

    try:
        before, after = _run_bad_storage_child(db, state, fix)
    finally:
        fix()
    assert before["raised"] == []
    assert before["flushed"] is False
    assert before["pending"] == N
    warnings = before["warnings"]
    assert len(warnings) == len(set(warnings)) <= 2, warnings
    assert after["flushed"] is True, after
    assert _rows(db, "bad") == (N, N)


def test_cli_on_a_read_only_directory_gives_a_clear_error(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    db = ro / "usage.duckdb"
    with Tracker(db) as setup:
        _record(setup, "setup", 2)
    os.chmod(ro, 0o555)
    os.chmod(db, 0o444)
    code = (
        "import sys; from tests.reliability_workers import drop_file_capabilities\n"
        "drop_file_capabilities()\n"
        "from tokentrail.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code, "--db", str(db), "forget", "--user", "u1"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[1],
        )
    finally:
        os.chmod(ro, 0o755)
        os.chmod(db, 0o644)
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    assert "permission" in out.stderr.lower() or "read-only" in out.stderr.lower(), out.stderr


# ---------------------------------------------------------------------- full disk
@contextlib.contextmanager
def _small_filesystem(where: Path) -> Iterator[bool]:
    """A 16 MB tmpfs at ``where`` when this process may mount; yields whether it did."""
    where.mkdir()
    mounted = False
    if sys.platform.startswith("linux") and os.geteuid() == 0 and shutil.which("mount"):
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)],
            capture_output=True,
        )
        mounted = done.returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 65536, 4096, 1):  # big chunks, then the last few bytes
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size) == size:
                    pass
    finally:
        os.close(fd)
    return filler


def test_full_disk_warns_keeps_records_and_stores_them_once_space_returns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with _small_filesystem(tmp_path / "small") as mounted:
        if not mounted:
            _full_disk_by_file_size_limit(tmp_path)
            return
        db = tmp_path / "small" / "usage.duckdb"
        caplog.set_level(logging.WARNING, logger="tokentrail")
        with Tracker(db) as tracker:
            _record(tracker, "before", 20)
            assert tracker.flush(10) is True
            filler = _fill(db.parent)
            _record(tracker, "full", N)
            assert tracker.flush(2) is False
            _record(tracker, "full2", 50)
            warnings = _tokentrail_warnings(caplog)
            assert warnings, "a full disk must be reported"
            assert len(warnings) == len(set(warnings)) <= 3, warnings
            filler.unlink()  # space comes back
            assert tracker.flush(30) is True
        assert _rows(db, "before") == (20, 20)
        assert _rows(db, "full") == (N, N)
        assert _rows(db, "full2") == (50, 50)
        assert spool_segments(db) == []


_FSIZE_CHILD = """
import json, logging, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
from tokentrail import Tracker
messages = []
class H(logging.Handler):
    def emit(self, r): messages.append(r.getMessage())
logging.getLogger("tokentrail").addHandler(H(logging.WARNING))
t = Tracker(sys.argv[1])
for i in range(20):
    t.record(model="gpt-4o-mini", usage={"input_tokens": 10, "output_tokens": 5}, request_id=f"before:{i}")
ok_before = t.flush(10)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))  # no file may grow: the disk is full
for i in range(int(sys.argv[2])):
    t.record(model="gpt-4o-mini", usage={"input_tokens": 10, "output_tokens": 5}, request_id=f"full:{i}")
full_flush = t.flush(2)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
print(json.dumps({"ok_before": ok_before, "full_flush": full_flush, "fixed": t.flush(30),
                  "warnings": messages}))
t.close()
"""


def _full_disk_by_file_size_limit(tmp_path: Path) -> None:
    """Without mount rights: ``RLIMIT_FSIZE`` = 0 makes every growing write fail."""
    db = tmp_path / "usage.duckdb"
    out = subprocess.run(
        [sys.executable, "-c", _FSIZE_CHILD, str(db), str(N)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: signal.signal(signal.SIGXFSZ, signal.SIG_IGN),
    )
    assert out.returncode == 0, out.stderr
    import json

    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ok_before"] is True and result["full_flush"] is False
    assert result["fixed"] is True, result
    warnings = result["warnings"]
    assert warnings and len(warnings) == len(set(warnings)) <= 3, warnings
    assert _rows(db, "full") == (N, N)
    assert resource.getrlimit(resource.RLIMIT_FSIZE)  # the test process is unaffected
