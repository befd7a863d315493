"""``tokentrail export | forget | prune | path | status`` on real DuckDB files."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from tokentrail import Tracker
from tokentrail.cli import cli
from tokentrail.store import reading
from tokentrail.store.maintenance import parse_duration
from tokentrail.store.migrate import MIGRATIONS_TABLE, migrate
from tokentrail.store.schema import SCHEMA_VERSION

NOW = datetime.now(timezone.utc)


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("TOKENTRAIL_DB", raising=False)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Six calls: alice x3 (one 400 days old), bob x2 (one 40 days old), carol x1."""
    path = tmp_path / "usage.duckdb"
    calls = [
        ("alice", NOW - timedelta(hours=1)),
        ("alice", NOW - timedelta(days=2)),
        ("alice", NOW - timedelta(days=400)),
        ("bob", NOW - timedelta(hours=2)),
        ("bob", NOW - timedelta(days=40)),
        ("carol", NOW - timedelta(minutes=5)),
    ]
    with Tracker(path) as tracker:
        for user, ts in calls:
            tracker.record(
                model="gpt-4o",
                usage={"input_tokens": 100, "output_tokens": 10},
                user_id=user,
                ts=ts,
            )
        assert tracker.flush(10)
    return path


def invoke(db: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)


def users(db: Path) -> list[str]:
    with reading(db) as con:
        return sorted(r[0] for r in con.execute("SELECT user_id FROM usage").fetchall())


def test_path_prints_the_database_location(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    result = invoke(db, "path")
    assert result.exit_code == 0
    assert result.output.strip() == str(db)
    monkeypatch.setenv("TOKENTRAIL_DB", str(tmp_path / "env.duckdb"))
    result = CliRunner().invoke(cli, ["path", "--json"])
    assert json.loads(result.output) == {"path": str(tmp_path / "env.duckdb"), "exists": False}


def test_status_reports_rows_size_spool_and_schema(db: Path):
    result = invoke(db, "status", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["rows"] == 6
    assert info["users"] == 3
    assert info["schema_version"] == SCHEMA_VERSION
    assert info["size_bytes"] > 0
    assert info["spool"]["records"] == 0
    text = invoke(db, "status").output
    assert "rows            6" in text and "spool backlog   0 records" in text


def test_status_counts_the_spool_backlog(tmp_path: Path):
    from tokentrail.records import UsageRecord
    from tokentrail.store.paths import primary_spool_dir
    from tokentrail.store.spool import SpoolWriter, encode, frame
    from tokentrail.usage import Usage

    path = tmp_path / "usage.duckdb"
    spool = SpoolWriter(primary_spool_dir(path), max_rows=100)
    for _ in range(7):
        spool.append(frame(encode(UsageRecord(model="m", provider=None, usage=Usage()))))
    info = json.loads(invoke(path, "status", "--json").output)
    assert info["exists"] is False
    assert info["spool"]["records"] == 7 and info["spool"]["segments"] == 1
    spool.close()


def test_export_csv_to_stdout_for_one_user(db: Path):
    result = invoke(db, "export", "--user", "alice", "--format", "csv")
    assert result.exit_code == 0
    table = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["user_id"] for r in table] == ["alice"] * 3
    assert "prompt" not in result.output.lower()


def test_export_since_filters_by_time(db: Path):
    result = invoke(db, "export", "--since", "7d", "--format", "jsonl")
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert sorted(r["user_id"] for r in lines) == ["alice", "alice", "bob", "carol"]


def test_export_parquet_to_a_file(db: Path, tmp_path: Path):
    out = tmp_path / "out" / "usage.parquet"
    result = invoke(db, "export", "--format", "parquet", "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rows"] == 6
    count = duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}')").fetchall()[0][0]
    assert count == 6


def test_forget_deletes_every_row_of_one_user(db: Path):
    result = invoke(db, "forget", "--user", "alice", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["user"], out["deleted"], out["files"]) == ("alice", 3, {str(db): 3})
    assert users(db) == ["bob", "bob", "carol"]
    again = invoke(db, "forget", "--user", "alice")
    assert again.exit_code == 0 and "deleted 0 rows" in again.output


