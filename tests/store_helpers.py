"""Helpers the store tests share: a known record, reading rows back, leftover segments."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokentrail.pricing.types import Cost
from tokentrail.records import COLUMNS, UsageRecord
from tokentrail.store import reading
from tokentrail.store.paths import fallback_spool_dir, primary_spool_dir
from tokentrail.store.segments import SEGMENT_SUFFIX
from tokentrail.usage import Usage

#: The cost every :func:`make_record` carries unless told otherwise.
KNOWN_COST = Cost(
    total=Decimal("0.000123456789"),
    input_cost=Decimal("0.0001"),
    cache_read_cost=Decimal("1E-7"),
    output_cost=Decimal("0.000023356789"),
    model="gpt-4o",
    catalog_version="test",
)


def make_record(i: int = 0, **kw: Any) -> UsageRecord:
    """A fully attributed, priced record; ``i`` varies its counts, user and request id."""
    defaults: dict[str, Any] = {
        "model": "gpt-4o",
        "provider": "openai",
        "usage": Usage(input_tokens=100 + i, output_tokens=10, cache_read_tokens=50),
        "user_id": f"user-{i % 3}",
        "session_id": "s1",
        "operation": "chat",
        "tags": ("beta", "eu"),
        "metadata": {"team": "search", "n": i},
        "latency_ms": 12.5,
        "cost": KNOWN_COST,
        "request_id": f"req-{i}",
    }
    defaults.update(kw)
    return UsageRecord(**defaults)


def all_rows(db: Path) -> list[dict[str, Any]]:
    """Every stored row (``ts`` as microseconds since the epoch, metadata as text), by id."""
    with reading(db) as con:
        cur = con.execute(
            "SELECT * REPLACE (epoch_us(ts) AS ts, CAST(metadata AS VARCHAR) AS metadata) "
            "FROM usage ORDER BY id"
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def count(db: Path) -> int:
    """Rows in the ``usage`` table."""
    with reading(db) as con:
        return int(con.execute("SELECT count(*) FROM usage").fetchall()[0][0])


def wait_for_rows(db: Path, rows: int, timeout: float = 20.0) -> int:
    """Poll until ``rows`` rows are stored (or ``timeout`` passes); the count found."""
    deadline = time.monotonic() + timeout
    while (found := count(db)) < rows and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def spooled_segments(db: Path) -> list[Path]:
    """Segment files waiting in either spool directory of ``db``."""
    found: list[Path] = []
    for d in (primary_spool_dir(db), fallback_spool_dir(db)):
        if d.is_dir():
            found += sorted(d.glob(f"*{SEGMENT_SUFFIX}"))
    return found


def leftover_segment(
    db: Path, body: bytes, name: str = "00000001", *, first_release: bool = False
) -> Path:
    """A segment as a dead process leaves it: no lock held, no lock file. Rows of today's
    layout (its width in the name, as the writer names it), or with ``first_release``
    rows of the first release's 39 columns (no width in the name)."""
    spool = primary_spool_dir(db)
    spool.mkdir(parents=True, exist_ok=True)
    width = "" if first_release else f".c{len(COLUMNS)}"
    seg = spool / f"999999-deadbeef0000-{name}{width}{SEGMENT_SUFFIX}"
    seg.write_bytes(body)
    return seg
