"""PostgreSQL as the store: the same rows give the same numbers as DuckDB.

Every test runs against a real PostgreSQL server (``postgres_server`` in ``conftest``: a
throwaway cluster; skipped with how to install it where PostgreSQL is missing). The
records go through the real path on both sides: spool, background writer, then DuckDB's
bulk insert or PostgreSQL's ``COPY``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.varied_records import NOW
from tests.varied_records import fill as _fill
from tests.varied_records import varied_records as _records
from tokentrail import Tracker, analytics
from tokentrail.analytics import queries
from tokentrail.analytics.connection import connect
from tokentrail.cli import cli
from tokentrail.records import COLUMNS
from tokentrail.store import reading
from tokentrail.store.paths import PostgresUrl, primary_spool_dir, resolve_db


@pytest.fixture(scope="module")
def both(
    postgres_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    """The same 400 records in a DuckDB file and in a PostgreSQL database."""
    records = _records()
    duck = tmp_path_factory.mktemp("pg-parity") / "usage.duckdb"
    url = postgres_server.create_database("parity")
    _fill(duck, records)
    _fill(url, records)
    yield duck, url


def _same(left: Any, right: Any, where: str) -> None:
    if isinstance(left, float) or isinstance(right, float):
        if left is None or right is None:
            assert left == right, where
        elif math.isnan(float(left)):
            assert math.isnan(float(right)), where
        else:
            assert float(left) == pytest.approx(float(right), rel=1e-9, abs=1e-9), where
        return
    assert left == right, f"{where}: DuckDB {left!r} != PostgreSQL {right!r}"


def _compare(duck: Any, pg: Any) -> None:
    assert duck.columns == pg.columns
    assert len(duck.rows) == len(pg.rows), (len(duck.rows), len(pg.rows))
    for i, (a, b) in enumerate(zip(duck.rows, pg.rows, strict=True)):
        for column, x, y in zip(duck.columns, a, b, strict=True):
            _same(x, y, f"row {i} column {column}")
    assert duck.attrs == pg.attrs


CASES: list[tuple[str, Any, tuple[Any, ...], dict[str, Any]]] = [
    ("summary", queries.summary, (), {"now": NOW}),
    ("summary week", queries.summary, ("7d",), {"now": NOW}),
    ("summary tag", queries.summary, (), {"now": NOW, "tag": ["beta", "it's"]}),
    ("by model", queries.by, ("model",), {"now": NOW}),
    ("by user top 2", queries.by, ("user",), {"now": NOW, "top": 2}),
    ("by tag", queries.by, ("tag",), {"now": NOW}),
    ("by priced_model", queries.by, ("priced_model",), {"now": NOW, "status": "ok"}),
    ("over_time day", queries.over_time, ("day",), {"now": NOW}),
    ("over_time hour", queries.over_time, ("hour", "model", "2d"), {"now": NOW}),
    ("over_time week Paris", queries.over_time, ("week", "tag"), {"now": NOW, "tz": "Europe/Paris"}),
    ("over_time month top", queries.over_time, ("month", "user"), {"now": NOW, "top": 1, "tz": "Asia/Kolkata"}),
    ("trend week", queries.trend, ("week",), {"now": NOW}),
    ("trend day", queries.trend, ("day",), {"now": NOW, "model": "gpt-4o"}),
    ("forecast", queries.forecast, (), {"now": NOW, "tz": "America/New_York"}),
    ("rate", queries.rate, (), {"now": NOW, "session_id": "s1"}),
    ("latency", queries.latency, (), {"now": NOW}),
    ("latency by model", queries.latency, ("model",), {"now": NOW}),
    ("latency by tag", queries.latency, ("tag",), {"now": NOW}),
    ("history", queries.history, (30,), {"now": NOW}),
    ("history filtered", queries.history, (10,), {"now": NOW, "user_id": "bob", "tag": "prod"}),
    ("cache savings", queries.cache_savings, (), {"now": NOW}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "query", "args", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_every_analytics_query_gives_duckdbs_numbers(
    both: tuple[Path, str], name: str, query: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    duck, url = both
    with connect(duck) as con:
        expected = query(con, *args, **kwargs)
    with connect(url) as con:
        got = query(con, *args, **kwargs)
    assert expected.rows, f"{name}: the case selects nothing; it would prove nothing"
    _compare(expected, got)


def test_stored_rows_are_the_same_cell_for_cell(both: tuple[Path, str]) -> None:
    duck, url = both
    order = f"SELECT {', '.join(COLUMNS)} FROM usage ORDER BY id"
    with reading(duck) as con:
        con.execute("SET TimeZone = 'UTC'")
        expected = con.execute(order).fetchall()
    with reading(url) as con:
        got = con.execute(order).fetchall()
    assert len(expected) == len(got) == 400
    for a, b in zip(expected, got, strict=True):
        row_a = dict(zip(COLUMNS, a, strict=True))
        row_b = dict(zip(COLUMNS, b, strict=True))
        row_a["metadata"] = None if row_a["metadata"] is None else json.loads(row_a["metadata"])
        assert row_a == row_b


def test_analytics_object_and_sql_on_a_url(both: tuple[Path, str]) -> None:
    duck, url = both
    frame_duck = analytics.Analytics(duck).by_model()
    frame_pg = analytics.Analytics(url).by_model()
    import pandas.testing

    pandas.testing.assert_frame_equal(frame_duck, frame_pg, check_exact=False, rtol=1e-9)
    mine = analytics.Analytics(url).sql(
        "SELECT count(*) AS n FROM usage WHERE user_id = ? AND model LIKE 'gpt%'", ["alice"]
    )
    theirs = analytics.Analytics(duck).sql(
        "SELECT count(*) AS n FROM usage WHERE user_id = ? AND model LIKE 'gpt%'", ["alice"]
    )
    assert int(mine["n"][0]) == int(theirs["n"][0]) > 0


COMMANDS = [
    ["report"],
    ["report", "--by", "model", "--json"],
    ["report", "--by", "tag", "--json"],
    ["report", "--period", "day", "--since", "2026-11-01", "--until", "2026-11-25", "--json"],
    ["top", "--json"],
    ["history", "--limit", "15", "--json"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_cli_reports_print_the_same_on_postgresql(both: tuple[Path, str], args: list[str]) -> None:
    duck, url = both
    runner = CliRunner()
    a = runner.invoke(cli, ["--db", str(duck), *args])
    b = runner.invoke(cli, ["--db", url, *args])
    assert a.exit_code == 0, a.output
    assert b.exit_code == 0, b.output
    assert a.output.replace(str(duck), "DB") == b.output.replace(str(PostgresUrl(url)), "DB")


def test_html_report_from_a_postgresql_url(both: tuple[Path, str], tmp_path: Path) -> None:
    duck, url = both
    runner = CliRunner()
    for name, db in (("duck.html", str(duck)), ("pg.html", url)):
        done = runner.invoke(cli, ["--db", db, "html", "-o", str(tmp_path / name)])
        assert done.exit_code == 0, done.output
    duck_page = (tmp_path / "duck.html").read_text().replace(str(duck), "DB")
    pg_page = (tmp_path / "pg.html").read_text().replace(str(PostgresUrl(url)), "DB")
    assert duck_page.count("$") == pg_page.count("$") > 0


def test_a_tracker_on_a_url_stores_through_its_spool(pg_url: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("TOKENTRAIL_DB", pg_url)
    with Tracker() as tracker:
        assert isinstance(tracker.path, PostgresUrl)
        tracker.record(
            model="gpt-4o", provider="openai", user_id="u1", tags=["a", "b,c"],
            usage={"input_tokens": 900, "output_tokens": 120}, metadata={"k": "\x00"},
        )  # fmt: skip
        assert tracker.flush(10)
        frame = tracker.analytics.summary()
    assert int(frame["calls"][0]) == 1
    with reading(pg_url) as con:
        tags, meta, cost = con.execute("SELECT tags, metadata, total_cost FROM usage").fetchone()
    assert tags == ["a", "b,c"]
    assert meta == {"k": "\ufffd"}  # PostgreSQL refuses NUL in JSON
    assert cost == Decimal("0.003450000000")


def test_spool_folder_is_keyed_by_the_url_without_its_password() -> None:
    plain = resolve_db("postgresql://me@db.example:5432/usage")
    secret = resolve_db("postgres://me:s3cret@db.example:5432/usage")
    assert isinstance(secret, PostgresUrl)
    assert "s3cret" not in str(secret) and "s3cret" not in repr(secret)
    assert "s3cret" not in str(primary_spool_dir(secret))
    other = resolve_db("postgresql://me@db.example:5432/other")
    assert primary_spool_dir(plain) != primary_spool_dir(other)


def test_server_down_records_wait_in_the_spool_one_warning(
    postgres_server: Any, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL stopped while calls are recorded: nothing lost, one warning, and
    flush() says False until the server is back."""
    caplog.set_level(logging.WARNING, logger="tokentrail")
    tracker = Tracker(pg_url)
    try:
        for _ in range(20):
            tracker.record(model="gpt-4o", provider="openai", usage={"input_tokens": 10})
        assert tracker.flush(10)
        postgres_server.pg_ctl("stop")
        try:
            for _ in range(300):
                tracker.record(model="gpt-4o", provider="openai", usage={"input_tokens": 10})
            assert not tracker.flush(3)
            assert not tracker.flush(3)
        finally:
            postgres_server.pg_ctl("start")
        for _ in range(30):
            tracker.record(model="gpt-4o", provider="openai", usage={"input_tokens": 10})
        assert tracker.flush(20)
    finally:
        tracker.close()
    with reading(pg_url) as con:
        assert con.execute("SELECT count(*) FROM usage").fetchone() == (350,)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "kept in the spool" in warnings[0].getMessage()