def test_forget_also_reaches_records_left_in_a_dead_process_spool(tmp_path: Path):
    import shutil

    from tokentrail.store.paths import primary_spool_dir

    path = tmp_path / "usage.duckdb"
    # A process records for dana, and its segment is left behind (as after SIGKILL).
    tracker = Tracker(path)
    tracker.record(model="gpt-4o", usage={"input_tokens": 1}, user_id="dana")
    tracker.record(model="gpt-4o", usage={"input_tokens": 1}, user_id="erin")
    spool = tracker.store._spool
    assert spool is not None
    segment = spool.rotate()
    assert segment is not None
    kept = tmp_path / segment.name
    shutil.copy(segment, kept)
    segment.unlink()
    tracker.close()
    width = segment.name.split(".")[-2]  # c<columns>: the layout its rows have
    shutil.copy(kept, primary_spool_dir(path) / f"888888-cafecafecafe-00000001.{width}.jsonl")
    result = invoke(path, "forget", "--user", "dana", "--json")
    assert json.loads(result.output)["deleted"] == 1
    assert users(path) == ["erin"]


def test_prune_deletes_rows_older_than_the_retention(db: Path):
    result = invoke(db, "prune", "--older-than", "365d", "--json")
    assert json.loads(result.output)["deleted"] == 1
    assert users(db) == ["alice", "alice", "bob", "bob", "carol"]
    result = invoke(db, "prune", "--older-than", "30d")
    assert result.exit_code == 0 and "deleted 1 rows" in result.output
    result = invoke(db, "prune", "--older-than", "12h")
    assert "deleted 1 rows" in result.output
    assert users(db) == ["alice", "bob", "carol"]


@pytest.mark.parametrize("bad", ["365", "soon", "-3d", "0d", "12x"])
def test_prune_rejects_a_bad_duration_with_exit_code_2(db: Path, bad: str):
    result = invoke(db, "prune", "--older-than", bad)
    assert result.exit_code == 2
    assert "--older-than" in result.output
    assert len(users(db)) == 6


def test_parse_duration_units():
    assert parse_duration("365d") == timedelta(days=365)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("2w") == timedelta(weeks=2)
    assert parse_duration("1y") == timedelta(days=365)


def test_commands_on_a_newer_schema_fail_clearly_with_exit_code_1(tmp_path: Path):
    path = tmp_path / "usage.duckdb"
    con = duckdb.connect(str(path))
    migrate(con)
    con.execute(
        f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES (?, 'future')", [SCHEMA_VERSION + 1]
    )
    con.close()
    for args in (
        ["status"],
        ["export"],
        ["forget", "--user", "u"],
        ["prune", "--older-than", "1d"],
    ):
        result = CliRunner().invoke(cli, ["--db", str(path), *args])
        assert result.exit_code == 1, (args, result.output)
        assert "newer than this tokentrail supports" in result.output
        assert "Traceback" not in result.output


def test_commands_on_a_corrupt_file_fail_clearly_with_exit_code_1(tmp_path: Path):
    path = tmp_path / "usage.duckdb"
    path.write_bytes(b"garbage" * 500)
    for args in (["status"], ["export"], ["forget", "--user", "u"]):
        result = CliRunner().invoke(cli, ["--db", str(path), *args])
        assert result.exit_code == 1, (args, result.output)
        assert "not a DuckDB database" in result.output


def test_commands_on_a_missing_database_are_harmless(tmp_path: Path):
    path = tmp_path / "none.duckdb"
    assert invoke(path, "export", "--format", "csv").output.startswith("id,ts,")
    assert json.loads(invoke(path, "forget", "--user", "x", "--json").output)["deleted"] == 0
    assert json.loads(invoke(path, "status", "--json").output)["exists"] is False
    assert not path.exists()


