"""Mapped spool segments: allocated up front, written by copy, cut to size when closed.

A killed writer leaves a segment with zero bytes after its last record; the next drain
removes them without calling them damage. Where blocks cannot be allocated, segments are
written with ``os.write`` as before.
"""

from __future__ import annotations

import errno
import json
import logging
import mmap
import os
from pathlib import Path
from typing import Any

import pytest

from tokentrail.records import COLUMNS, UsageRecord, encode_row
from tokentrail.store import UsageStore, reading, segments
from tokentrail.store.framing import frame
from tokentrail.store.paths import primary_spool_dir
from tokentrail.store.recovery import cut_torn_tail
from tokentrail.store.segments import SEGMENT_SUFFIX, SpoolWriter, read_segment
from tokentrail.usage import Usage

pytestmark = pytest.mark.skipif(
    not segments._MAP_SEGMENTS, reason="mapped segments need posix_fallocate and flock"
)


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def line(i: int, **kw: Any) -> bytes:
    record = UsageRecord(
        model="gpt-4o", provider="openai", usage=Usage(input_tokens=i, output_tokens=1), **kw
    )
    return frame(encode_row(record))


def ids(db: Path) -> list[str]:
    with reading(db) as con:
        return sorted(r[0] for r in con.execute("SELECT id FROM usage").fetchall())


def test_an_open_segment_is_allocated_and_closing_cuts_it_to_what_was_written(tmp_path: Path):
    writer = SpoolWriter(tmp_path, max_rows=100)
    lines = [line(i) for i in range(5)]
    for data in lines:
        writer.append(data)
    segment = writer._path
    assert segment is not None
    # Written by copy into the map: the file keeps its allocated size while open.
    assert segment.stat().st_size > sum(map(len, lines))
    assert segment.read_bytes().startswith(b"".join(lines))
    assert writer.rotate() == segment
    assert segment.read_bytes() == b"".join(lines)
    writer.close()


