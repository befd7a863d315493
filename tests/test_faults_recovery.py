"""A damaged spool segment of a process that died: counted exactly, kept as evidence.

A power cut can zero a page of a segment (a torn page takes a dozen records and their
newlines with it); a bad disk or a stray write leaves garbage. Recovery stores every
record that can be read, says exactly how many could not, and keeps the file aside
(``.damaged``) instead of deleting it.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest

from tests.store_helpers import count, leftover_segment, make_record
from tokentrail.records import encode_row
from tokentrail.store import UsageStore
from tokentrail.store.framing import frame

N = 679


@pytest.mark.parametrize(
    ("damage", "size", "seed"),
    [("zeros", 4000, 1), ("zeros", 700, 3), ("garbage", 4000, 1), ("garbage", 2500, 5)],
)
def test_a_damaged_segment_is_counted_exactly_and_kept_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str, size: int, seed: int
) -> None:
    rng = random.Random(seed)
    body = b"".join(frame(encode_row(make_record(i))) for i in range(N))
    mid = len(body) // 2
    bad = bytes(size) if damage == "zeros" else bytes(rng.randrange(256) for _ in range(size))
    body = body[:mid] + bad + body[mid + size :]
    db = tmp_path / "usage.duckdb"
    segment = leftover_segment(db, body)
    caplog.set_level(logging.WARNING, logger="tokentrail")
    with UsageStore(db) as store:
        assert store.flush(10)
    stored = count(db)
    assert 0 < stored < N
    warnings = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert f" {N - stored} records could not be read" in warnings[0], (N - stored, warnings)
    aside = segment.with_name(segment.name + ".damaged")
    assert aside.read_bytes() == body  # the evidence, as it was found
    assert str(aside) in warnings[0]
    assert not segment.exists()
    with UsageStore(db) as again:  # kept aside: never read (nor counted) again
        assert again.flush(10)
    assert count(db) == stored
