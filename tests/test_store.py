"""The store on real DuckDB files: paths, exact rows, migrations, bad storage, exactly-once."""

from __future__ import annotations

import logging
import os
import shutil
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.store_helpers import (
    all_rows,
    count,
    leftover_segment,
    make_record,
    spooled_segments,
    wait_for_rows,
)
from tokentrail import StoreError
from tokentrail.pricing.types import Cost
from tokentrail.records import COLUMNS, encode_row
from tokentrail.store import UsageStore, batch, reading, resolve_db_path
from tokentrail.store.framing import frame
from tokentrail.store.migrate import MIGRATIONS_TABLE, migrate, schema_version
from tokentrail.store.paths import fallback_spool_dir
from tokentrail.store.schema import MIGRATIONS, SCHEMA_VERSION
from tokentrail.store.segments import SEGMENT_SUFFIX, read_segment


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The fallback spool lives under the user state directory: keep it in tmp_path.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


# ---------------------------------------------------------------------------- paths
def test_path_argument_wins_over_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TOKENTRAIL_DB", str(tmp_path / "env.duckdb"))
    assert resolve_db_path(tmp_path / "arg.duckdb") == tmp_path / "arg.duckdb"
    assert resolve_db_path(None) == tmp_path / "env.duckdb"


def test_default_path_is_in_the_user_data_directory(monkeypatch: pytest.MonkeyPatch):
    import platformdirs

    monkeypatch.delenv("TOKENTRAIL_DB", raising=False)
    expected = Path(platformdirs.user_data_path("tokentrail")) / "usage.duckdb"
    assert resolve_db_path() == expected


def test_nothing_is_created_until_a_record_arrives(tmp_path: Path):
    db = tmp_path / "deep" / "dir" / "usage.duckdb"
    store = UsageStore(db)
    try:
        assert store.flush(5)
        assert not db.parent.exists()
        store.submit(make_record())
        assert store.flush(10)
        assert db.exists()
    finally:
        store.close()


# ---------------------------------------------------------------------------- rows
def test_naive_timestamps_are_taken_as_utc(tmp_path: Path):
    db = tmp_path / "usage.duckdb"
    naive = datetime(2026, 1, 2, 3, 4, 5, 678901)
    with UsageStore(db) as store:
        store.submit(make_record(ts=naive))
        assert store.flush(10)
    aware = naive.replace(tzinfo=timezone.utc)
    assert all_rows(db)[0]["ts"] == int(aware.timestamp()) * 1_000_000 + 678901


def test_times_in_other_zones_and_of_odd_types_are_stored_as_the_right_instant(tmp_path: Path):
    from zoneinfo import ZoneInfo

    class Moment(datetime):  # a datetime subclass (as pendulum/arrow objects are)
        pass

    db = tmp_path / "usage.duckdb"
    india = datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=ZoneInfo("Asia/Kolkata"))
    odd = Moment(2026, 3, 1, 6, 30, 0, 5, tzinfo=timezone.utc)
    with UsageStore(db) as store:
        store.submit(make_record(0, ts=india))
        store.submit(make_record(1, ts=odd))
        assert store.flush(10)
    got = sorted(r["ts"] for r in all_rows(db))
    expected = int(datetime(2026, 3, 1, 6, 30, tzinfo=timezone.utc).timestamp()) * 1_000_000 + 5
    assert got == [expected, expected]


def test_a_segment_spooled_by_an_older_version_with_epoch_microseconds_is_stored(
    tmp_path: Path,
):
    import orjson

    db = tmp_path / "usage.duckdb"
    rec = make_record(0)
    row = list(encode_row(rec))
    when = datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)
    row[1] = int(when.timestamp()) * 1_000_000 + 999999  # the format before RFC 3339 text
    leftover_segment(db, orjson.dumps(row) + b"\n")
    with UsageStore(db) as store:
        assert store.flush(10)
    (stored,) = all_rows(db)
    assert stored["id"] == rec.id
    assert stored["ts"] == row[1]