def test_a_segment_closes_when_its_bytes_are_used_up_and_counts_its_records(tmp_path: Path):
    writer = SpoolWriter(tmp_path, max_rows=1000)  # segments of at most 640 KB
    big = line(0, metadata={"blob": "x" * 40_000})
    capacities: list[int] = []
    for _ in range(60):
        writer.append(big)
        if not capacities or capacities[-1] != writer._capacity:
            capacities.append(writer._capacity)
    closed = writer.take_closed()
    assert len(closed) >= 3, "segments should have been closed for lack of room"
    # Small first, doubling each time one fills up, up to max_rows lines' worth.
    assert capacities[0] == 1 << 18
    assert capacities[1] == 1 << 19
    assert max(capacities) == -(-1000 * 640 // mmap.PAGESIZE) * mmap.PAGESIZE
    for path, rows in closed:
        data = path.read_bytes()
        assert data.count(b"\n") == rows
        read, bad = read_segment(path)
        assert (len(read), bad) == (rows, 0)
    assert sum(rows for _, rows in closed) + writer.rows == 60
    writer.close()


def test_a_record_larger_than_a_segment_gets_a_segment_sized_to_hold_it(tmp_path: Path):
    writer = SpoolWriter(tmp_path, max_rows=3)  # allocates 4 KiB per segment
    huge = line(1, metadata={"blob": "y" * 200_000})
    writer.append(line(0))
    writer.append(huge)
    closed = writer.take_closed()
    # The first segment had no room for it: closed with its one record.
    assert [rows for _, rows in closed] == [1]
    last = writer.rotate()
    assert last is not None
    rows, bad = read_segment(last)
    assert (len(rows), bad) == (1, 0)
    assert json.loads(rows[0][COLUMNS.index("metadata")]) == {"blob": "y" * 200_000}
    writer.close()


def test_a_dead_writers_zero_tail_is_removed_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    db = tmp_path / "usage.duckdb"
    directory = primary_spool_dir(db)
    directory.mkdir(parents=True)
    good = [line(i) for i in range(3)]
    segment = directory / f"999999-deadbeef0000-00000001.c{len(COLUMNS)}{SEGMENT_SUFFIX}"
    # What a killed writer leaves: its records, then the allocated, never written bytes.
    segment.write_bytes(b"".join(good) + bytes(300_000))
    caplog.set_level(logging.WARNING, logger="tokentrail")
    with UsageStore(db) as store:
        assert store.flush(10)
    assert len(ids(db)) == 3
    assert not segment.exists()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_a_record_cut_short_before_the_zero_tail_is_measured_and_cut(tmp_path: Path):
    segment = tmp_path / f"1-a-00000001{SEGMENT_SUFFIX}"
    good = line(1)
    torn = line(2)[:-40]
    segment.write_bytes(good + torn + bytes(200_000))
    assert cut_torn_tail(segment) == len(torn)
    assert segment.read_bytes() == good
    # A segment that is only zeros (killed before its first record) ends up empty.
    empty = tmp_path / f"1-a-00000002{SEGMENT_SUFFIX}"
    empty.write_bytes(bytes(70_000))
    assert cut_torn_tail(empty) == 0
    assert empty.read_bytes() == b""


def test_a_torn_copy_with_its_newline_missing_is_skipped(tmp_path: Path):
    """The newline is stored after the record's other bytes: no newline, no record."""
    db = tmp_path / "usage.duckdb"
    directory = primary_spool_dir(db)
    directory.mkdir(parents=True)
    good = line(1)
    partial = bytearray(line(2))
    partial[len(partial) // 2 :] = bytes(len(partial) - len(partial) // 2)
    segment = directory / f"999999-deadbeef0000-00000001.c{len(COLUMNS)}{SEGMENT_SUFFIX}"
    segment.write_bytes(good + bytes(partial) + bytes(10_000))
    with UsageStore(db) as store:
        assert store.flush(10)
    assert len(ids(db)) == 1


def test_without_block_allocation_segments_are_written_record_by_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    def disk_full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", disk_full)
    db = tmp_path / "usage.duckdb"
    store = UsageStore(db, interval=3600, segment_rows=50)
    records = [
        UsageRecord(model="gpt-4o", provider="openai", usage=Usage(input_tokens=i))
        for i in range(120)
    ]
    for record in records:
        store.submit(record)
    spool = store._spool
    assert spool is not None and spool._map is None
    segment = spool._path
    assert segment is not None
    # Written record by record: the file holds exactly what was submitted so far.
    assert segment.stat().st_size == sum(len(frame(encode_row(r))) for r in records[100:])
    assert store.flush(10)
    store.close()
    assert ids(db) == sorted(r.id for r in records)


def test_every_record_is_stored_once_across_many_mapped_segments(tmp_path: Path):
    db = tmp_path / "usage.duckdb"
    store = UsageStore(db, interval=3600, segment_rows=37)
    records = [
        UsageRecord(model="gpt-4o", provider="openai", usage=Usage(input_tokens=i))
        for i in range(1000)
    ]
    for record in records:
        store.submit(record)
    assert store.flush(20)
    store.close()
    assert ids(db) == sorted(r.id for r in records)


def _kernel_populates() -> bool:
    """Linux 5.14+ has ``MADV_POPULATE_WRITE``."""
    if os.uname().sysname != "Linux":
        return False
    major, minor = (int(part) for part in os.uname().release.split(".")[:2])
    return (major, minor) >= (5, 14)


def test_pages_are_made_ready_a_chunk_ahead_of_the_records(tmp_path: Path):
    writer = SpoolWriter(tmp_path, max_rows=100_000)
    lines = [line(i) for i in range(3000)]
    page = mmap.PAGESIZE
    for data in lines:
        writer.append(data)
        # Always ahead of what was written, by at most one chunk and a record, on a page
        # boundary, never beyond the map.
        assert writer._pos <= writer._populated <= writer._capacity
        assert writer._populated % page == 0
        assert writer._populated - writer._pos <= segments._POPULATE_BYTES + page + len(data)
    if _kernel_populates():
        assert writer._populate_advice is not None, "madvise(MADV_POPULATE_WRITE) failed"
    assert writer.rotate() is not None
    rows = [
        row for path in sorted(tmp_path.glob(f"*{SEGMENT_SUFFIX}")) for row in read_segment(path)[0]
    ]
    assert [row[COLUMNS.index("input_tokens")] for row in rows] == list(range(3000))


def test_a_kernel_that_refuses_the_advice_gets_records_written_all_the_same(tmp_path: Path):
    writer = SpoolWriter(tmp_path, max_rows=100_000)
    writer._populate_advice = 987_654  # no such advice: EINVAL
    for i in range(500):
        data = line(i)
        writer.append(data)
    assert writer._populate_advice is None  # asked once, then left to page faults
    path = writer.rotate()
    assert path is not None
    rows, bad = read_segment(path)
    assert bad == 0 and [row[COLUMNS.index("input_tokens")] for row in rows] == list(range(500))
