"""What the store opens: a database cut short, someone else's DuckDB file, a SQLite file.

Each gets one clear warning in a running app (records stay in the spool, ``flush()`` says
False), a clear error from the API and the CLI (one line, exit code 1, JSON with
``--json``), and nothing is written into the file. Real files: a real tokentrail database
truncated to 40%, a DuckDB file another application made, a SQLite file made by
``sqlite3``.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from tests.reliability_workers import spool_segments
from tokentrail import Tracker
from tokentrail.cli import cli, main
from tokentrail.errors import StoreError

N = 200


def _record(tracker: Tracker, prefix: str, n: int) -> None:
    for i in range(n):
        tracker.record(
            model="gpt-4o-mini",
            usage={"input_tokens": 10, "output_tokens": 5},
            user_id=f"user-{i}",
            request_id=f"{prefix}:{i}",
        )


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "tokentrail" and r.levelno >= logging.WARNING
    ]


def _truncated_database(tmp_path: Path) -> Path:
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as setup:
        _record(setup, "setup", 3000)
    os.truncate(db, int(db.stat().st_size * 0.4))
    return db


def _foreign_with_usage(tmp_path: Path) -> Path:
    db = tmp_path / "usage.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE usage (day DATE, kwh DOUBLE)")  # a power meter's usage
    con.execute("INSERT INTO usage VALUES ('2026-01-01', 12.5)")
    con.close()
    return db


def _foreign_without_usage(tmp_path: Path) -> Path:
    db = tmp_path / "usage.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE invoices (id INTEGER, amount DOUBLE)")
    con.close()
    return db


def _sqlite(tmp_path: Path) -> Path:
    db = tmp_path / "usage.duckdb"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE usage (id INTEGER, user TEXT)")
    con.execute("INSERT INTO usage VALUES (1, 'someone')")
    con.commit()
    con.close()
    return db


CASES = {
    "truncated": (_truncated_database, "damaged"),
    "foreign-usage": (_foreign_with_usage, "its own 'usage' table"),
    "foreign": (_foreign_without_usage, "not a tokentrail database"),
    "sqlite": (_sqlite, "SQLite"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_file_warns_once_keeps_records_spooled_and_is_left_untouched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    make, needle = CASES[case]
    db = make(tmp_path)
    before = db.read_bytes()
    caplog.set_level(logging.WARNING, logger="tokentrail")
    started = time.monotonic()
    with Tracker(db) as tracker:
        _record(tracker, "kept", N)
        assert tracker.flush(5) is False
        assert tracker.store.pending() == N
        _record(tracker, "kept2", 10)
        assert tracker.flush(5) is False
        warnings = _warnings(caplog)
        assert len(warnings) == 1, warnings
        assert needle in warnings[0] and str(db) in warnings[0], warnings
        assert "move it aside" in warnings[0]  # the fix is in the message
        with pytest.raises(StoreError, match=needle.split("'")[0]):
            tracker.analytics.summary()
    # No extension was fetched nor loaded for a SQLite file: the whole run is quick.
    assert time.monotonic() - started < 10
    assert db.read_bytes() == before  # nothing written into someone else's file
    assert not db.with_name(db.name + ".wal").exists()
    assert sum(1 for _ in spool_segments(db)) >= 1  # the records wait in the spool
    db.rename(tmp_path / "moved-aside")  # the fix the message gives
    with Tracker(db) as after:
        assert after.flush(30) is True
        count = after.analytics.summary()
    assert int(count["calls"].iloc[0]) == N + 10
    assert spool_segments(db) == []


ALL_COMMANDS = [
    ["status"],
    ["report"],
    ["top"],
    ["history"],
    ["budget", "status"],
    ["export", "--format", "csv", "-o", "out.csv"],
    ["forget", "--user", "user-1", "--yes"],
    ["prune", "--older-than", "30d", "--yes"],
    ["html", "-o", "report.html"],
    ["reprice", "--all"],
]


# Every command's error comes out as JSON with --json (through cli.main()).
JSON_ERRORS = {args[0] for args in ALL_COMMANDS}


def _run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[Any, Any]:
    """``tokentrail ARGV`` as the console script runs it: ``sys.exit(main())``."""
    try:
        code = main(argv)
    except SystemExit as done:
        code = done.code
    return capsys.readouterr(), code


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_cli_command_on_a_bad_file_is_one_clear_line_and_json_with_json(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make, needle = CASES[case]
    db = make(tmp_path)
    before = db.read_bytes()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TOKENTRAIL_DEBUG", raising=False)
    for args in ALL_COMMANDS:
        for as_json in (False, True):
            argv = ["--db", str(db), *args, *(["--json"] if as_json else [])]
            out, code = _run_main(argv, capsys)
            where = f"{args} json={as_json}: {out.out!r} {out.err!r}"
            assert code == 1, where
            assert "Traceback" not in out.err + out.out, where
            if as_json and args[0] in JSON_ERRORS:
                error = json.loads(out.out)
                assert error["exit_code"] == 1
                assert needle.split("'")[0] in error["error"], where
            else:  # without --json: one line of text on standard error
                assert len(out.err.strip().splitlines()) == 1, where
                first = out.err.strip().splitlines()[0]
                assert first.startswith("Error: ") and needle.split("'")[0] in first, where
    assert db.read_bytes() == before


def test_the_cli_api_error_on_a_truncated_file_says_how_to_fix_it(tmp_path: Path) -> None:
    db = _truncated_database(tmp_path)
    result = CliRunner().invoke(cli, ["--db", str(db), "status"])
    assert result.exit_code == 1
    assert "damaged" in result.output and "move it aside" in result.output