def test_costs_too_large_for_the_column_become_unknown_not_a_failed_batch(tmp_path: Path):
    db = tmp_path / "usage.duckdb"
    with UsageStore(db) as store:
        store.submit(make_record(1, cost=Cost(total=Decimal("1e30"))))  # beyond 26 digits
        store.submit(make_record(2, cost=Cost(total=Decimal("NaN"))))
        store.submit(make_record(3))
        store.submit(make_record(4, cost=Cost(total=Decimal("1e9"))))  # a real cost: kept
        assert store.flush(10)
    totals = sorted(str(r["total_cost"]) for r in all_rows(db))
    assert totals == ["0.000123456789", "1000000000.000000000000", "None", "None"]


def test_reading_a_missing_file_gives_an_empty_usage_table(tmp_path: Path):
    db = tmp_path / "nothing.duckdb"
    with reading(db) as con:
        cur = con.execute("SELECT * FROM usage")
        assert [d[0] for d in cur.description] == list(COLUMNS)
        assert cur.fetchall() == []
    assert not db.exists()


# ---------------------------------------------------------------------------- migrations
def test_migrations_are_recorded_in_order(tmp_path: Path):
    db = tmp_path / "usage.duckdb"
    with UsageStore(db) as store:
        store.submit(make_record())
        assert store.flush(10)
    with reading(db) as con:
        got = con.execute(f"SELECT version, name FROM {MIGRATIONS_TABLE} ORDER BY version")
        assert got.fetchall() == [(v, name) for v, name, _ in MIGRATIONS]
        assert schema_version(con) == SCHEMA_VERSION


