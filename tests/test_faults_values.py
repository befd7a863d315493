"""Values that broke the numbers: a latency below 0 and a cost over $1M in one row.

A clock stepped back made p50 latency -5,000 ms; a row costing more than $1M became NULL
and vanished from every sum (``DECIMAL(18, 12)`` holds six digits before the point).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import duckdb

from tests.store_helpers import make_record
from tokentrail import Tracker
from tokentrail.pricing.types import Cost
from tokentrail.store import reading
from tokentrail.store.migrate import MIGRATIONS_TABLE
from tokentrail.store.schema import MIGRATIONS, SCHEMA_VERSION

BIG = Decimal("5000000.123456789012")  # $5M in one row (a batch job, a mistake)


def _big_cost() -> Cost:
    return Cost(total=BIG, input_cost=BIG, model="gpt-4o", catalog_version="test")


def test_a_negative_latency_is_stored_as_null_with_an_issue_flag(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        tracker.record(model="gpt-4o", usage={"input_tokens": 1}, latency_ms=-5000.0)
        tracker.record(model="gpt-4o", usage={"input_tokens": 1}, latency_ms=120.0)
    with reading(db) as con:
        rows = con.execute(
            "SELECT latency_ms, CAST(metadata AS VARCHAR) FROM usage ORDER BY latency_ms"
        ).fetchall()
    assert [r[0] for r in rows] == [120.0, None]
    flagged = json.loads(rows[1][1])
    assert "negative latency" in flagged["latency_issue"]
    assert rows[0][1] is None  # a sane latency carries no flag


def test_a_cost_over_a_million_dollars_is_stored_and_summed(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        tracker.store.submit(make_record(0, cost=_big_cost()))
        tracker.store.submit(make_record(1))
    with reading(db) as con:
        total, inputs = con.execute("SELECT sum(total_cost), sum(input_cost) FROM usage").fetchone()
    assert total == BIG + Decimal("0.000123456789")
    assert inputs == BIG + Decimal("0.0001")


def test_a_database_of_the_narrow_money_type_is_widened_by_a_migration(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    con = duckdb.connect(str(db))  # a database as the 0.1 releases left it: migrations 1-2
    con.execute(
        f"CREATE TABLE {MIGRATIONS_TABLE} (version INTEGER NOT NULL, name VARCHAR NOT NULL, "
        "applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)"
    )
    for version, name, statements in MIGRATIONS[:2]:
        for statement in statements:
            con.execute(statement)
        con.execute(
            f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES (?, ?)", [version, name]
        )
    assert "DECIMAL(18,12)" in str(
        con.execute(
            "SELECT data_type FROM information_schema.columns WHERE column_name = 'total_cost'"
        ).fetchone()
    )
    con.close()
    with Tracker(db) as tracker:
        tracker.store.submit(make_record(0, cost=_big_cost()))
    with reading(db) as con:
        assert con.execute("SELECT sum(total_cost) FROM usage").fetchone() == (BIG,)
        version = con.execute(f"SELECT max(version) FROM {MIGRATIONS_TABLE}").fetchone()
    assert version == (SCHEMA_VERSION,) and SCHEMA_VERSION >= 3
