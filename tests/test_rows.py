"""A record is stored column by column as the table says: exact rows, and a new column.

The rows here are written out by hand from the record (and, for money worked out at
ingest, from the catalog's prices), not by calling the encoder: the encoder, the spool
and the ingest SQL are what is under test. The last tests add a column to the table the
way a contributor would (a field, a ``Column``, an ``ALTER TABLE``) and check that the
row layout needs nothing else (a text, a flag and a money column), for new segments and for
those spooled before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.store_helpers import all_rows, leftover_segment
from tokentrail import Tracker
from tokentrail.pricing.types import Cost
from tokentrail.records import COLUMNS, TABLE, Column, RowLayout, UsageRecord, encode_row
from tokentrail.store import UsageStore
from tokentrail.store.framing import frame
from tokentrail.store.ingest import insert_lines, insert_segment, insert_segments
from tokentrail.store.migrate import migrate
from tokentrail.store.segments import SpoolWriter, width_of
from tokentrail.usage import Usage


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


TS = datetime(2026, 11, 23, 12, 30, 15, 123456, tzinfo=timezone.utc)
TS_MICROS = 1_795_437_015_123_456


def stored(db: Path, *records: UsageRecord) -> list[dict[str, Any]]:
    with UsageStore(db, interval=3600) as store:
        for record in records:
            store.submit(record)
        assert store.flush(10)
    return all_rows(db)


def test_every_field_of_a_priced_record_lands_in_its_column(tmp_path: Path):
    record = UsageRecord(
        model="gpt-4o",
        provider="openai",
        usage=Usage(
            input_tokens=1200,
            output_tokens=300,
            cache_read_tokens=1000,
            cache_write_tokens=100,
            cache_write_1h_tokens=40,
            input_audio_tokens=20,
            reasoning_tokens=50,
            output_audio_tokens=10,
            input_image_tokens=30,
            output_image_tokens=60,
            cache_read_audio_tokens=70,
            web_search_requests=2,
            input_video_tokens=15,
            estimated=True,
        ),
        framework="langchain",
        id="rec-1",
        ts=TS,
        latency_ms=812.5,
        user_id="u1",
        session_id="s1",
        operation="chat",
        run_id="run-1",
        parent_run_id="run-0",
        trace_id="trace-1",
        tags=("a", "b"),
        metadata={"team": "search", "n": 3},
        cost=Cost(
            total=Decimal("0.0143"),
            input_cost=Decimal("0.001"),
            cache_read_cost=Decimal("0.0002"),
            cache_write_cost=Decimal("0.0003"),
            output_cost=Decimal("0.01"),
            reasoning_cost=Decimal("0.0005"),
            audio_cost=Decimal("0.0003"),
            fee_cost=Decimal("0.002"),
            model="gpt-4o-2024-08-06",
            catalog_version="2026.11.23",
        ),
        streamed=True,
        status="error",
        error_type="RateLimitError",
        request_id="req-1",
    )
    (row,) = stored(tmp_path / "usage.duckdb", record)
    assert row == {
        "id": "rec-1",
        "ts": TS_MICROS,
        "latency_ms": 812.5,
        "framework": "langchain",
        "provider": "openai",
        "model": "gpt-4o",
        "priced_model": "gpt-4o-2024-08-06",
        "user_id": "u1",
        "session_id": "s1",
        "operation": "chat",
        "run_id": "run-1",
        "parent_run_id": "run-0",
        "trace_id": "trace-1",
        "tags": ["a", "b"],
        "metadata": '{"team":"search","n":3}',
        "input_tokens": 1200,
        "output_tokens": 300,
        "total_tokens": 1500,
        "cache_read_tokens": 1000,
        "cache_write_tokens": 100,
        "cache_write_1h_tokens": 40,
        "reasoning_tokens": 50,
        "input_audio_tokens": 20,
        "output_audio_tokens": 10,
        "input_cost": Decimal("0.001"),
        "cache_read_cost": Decimal("0.0002"),
        "cache_write_cost": Decimal("0.0003"),
        "output_cost": Decimal("0.01"),
        "reasoning_cost": Decimal("0.0005"),
        "audio_cost": Decimal("0.0003"),
        "total_cost": Decimal("0.0143"),
        "currency": "USD",
        "cost_source": "catalog",
        "catalog_version": "2026.11.23",
        "estimated": True,
        "streamed": True,
        "status": "error",
        "error_type": "RateLimitError",
        "request_id": "req-1",
        "input_image_tokens": 30,
        "output_image_tokens": 60,
        "cache_read_audio_tokens": 70,
        "web_search_requests": 2,
        "input_video_tokens": 15,
        "fee_cost": Decimal("0.002"),
    }


def test_an_unpriced_cache_hit_keeps_its_notes_in_metadata_and_no_money(tmp_path: Path):
    record = UsageRecord(
        model="house-model",
        provider=None,
        usage=Usage(input_tokens=5, issues=("input_tokens: negative count -1 set to 0",)),
        id="rec-2",
        ts=TS,
        metadata={"k": 1},
        cache_hit=True,
        price_variant="batch",
        user_id='ünïcödé "quoted"\n',
    )
    (row,) = stored(tmp_path / "usage.duckdb", record)
    money = {c: row.pop(c) for c in COLUMNS if c.endswith("_cost")}
    assert money == dict.fromkeys(money)  # every figure unknown, none of them 0
    assert row == {
        "id": "rec-2",
        "ts": TS_MICROS,
        "latency_ms": None,
        "framework": "manual",
        "provider": None,
        "model": "house-model",
        "priced_model": None,
        "user_id": 'ünïcödé "quoted"\n',
        "session_id": None,
        "operation": None,
        "run_id": None,
        "parent_run_id": None,
        "trace_id": None,
        "tags": [],
        "metadata": '{"k":1,"cache_hit":true,"price_variant":"batch",'
        '"usage_issues":["input_tokens: negative count -1 set to 0"]}',
        "input_tokens": 5,
        "output_tokens": 0,
        "total_tokens": 5,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "cache_write_1h_tokens": 0,
        "reasoning_tokens": 0,
        "input_audio_tokens": 0,
        "output_audio_tokens": 0,
        "currency": None,
        "cost_source": None,
        "catalog_version": None,
        "estimated": False,
        "streamed": False,
        "status": "ok",
        "error_type": None,
        "request_id": None,
        "input_image_tokens": 0,
        "output_image_tokens": 0,
        "cache_read_audio_tokens": 0,
        "web_search_requests": 0,
        "input_video_tokens": 0,
    }


def test_a_usual_call_is_stored_with_the_catalogs_money(tmp_path: Path):
    # gpt-4o: $2.50 per 1M input tokens, $1.25 cached, $10 output (pricing/openai.yaml).
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        tracker.record(
            model="gpt-4o",
            provider="openai",
            usage={"input_tokens": 5000, "cache_read_tokens": 1000, "output_tokens": 300},
        )
    (row,) = all_rows(db)
    assert row["priced_model"] == "gpt-4o"
    assert row["input_cost"] == Decimal("0.01")  # 4,000 uncached tokens
    assert row["cache_read_cost"] == Decimal("0.00125")
    assert row["output_cost"] == Decimal("0.003")
    assert (row["cache_write_cost"], row["reasoning_cost"], row["audio_cost"]) == (0, 0, 0)
    assert row["total_cost"] == Decimal("0.01425")
    assert (row["currency"], row["cost_source"]) == ("USD", "catalog")


def test_a_segment_names_the_number_of_columns_its_rows_hold(tmp_path: Path):
    writer = SpoolWriter(tmp_path, max_rows=10)
    writer.append(frame(encode_row(UsageRecord(model="m", provider=None, usage=Usage()))))
    path = writer.rotate()
    writer.close()
    assert path is not None and path.name.endswith(f".c{len(COLUMNS)}.jsonl")
    assert width_of(path) == len(COLUMNS)
    # Segments of the first release carry no width: they hold its 39 columns.
    assert width_of(tmp_path / "123-abc-00000001.jsonl") == 39


# ---------------------------------------------------------------------------- a new column
@dataclass(slots=True)
class RegionRecord(UsageRecord):
    """A record with the fields of the columns a contributor adds."""

    region: str | None = None
    retried: bool = False


@dataclass(frozen=True, slots=True)
class SurchargeCost(Cost):
    """A cost with the field of a money column a contributor adds."""

    fee: Decimal = Decimal(0)


WIDER = (
    *TABLE,
    Column("region"),
    Column("retried", "flag", default="false"),
    Column("surcharge_cost", "money", "cost", "fee"),
)


def wider_db(path: Path) -> Any:
    con = duckdb.connect(str(path))
    migrate(con)
    con.execute("ALTER TABLE usage ADD COLUMN region VARCHAR")
    con.execute("ALTER TABLE usage ADD COLUMN retried BOOLEAN NOT NULL DEFAULT false")
    con.execute("ALTER TABLE usage ADD COLUMN surcharge_cost DECIMAL(18, 12)")
    return con


def test_a_column_added_to_the_table_is_encoded_from_its_record_field():
    cost = SurchargeCost(total=Decimal("0.5"), fee=Decimal("0.25"))
    record = RegionRecord(
        model="m", provider=None, usage=Usage(), cost=cost, region="eu-west", retried=True
    )
    row = RowLayout(WIDER).encode(record)
    assert len(row) == len(WIDER)
    assert row[-3:] == ("eu-west", True, "0.25")


def test_a_column_added_to_the_table_round_trips_through_the_spool_and_ingest(tmp_path: Path):
    layout = RowLayout(WIDER)
    new = RegionRecord(
        model="m",
        provider=None,
        usage=Usage(input_tokens=3),
        cost=SurchargeCost(total=Decimal("0.5"), fee=Decimal("0.25")),
        region="eu-west",
    )
    kept = RegionRecord(model="m", provider=None, usage=Usage(input_tokens=4), retried=True)
    segment = tmp_path / f"1-a-00000002.c{len(WIDER)}.jsonl"
    segment.write_bytes(frame(layout.encode(new)))
    con = wider_db(tmp_path / "usage.duckdb")
    try:
        assert insert_segments(con, [(segment, 1)], table=WIDER) == (1, 1)
        assert insert_lines(con, [frame(layout.encode(kept))], table=WIDER) == 1
        got = con.execute("SELECT id, input_tokens, region, retried, surcharge_cost FROM usage")
        rows = got.fetchall()
    finally:
        con.close()
    assert sorted(rows) == sorted(
        [(new.id, 3, "eu-west", False, Decimal("0.25")), (kept.id, 4, None, True, None)]
    )


def test_a_segment_spooled_before_a_column_was_added_is_stored_with_its_default(
    tmp_path: Path,
):
    old = UsageRecord(model="m", provider=None, usage=Usage(input_tokens=7, output_tokens=2))
    segment = tmp_path / "1-a-00000001.jsonl"  # the first release's name: 39 columns
    segment.write_bytes(frame(encode_row(old)[:39]))
    con = wider_db(tmp_path / "usage.duckdb")
    try:
        assert insert_segment(con, segment, table=WIDER) == 1
        got = con.execute(
            "SELECT id, total_tokens, output_image_tokens, region, retried, surcharge_cost FROM usage"
        )
        rows = got.fetchall()
    finally:
        con.close()
    assert rows == [(old.id, 9, 0, None, False, None)]


def test_a_row_priced_at_ingest_by_an_older_version_is_stored_with_its_money(tmp_path: Path):
    # Older versions left the usual call's money to DuckDB: no figures in the row, then
    # the mark and each leaf's price per token (input, cache read, cache write 5m and 1h,
    # input audio, output, reasoning, output audio). gpt-4o: $2.50, $1.25 and $10 per 1M.
    line = (
        '["old-1","2026-11-23T12:30:15.123456+00:00",80.0,"langchain","openai","gpt-4o",'
        '"gpt-4o","u1",null,null,null,null,null,[],null,5000,300,5300,1000,0,0,0,0,0,'
        'null,null,null,null,null,null,null,"USD","catalog","2026.11.23",false,false,"ok",'
        'null,null,"r1","0.0000025","0.00000125","0.0000025","0.0000025","0.0000025",'
        '"0.00001","0.00001","0.00001"]\n'
    )
    db = tmp_path / "usage.duckdb"
    leftover_segment(db, line.encode(), first_release=True)
    with UsageStore(db) as store:
        assert store.flush(10)
    (row,) = all_rows(db)
    assert (row["id"], row["ts"], row["user_id"]) == ("old-1", TS_MICROS, "u1")
    assert row["input_cost"] == Decimal("0.01")  # 4,000 uncached tokens
    assert row["cache_read_cost"] == Decimal("0.00125")
    assert row["output_cost"] == Decimal("0.003")
    assert row["total_cost"] == Decimal("0.01425")