def test_a_database_from_an_older_version_is_migrated_and_keeps_its_rows(tmp_path: Path):
    db = tmp_path / "usage.duckdb"
    con = duckdb.connect(str(db))
    con.execute(
        f"CREATE TABLE {MIGRATIONS_TABLE} (version INTEGER, name VARCHAR, applied_at TIMESTAMPTZ DEFAULT current_timestamp)"
    )
    version, name, statements = MIGRATIONS[0]
    for statement in statements:
        con.execute(statement)
    con.execute(f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES (?, ?)", [version, name])
    con.execute(
        "INSERT INTO usage (id, ts, framework) VALUES ('old-row', TIMESTAMPTZ '2025-01-01 00:00:00+00', 'manual')"
    )
    con.close()
    with UsageStore(db) as store:
        store.submit(make_record())
        assert store.flush(10)
    with reading(db) as con:
        assert schema_version(con) == SCHEMA_VERSION
        ids = sorted(r[0] for r in con.execute("SELECT id FROM usage").fetchall())
    assert len(ids) == 2 and "old-row" in ids


def newer_schema_db(db: Path) -> None:
    con = duckdb.connect(str(db))
    migrate(con)
    con.execute(
        f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES (?, 'from the future')",
        [SCHEMA_VERSION + 1],
    )
    con.close()


def corrupt_db(db: Path) -> None:
    db.write_bytes(b"this is not a duckdb file\n" * 200)


def unwritable_db(tmp_path: Path) -> Path:
    """A database path whose directory cannot be created or written."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.access(locked, os.W_OK):  # running as root: permissions are not enforced
        blocker = tmp_path / "blocker"
        blocker.write_text("a file where a directory should be")
        return blocker / "sub" / "usage.duckdb"
    return locked / "usage.duckdb"


@pytest.mark.parametrize("kind", ["newer schema", "corrupt file", "unwritable directory"])
def test_bad_storage_keeps_records_in_the_spool_with_one_warning(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
):
    if kind == "newer schema":
        db = tmp_path / "usage.duckdb"
        newer_schema_db(db)
    elif kind == "corrupt file":
        db = tmp_path / "usage.duckdb"
        corrupt_db(db)
    else:
        db = unwritable_db(tmp_path)
    caplog.set_level(logging.WARNING, logger="tokentrail")
    store = UsageStore(db, interval=0.05)
    try:
        for i in range(20):
            store.submit(make_record(i))  # never raises
        assert store.flush(5) is False
        assert store.flush(5) is False
        store.submit(make_record(20))
        assert store.flush(5) is False
        assert store.pending() == 21
    finally:
        store.close(timeout=2)
    warnings = [r for r in caplog.records if "records are kept in the spool" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    segments = spooled_segments(db)
    assert sum(len(read_segment(p)[0]) for p in segments) == 21
    if kind == "unwritable directory":
        assert all(fallback_spool_dir(db) in p.parents for p in segments)


@pytest.mark.parametrize("kind", ["newer schema", "corrupt file"])
def test_reading_bad_storage_raises_a_clear_store_error(tmp_path: Path, kind: str):
    db = tmp_path / "usage.duckdb"
    (newer_schema_db if kind == "newer schema" else corrupt_db)(db)
    with pytest.raises(StoreError) as info:
        with reading(db):
            pass
    text = str(info.value)
    assert str(db) in text
    assert ("newer" in text) if kind == "newer schema" else ("not a DuckDB database" in text)


def test_spooled_records_are_stored_once_the_database_is_fixed(tmp_path: Path):
    db = tmp_path / "usage.duckdb"
    corrupt_db(db)
    store = UsageStore(db)
    for i in range(7):
        store.submit(make_record(i))
    assert store.flush(5) is False
    store.close(timeout=2)
    db.unlink()  # the user moves the broken file away
    with UsageStore(db) as fresh:
        assert fresh.flush(10)
    assert count(db) == 7
    assert spooled_segments(db) == []


def test_a_database_folder_deleted_while_in_use_starts_a_new_database_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    # The writer used to keep the deleted file's "migrated" mark: the new file had no
    # tables, every batch failed and flush() said False until the process ended.
    folder = tmp_path / "data"
    db = folder / "usage.duckdb"
    caplog.set_level(logging.WARNING, logger="tokentrail")
    with UsageStore(db) as store:
        for i in range(3):
            store.submit(make_record(i))
        assert store.flush(10)
        shutil.rmtree(folder)  # the user deletes the folder under a running app
        for i in range(3, 8):
            store.submit(make_record(i))
        assert store.flush(10)
        assert count(db) == 5  # every record captured after the deletion
    said = [r.getMessage() for r in caplog.records]
    assert sum("was deleted or replaced while in use" in m for m in said) == 1, said
    assert not any("records are kept in the spool" in m for m in said), said


# ---------------------------------------------------------------------------- exactly once
def test_a_crash_between_commit_and_spool_deletion_does_not_duplicate(tmp_path: Path):
    db = tmp_path / "usage.duckdb"
    saved = tmp_path / "saved"
    saved.mkdir()
    store = UsageStore(db, interval=3600)
    for i in range(50):
        store.submit(make_record(i))
    # Rotate the segment without writing it, keep a copy: this is what the disk holds
    # if the process dies right after the DuckDB commit, before deleting the file.
    spool = store._spool
    assert spool is not None
    segment = spool.rotate()
    assert segment is not None
    store._ready.append((segment, 50))
    shutil.copy(segment, saved / segment.name)
    assert store.flush(10)
    store.close()
    assert count(db) == 50
    # The copy comes back as a dead writer's leftover segment.
    shutil.copy(saved / segment.name, segment)
    with UsageStore(db) as other:
        assert other.flush(10)
    assert count(db) == 50
    assert not segment.exists()


def test_a_record_cut_short_by_a_crash_is_skipped_and_the_rest_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    db = tmp_path / "usage.duckdb"
    records = [make_record(i) for i in range(3)]
    body = b"".join(frame(encode_row(r)) for r in records)
    seg = leftover_segment(db, body + frame(encode_row(make_record(3)))[:-25])
    caplog.set_level(logging.WARNING, logger="tokentrail")
    with UsageStore(db) as store:
        assert store.flush(10)
    assert sorted(r["id"] for r in all_rows(db)) == sorted(r.id for r in records)
    assert not seg.exists()
    assert any("cut short" in r.getMessage() for r in caplog.records)


def test_lines_that_are_not_records_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    db = tmp_path / "usage.duckdb"
    good = [make_record(i) for i in range(2)]
    body = (
        frame(encode_row(good[0]))
        + b'{"not": "a record"}\n'
        + b"not json at all\n"
        + b'["too", "short"]\n'
        + frame(encode_row(good[1]))
    )
    leftover_segment(db, body)
    caplog.set_level(logging.WARNING, logger="tokentrail")
    with UsageStore(db) as store:
        assert store.flush(10)
    assert sorted(r["id"] for r in all_rows(db)) == sorted(r.id for r in good)
    assert any(
        "3 records could not be read and 2 were stored" in r.getMessage() for r in caplog.records
    )


def test_read_segment_reads_back_what_frame_wrote(tmp_path: Path):
    seg = tmp_path / f"x-1.c{len(COLUMNS)}{SEGMENT_SUFFIX}"
    rows = [encode_row(make_record(i)) for i in range(3)]
    seg.write_bytes(b"".join(frame(r) for r in rows) + b'["torn')
    got, bad = read_segment(seg)
    as_written = [(r[0], r[1].isoformat(), *r[2:]) for r in rows]  # ts is written as RFC 3339 text
    assert got == as_written
    assert bad == len(b'["torn')


def test_invalid_unicode_is_replaced_not_lost(tmp_path: Path):
    db = tmp_path / "usage.duckdb"
    with UsageStore(db) as store:
        store.submit(make_record(user_id="bad\ud800surrogate", operation="emoji 😀"))
        assert store.flush(10)
    (row,) = all_rows(db)
    assert row["user_id"] == "bad?surrogate"
    assert row["operation"] == "emoji 😀"


def test_memory_stays_bounded_when_nothing_can_be_spooled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker / "state"))  # fallback unusable too
    monkeypatch.setattr("tempfile.tempdir", str(blocker / "tmp"))  # and the last one
    db = blocker / "usage.duckdb"
    caplog.set_level(logging.WARNING, logger="tokentrail")
    store = UsageStore(db, memory_cap=100, interval=3600)
    try:
        for i in range(250):
            store.submit(make_record(i))
        assert len(store._memory) == 100
        assert store.flush(2) is False
    finally:
        store.close(timeout=1)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("oldest are being dropped" in m for m in messages) == 1
    assert sum("keeping records in memory" in m for m in messages) == 1


def test_a_few_waiting_records_are_stored_after_max_delay_not_at_every_look(tmp_path: Path):
    import time

    db = tmp_path / "usage.duckdb"
    with UsageStore(db, interval=0.02, max_delay=0.5) as store:
        assert store.flush(10)  # the first look (and its scan for dead processes) is done
        for i in range(3):
            store.submit(make_record(i))
        time.sleep(0.3)  # ~15 looks, none of them a batch: 3 records are not worth one
        assert count(db) == 0 and store.pending() == 3
        assert wait_for_rows(db, 3) == 3  # stored by the writer, without a flush
        assert store.pending() == 0


def test_a_thousand_waiting_records_are_stored_at_the_next_look(tmp_path: Path):
    from tokentrail.store.cadence import BATCH_ROWS as _BATCH_ROWS

    db = tmp_path / "usage.duckdb"
    with UsageStore(db, interval=0.02, max_delay=3600) as store:
        assert store.flush(10)
        for i in range(_BATCH_ROWS):
            store.submit(make_record(i))
        assert wait_for_rows(db, _BATCH_ROWS) == _BATCH_ROWS


def test_flush_stores_records_that_would_still_wait(tmp_path: Path):
    db = tmp_path / "usage.duckdb"
    with UsageStore(db, interval=0.02, max_delay=3600) as store:
        store.submit(make_record(1))
        assert store.flush(10)
        assert count(db) == 1


def _look_gaps(
    monkeypatch: pytest.MonkeyPatch, db: Path, *, lasting: float, succeeds: bool, looks: int
) -> list[float]:
    """Seconds between the starts of the writer's looks, each look taking ``lasting``."""
    import itertools
    import threading
    import time

    starts: list[float] = []
    enough = threading.Event()

    def slow_look(self: UsageStore, deadline: float | None, *, force: bool) -> bool:
        if force:  # close()'s flush: not one of the writer's looks
            return True
        starts.append(time.monotonic())
        if len(starts) >= looks:
            enough.set()
        time.sleep(lasting)
        return succeeds

    monkeypatch.setattr(UsageStore, "_drain", slow_look)
    with UsageStore(db, interval=0.5):
        assert enough.wait(30)
    return [b - a for a, b in itertools.pairwise(starts)]


def test_a_long_batch_does_not_push_the_writers_next_look_a_whole_interval_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Under sustained load a batch takes much of the interval; waiting a whole interval
    # after it would leave the writer storing every other second while the backlog grows.
    gaps = _look_gaps(monkeypatch, tmp_path / "usage.duckdb", lasting=0.35, succeeds=True, looks=5)
    assert all(0.45 <= gap < 0.7 for gap in gaps), gaps  # every 0.5 s, not every 0.85 s


def test_after_a_failed_look_the_writer_waits_a_whole_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # A busy or unusable file: the writer does not hammer it.
    gaps = _look_gaps(monkeypatch, tmp_path / "usage.duckdb", lasting=0.35, succeeds=False, looks=3)
    assert all(gap >= 0.8 for gap in gaps), gaps


def test_a_memory_limit_too_tight_for_a_batch_is_raised_and_the_batch_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    from tokentrail.store import engine

    # DuckDB's JSON reader needs ~32 MB at once: 8 MB fails until the limit has doubled.
    monkeypatch.setattr(engine, "MEMORY_LIMIT_MB", 8)
    db = tmp_path / "usage.duckdb"
    caplog.set_level(logging.DEBUG, logger="tokentrail")
    with UsageStore(db) as store:
        for i in range(5):
            store.submit(make_record(i))
        assert store.flush(10)
        duck = store._batches.engine
        assert duck.memory_limit_mb > 8
        # The raised limit is what DuckDB uses (it is set once per change, not per batch).
        setting = duck.duck.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        value, unit = setting.split()
        assert unit == "MiB"  # DuckDB shows "64MB" (10**6 bytes) as "61.0 MiB"
        assert abs(float(value) * 2**20 - duck.memory_limit_mb * 10**6) < 2**20
    assert count(db) == 5
    assert any("memory limit raised" in r.getMessage() for r in caplog.records)
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)


