"""The data and budget commands on a PostgreSQL URL give DuckDB's answers on the same rows.

``status``, ``export``, ``forget``, ``prune`` and ``budget status`` run through the real CLI
(``--db postgresql://...``) against a throwaway PostgreSQL cluster (``postgres_server`` in
``conftest``) and against a DuckDB file filled with the same records through the same
spool; every figure must match. Budget definitions saved by ``tracker.budget`` on a URL go
to the ``tokentrail_budgets`` table, so ``budget status`` in another process sees them.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.varied_records import fill as _fill
from tests.varied_records import varied_records as _records
from tokentrail import Tracker
from tokentrail.budget.persist import load_budget_specs
from tokentrail.cli import cli
from tokentrail.errors import StoreError
from tokentrail.store.paths import PostgresUrl, resolve_db_path


def _cli(db: str | Path, *args: str) -> Any:
    done = CliRunner().invoke(cli, ["--db", str(db), *args])
    assert done.exit_code == 0, done.output
    return json.loads(done.output) if "--json" in args else done.output


@pytest.fixture
def pair(pg_url: str, tmp_path: Path) -> tuple[Path, str]:
    """The same 300 records in a DuckDB file and in a fresh PostgreSQL database."""
    records = _records(300, seed=11)
    duck = tmp_path / "usage.duckdb"
    _fill(duck, records)
    _fill(pg_url, records)
    return duck, pg_url


def test_status_on_a_url_gives_duckdbs_figures(pair: tuple[Path, str]) -> None:
    duck, url = pair
    d, p = _cli(duck, "status", "--json"), _cli(url, "status", "--json")
    fields = ("rows", "users", "first_call", "last_call")
    assert [p[f] for f in fields] == [d[f] for f in fields]
    assert p["rows"] == 300 and p["size_bytes"] > 0
    assert "pw" not in json.dumps(p)  # the URL is shown without a password
    assert "rows            300" in _cli(url, "status")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_on_a_url_writes_duckdbs_rows(
    pair: tuple[Path, str], tmp_path: Path, fmt: str
) -> None:
    duck, url = pair
    selection = ["--since", "2026-11-01", "--model", "gpt-4o", "--format", fmt]
    d = _cli(duck, "export", *selection, "-o", str(tmp_path / f"d.{fmt}"), "--json")
    p = _cli(url, "export", *selection, "-o", str(tmp_path / f"p.{fmt}"), "--json")
    assert p["rows"] == d["rows"] > 0

    def rows(name: str) -> list[Any]:
        text = (tmp_path / name).read_text(encoding="utf-8")
        if fmt == "csv":
            return list(csv.reader(io.StringIO(text)))
        return [json.loads(line) for line in text.splitlines()]  # metadata: an object

    got, expected = rows(f"p.{fmt}"), rows(f"d.{fmt}")
    if fmt == "csv":  # the metadata column: same JSON, key order aside
        meta = expected[0].index("metadata")
        for table in (got, expected):
            for row in table[1:]:
                row[meta] = row[meta] and json.loads(row[meta])
    assert got == expected


def test_forget_and_prune_on_a_url_delete_what_duckdb_deletes(pair: tuple[Path, str]) -> None:
    _duck, url = pair
    would = [_cli(db, "forget", "--user", "bob", "--dry-run", "--json") for db in pair]
    assert would[0]["would_delete"] == would[1]["would_delete"] > 0
    done = [_cli(db, "forget", "--user", "bob", "--yes", "--json") for db in pair]
    assert done[1]["deleted"] == done[0]["deleted"] == would[0]["would_delete"]
    pruned = [_cli(db, "prune", "--older-than", "20d", "--yes", "--json") for db in pair]
    assert pruned[1]["deleted"] == pruned[0]["deleted"] > 0
    left = [_cli(db, "status", "--json")["rows"] for db in pair]
    assert left[0] == left[1] == 300 - done[0]["deleted"] - pruned[0]["deleted"]
    assert "VACUUM" in _cli(url, "forget", "--user", "alice", "--yes")


def test_budget_status_on_a_url_matches_duckdb(pair: tuple[Path, str]) -> None:
    adhoc = ["budget", "status", "--usd", "0.002", "--per", "90d", "--scope", "user", "--json"]
    d, p = (_cli(db, *adhoc)["budgets"] for db in pair)
    assert len(d) >= 3  # alice, bob, carol (and calls without a user)

    def figures(rows: list[Any]) -> list[Any]:
        return sorted((str(r["key"]), r["spent"], r["limit"], r["percent"]) for r in rows)

    assert figures(p) == figures(d)


def test_budgets_saved_on_a_url_go_to_a_table_without_warnings(
    pair: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    _duck, url = pair
    for db in pair:
        tracker = Tracker(db)
        try:
            with caplog.at_level(logging.WARNING, logger="tokentrail"):
                tracker.budget(usd="0.002", per="90d", scope="user")
                tracker.budget(tokens=10_000, per="90d", scope="global")
                tracker.budget(usd="0.001", per="90d", scope="user")  # replaces the first
        finally:
            tracker.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    specs = load_budget_specs(PostgresUrl(url))  # what another process reads
    assert sorted((s["unit"], s["limit"], s["scope"]) for s in specs) == [
        ("tokens", "10000", "global"),
        ("usd", "0.001", "user"),
    ]
    d, p = (_cli(db, "budget", "status", "--json")["budgets"] for db in pair)
    assert len(p) == len(d) >= 4
    assert sorted(map(json.dumps, p)) == sorted(map(json.dumps, d))


def test_resolve_db_path_refuses_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(StoreError, match=r"postgresql://me:\*\*\*@h/db is a PostgreSQL"):
        resolve_db_path("postgresql://me:secret@h/db")
    monkeypatch.setenv("TOKENTRAIL_DB", "postgres://me@h/db")
    with pytest.raises(StoreError, match="not a DuckDB file"):
        resolve_db_path()


LIMITS = [("1", "user"), ("2", "global"), ("3", "model")]


def test_budgets_on_an_unreachable_url_warn_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens on port 1: saving the definitions fails, said once (not on every
    ``tracker.budget``), and the budgets are still in force."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))  # the URL's spool folder
    tracker = Tracker("postgresql://nobody:pw@127.0.0.1:1/usage")
    try:
        with caplog.at_level(logging.WARNING, logger="tokentrail"):
            added = [tracker.budget(usd=limit, per="day", scope=s) for limit, s in LIMITS]
        assert len({b.id for b in added}) == 3 and tracker.guarded
    finally:
        tracker.close()
    saved = [r for r in caplog.records if "could not save budget definitions" in r.getMessage()]
    assert len(saved) == 1, [r.getMessage() for r in caplog.records]
    assert "127.0.0.1:1" in saved[0].getMessage() and "pw" not in saved[0].getMessage()