def test_export_snapshot_holds_duckdbs_rows(both: tuple[Path, str]) -> None:
    """What ``export`` writes for a URL: the PostgreSQL rows in an in-memory DuckDB table
    of the store's schema, equal to the DuckDB file's rows."""
    from tokentrail.store.postgres_maintenance import export_snapshot

    duck, url = both
    order = "SELECT * FROM usage ORDER BY ts, id"
    with reading(duck) as con:
        expected = con.execute(order).fetchall()
    with export_snapshot(PostgresUrl(url)) as con:
        got = con.execute(order).fetchall()
    meta = COLUMNS.index("metadata")

    def parsed(rows: list[Any]) -> list[Any]:  # jsonb orders keys its own way
        return [(*r[:meta], r[meta] and json.loads(r[meta]), *r[meta + 1 :]) for r in rows]

    assert len(got) == len(expected) == 400
    assert parsed(got) == parsed(expected)


def test_status_forget_and_prune_on_a_url(pg_url: str) -> None:
    from tokentrail.store import postgres_maintenance as pgm
    from tokentrail.store.postgres_schema import PG_SCHEMA_VERSION

    url = PostgresUrl(pg_url)
    records = _records(60, seed=3)
    _fill(pg_url, records)
    info = pgm.status(url)
    assert PG_SCHEMA_VERSION >= 8  # web searches, fees and video tokens
    assert (info["rows"], info["exists"], info["schema_version"]) == (60, True, PG_SCHEMA_VERSION)
    assert info["users"] == len({r.user_id for r in records if r.user_id is not None})
    bob = sum(r.user_id == "bob" for r in records)
    assert bob and pgm.forget(url, "bob", dry_run=True) == bob
    assert pgm.forget(url, "bob") == bob
    assert pgm.status(url)["rows"] == 60 - bob
    old = sum(r.user_id != "bob" and r.ts < NOW - timedelta(days=20) for r in records)
    assert old and pgm.prune(url, timedelta(days=20), now=NOW) == old
    assert pgm.status(url)["rows"] == 60 - bob - old


def test_cli_on_an_unreachable_server_says_so_in_one_line() -> None:
    url = "postgresql://nobody:pw@127.0.0.1:1/usage"  # nothing listens on port 1
    done = CliRunner().invoke(cli, ["--db", url, "report"])
    assert done.exit_code == 1
    assert "cannot connect to postgresql://nobody:***@127.0.0.1:1/usage" in done.output
    assert "pw@" not in done.output and "Traceback" not in done.output


def test_file_only_commands_refuse_a_url_with_what_works() -> None:
    done = CliRunner().invoke(cli, ["--db", "postgresql://me@127.0.0.1:1/usage", "token", "list"])
    assert done.exit_code == 1
    assert "works on a DuckDB file" in done.output and "report" in done.output