@pytest.mark.parametrize("where", ["attaching", "migrating"])
def test_an_interrupted_batch_is_retried_without_a_warning(
    where: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):
    # DuckDB's exit hooks interrupt a running query (they run before ours when duckdb was
    # imported after tokentrail): that is not a broken file, and nothing is lost.
    from tokentrail.store.engine import Engine

    interrupts = [1]

    def interrupted_once(real: Any) -> Any:
        def step(*args: Any) -> Any:
            if interrupts:
                interrupts.pop()
                raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")
            return real(*args)

        return step

    if where == "attaching":
        monkeypatch.setattr(Engine, "open", interrupted_once(Engine.open))
    else:
        monkeypatch.setattr(batch, "migrate", interrupted_once(batch.migrate))
    db = tmp_path / "usage.duckdb"
    caplog.set_level(logging.DEBUG, logger="tokentrail")
    with UsageStore(db) as store:
        for i in range(5):
            store.submit(make_record(i))
        # The first batch (the background thread's or this flush's) is interrupted.
        stored = store.flush(10) or store.flush(10)
        assert stored and store.pending() == 0
    assert not interrupts
    assert count(db) == 5
    assert any("interrupted; will retry" in r.getMessage() for r in caplog.records)
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)


def test_batches_interrupted_again_and_again_are_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    def always_interrupted(*args: Any) -> None:
        raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")

    monkeypatch.setattr(batch, "migrate", always_interrupted)
    db = tmp_path / "usage.duckdb"
    with caplog.at_level(logging.WARNING, logger="tokentrail"):
        with UsageStore(db) as store:
            store.submit(make_record(1))
            for _ in range(batch.MAX_INTERRUPTED + 1):
                assert not store.flush(5)
            assert store.pending() == 1  # kept in the spool
    warned = [r.getMessage() for r in caplog.records if "Interrupted" in r.getMessage()]
    assert len(warned) == 1 and "records are kept in the spool" in warned[0]


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __repr__ = __str__