def test_export_refuses_to_write_parquet_bytes_into_a_terminal(db: Path):
    import os
    import pty
    import subprocess
    import sys

    command = [sys.executable, "-c", "from tokentrail.cli import main; main()", "--db", str(db)]
    leader, follower = pty.openpty()  # standard output is a real terminal
    try:
        done = subprocess.run(
            [*command, "export", "--format", "parquet"],
            stdout=follower,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
        os.close(follower)
        follower = -1
        written = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            written += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert done.returncode == 2
    assert "-o usage.parquet" in done.stderr
    assert b"PAR1" not in written


def test_forget_leaves_no_byte_of_the_user_in_the_file_or_its_wal(tmp_path: Path):
    path = tmp_path / "usage.duckdb"
    with Tracker(path) as tracker:
        for i in range(200):
            who = "zed-forgotten" if i % 2 else "yan-kept"
            tracker.record(
                model="gpt-4o",
                usage={"input_tokens": 1},
                user_id=who,
                session_id=f"{who}-session",
                metadata={"email": f"{who}@example.org"},
            )
    before = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"zed-forgotten" in before  # the search can find what it looks for
    result = invoke(path, "forget", "--user", "zed-forgotten", "--yes", "--json")
    assert json.loads(result.output)["deleted"] == 100
    for file in tmp_path.rglob("*"):
        if file.is_file():  # the database, its WAL, any leftover: strings(1) finds nothing
            assert b"zed-forgotten" not in file.read_bytes(), file
    assert b"yan-kept@example.org" in path.read_bytes()
    assert users(path) == ["yan-kept"] * 100


def test_forget_dry_run_counts_and_deletes_nothing(db: Path):
    result = invoke(db, "forget", "--user", "alice", "--dry-run", "--json")
    assert json.loads(result.output)["would_delete"] == 3
    assert users(db).count("alice") == 3


def test_forget_and_prune_ask_in_a_terminal(db: Path, monkeypatch: pytest.MonkeyPatch):
    import tokentrail.cli.data as data

    monkeypatch.setattr(data, "at_terminal", lambda: True)
    result = CliRunner().invoke(cli, ["--db", str(db), "forget", "--user", "alice"], input="n\n")
    assert result.exit_code == 1 and "Delete 3 rows of user 'alice'" in result.output
    assert "nothing deleted" in result.output
    result = CliRunner().invoke(cli, ["--db", str(db), "prune", "--older-than", "30d"], input="n\n")
    assert result.exit_code == 1
    assert users(db).count("alice") == 3 and len(users(db)) == 6
    result = CliRunner().invoke(cli, ["--db", str(db), "forget", "--user", "alice"], input="y\n")
    assert result.exit_code == 0 and users(db).count("alice") == 0
    result = invoke(db, "prune", "--older-than", "30d", "--yes")
    assert "deleted 1 rows" in result.output  # bob's 40-day-old call


def test_prune_with_an_absurd_retention_is_clear(db: Path):
    result = invoke(db, "prune", "--older-than", "99999999y", "--json")
    assert result.exit_code == 2 and "Traceback" not in result.output
    result = invoke(db, "prune", "--older-than", "9000y", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["deleted"] == 0


def test_export_takes_the_filters_the_other_commands_have(tmp_path: Path):
    """issue 25: export lacked --until/--model/--operation."""
    from tests.analytics_data import R1, R2, R3, R4, write_db

    db = write_db(tmp_path / "four.duckdb", [R1, R2, R3, R4])

    def exported(*args: str) -> list[dict[str, str]]:
        result = CliRunner().invoke(cli, ["--db", str(db), "export", *args])
        assert result.exit_code == 0, result.output
        return list(csv.DictReader(io.StringIO(result.output)))

    assert len(exported()) == 4
    assert {r["model"] for r in exported("--model", "gpt-4o")} == {"gpt-4o"}
    assert len(exported("--model", "gpt-4o", "--model", "claude")) == 3
    assert {r["operation"] for r in exported("--operation", "summarize")} == {"summarize"}
    assert len(exported("--until", "2026-11-21")) == 1  # R1 only (2026-11-20 23:30 UTC)
    assert len(exported("--since", "2026-11-21", "--until", "2026-11-22")) == 1  # R2
    assert len(exported("--tag", "beta")) == 1
    assert exported("--model", "gpt-4o", "--operation", "summarize") == []
