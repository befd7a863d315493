"""Copying spooled rows into the ``usage`` table in bulk, exactly once.

Rows go through one Arrow table per segment and a single ``INSERT ... SELECT`` (DuckDB's
row-by-row ``executemany`` manages about 2,000 rows/s; this path is hundreds of times
faster). A segment's rows and its entry in ``tokentrail_ingested`` are committed in one
transaction: if the process dies after the commit but before the file is deleted, the next
drain finds the entry and deletes the file without inserting it twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from ..records import COLUMNS
from .schema import COST_TYPE

__all__ = ["already_ingested", "arrow_table", "insert_rows", "insert_segment"]

_MONEY = {
    "input_cost",
    "cache_read_cost",
    "cache_write_cost",
    "output_cost",
    "reasoning_cost",
    "audio_cost",
    "total_cost",
}
_INT = {
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
}
_BOOL = {"estimated", "streamed"}


def _select_list() -> str:
    parts = []
    for name in COLUMNS:
        if name in _MONEY:
            parts.append(f"CAST({name} AS {COST_TYPE})")
        elif name == "metadata":
            parts.append("CAST(metadata AS JSON)")
        else:
            parts.append(name)
    return ", ".join(parts)


_INSERT = f"INSERT INTO usage ({', '.join(COLUMNS)}) SELECT {_select_list()} FROM tokentrail_batch"


def _arrow_types() -> list[Any]:
    import pyarrow as pa

    types: list[Any] = []
    for name in COLUMNS:
        if name == "ts":
            types.append(pa.int64())
        elif name == "latency_ms":
            types.append(pa.float64())
        elif name == "tags":
            types.append(pa.list_(pa.string()))
        elif name in _INT:
            types.append(pa.int64())
        elif name in _BOOL:
            types.append(pa.bool_())
        else:
            types.append(pa.string())
    return types


_TYPES: list[Any] = []


def arrow_table(rows: Sequence[tuple[Any, ...]]) -> Any:
    """A ``pyarrow.Table`` of spool rows (``ts`` as UTC microseconds, money as strings)."""
    import pyarrow as pa

    if not _TYPES:
        _TYPES.extend(_arrow_types())
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in COLUMNS]
    arrays = []
    for name, values, typ in zip(COLUMNS, columns, _TYPES, strict=True):
        array = pa.array(values, type=typ)
        if name == "ts":
            array = array.cast(pa.timestamp("us", tz="UTC"))
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=list(COLUMNS))


def insert_rows(con: Any, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert spool rows in the current transaction; returns how many."""
    if not rows:
        return 0
    table = arrow_table(rows)
    con.register("tokentrail_batch", table)
    try:
        con.execute(_INSERT)
    finally:
        con.unregister("tokentrail_batch")
    return len(rows)


def already_ingested(con: Any, segment: str) -> bool:
    """True when the ledger says this segment's rows are already in ``usage``."""
    found = con.execute(
        "SELECT count(*) FROM tokentrail_ingested WHERE segment = ?", [segment]
    ).fetchall()
    return bool(found and found[0][0])


def insert_segment(con: Any, segment: str, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert one segment's rows and its ledger entry atomically; 0 if done before."""
    con.execute("BEGIN TRANSACTION")
    try:
        if already_ingested(con, segment):
            con.execute("ROLLBACK")
            return 0
        count = insert_rows(con, rows)
        con.execute(
            "INSERT INTO tokentrail_ingested (segment, row_count) VALUES (?, ?)",
            [segment, count],
        )
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            con.execute("ROLLBACK")
        raise
    return count