@pytest.mark.parametrize(
    "bad",
    [
        {"latency_ms": _Unprintable()},
        {"tags": ("ok", _Unprintable())},
        {"request_id": _Unprintable()},
        {"error_type": _Unprintable()},
    ],
    ids=["latency", "tag", "request-id", "error-type"],
)
def test_a_record_that_cannot_be_encoded_is_stored_with_its_counts(
    tmp_path: Path, bad: dict[str, Any], caplog: pytest.LogCaptureFixture
):
    db = tmp_path / "usage.duckdb"
    record = make_record(7, user_id="u-salvage", **bad)
    with caplog.at_level(logging.WARNING, logger="tokentrail"), UsageStore(db) as store:
        store.submit(record)
        assert store.flush()
    with reading(db) as con:
        rows = con.execute(
            "SELECT id, user_id, input_tokens, output_tokens, metadata->>'encode_error' FROM usage"
        ).fetchall()
    u = record.usage
    assert rows == [(record.id, "u-salvage", u.input_tokens, u.output_tokens, "true")]
    assert "could not be encoded" in caplog.text


def test_forget_deletes_nothing_while_spooled_records_cannot_be_stored_first(tmp_path: Path):
    import subprocess
    import sys

    from tokentrail.store.maintenance import forget

    db = tmp_path / "usage.duckdb"
    with UsageStore(db) as store:
        store.submit(make_record(0, user_id="gone"))
        assert store.flush()
    leftover_segment(db, frame(encode_row(make_record(1, user_id="gone"))))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time\ncon = duckdb.connect({str(db)!r})\n"
            "print('locked', flush=True)\ntime.sleep(4)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError, match="nothing was deleted"):
            forget(db, "gone", timeout=0.5)
    finally:
        holder.wait(timeout=30)
    assert forget(db, "gone") == 2  # once the file is free: the spooled row is stored, then deleted
    with reading(db) as con:
        assert con.execute("SELECT count(*) FROM usage").fetchall() == [(0,)]


def test_many_ready_segments_are_stored_in_groups_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    db = tmp_path / "usage.duckdb"
    store = UsageStore(db, interval=3600, segment_rows=7)
    records = [make_record(i) for i in range(100)]  # 15 segments of 7 and one of 2
    for r in records:
        store.submit(r)
    assert len(store._ready) == 14
    # Groups of at most 30 rows: four segments per transaction, the last group smaller.
    monkeypatch.setattr(batch, "GROUP_ROWS", 30)
    try:
        assert store.flush(10)
    finally:
        store.close()
    assert sorted(r["id"] for r in all_rows(db)) == sorted(r.id for r in records)
    assert not spooled_segments(db)
    with reading(db) as con:
        ledger = con.execute("SELECT sum(row_count), count(*) FROM tokentrail_ingested").fetchall()
    assert ledger == [(100, 15)]


def test_a_group_skips_a_segment_the_ledger_lists_and_stores_the_rest(tmp_path: Path):
    from tokentrail.store.ingest import insert_segments

    db = tmp_path / "usage.duckdb"
    spool = tmp_path / "segments"
    spool.mkdir()
    width = f"c{len(COLUMNS)}"
    first, second = spool / f"a-00000001.{width}.jsonl", spool / f"a-00000002.{width}.jsonl"
    first.write_bytes(b"".join(frame(encode_row(make_record(i))) for i in range(3)))
    second.write_bytes(b"".join(frame(encode_row(make_record(i))) for i in range(3, 8)))
    con = duckdb.connect(str(db))
    try:
        migrate(con)
        assert insert_segments(con, [(first, 3)]) == (3, 3)
        # The first file is still there (a crash before its deletion): listed, so skipped.
        assert insert_segments(con, [(first, 3), (second, 5)]) == (5, 5)
        assert con.execute("SELECT count(*) FROM usage").fetchall() == [(8,)]
    finally:
        con.close()


def test_groups_hold_up_to_the_limit_and_never_drop_a_segment():
    segs = [(Path(f"s{i}"), n) for i, n in enumerate([5, 5, 20, 1, 40, 3])]
    groups = batch.groups(segs, 10)
    assert [[p.name for p, _ in g] for g in groups] == [
        ["s0", "s1"],
        ["s2"],
        ["s3"],
        ["s4"],
        ["s5"],
    ]
    assert batch.groups([], 10) == []


def test_the_ledger_drops_entries_of_deleted_segments_and_keeps_only_the_last_batch(
    tmp_path: Path,
):
    db = tmp_path / "usage.duckdb"
    with UsageStore(db, interval=3600) as store:
        for batch in range(4):
            for i in range(5):
                store.submit(make_record(batch * 5 + i))
            assert store.flush(10)
            with reading(db) as con:
                ledger = con.execute("SELECT count(*) FROM tokentrail_ingested").fetchall()
            # The batch just stored is listed until its file is known to be deleted; the
            # entries of earlier batches went in the same transaction as this one.
            assert ledger == [(1,)], batch
    assert count(db) == 20
