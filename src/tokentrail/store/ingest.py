"""Copying spooled rows into the ``usage`` table in bulk, exactly once.

DuckDB reads a spool segment itself with its bulk JSON reader and an explicit schema
(each line an array, read as ``VARCHAR[]``: no type sniffing, no JSON path lookups) and
converts it in one ``INSERT ... SELECT``: no Python work per row, no GIL held while it
runs, and nothing like DuckDB's row-by-row ``executemany`` (about 2,000 rows/s). Rows
priced at ingest (written by older versions, see ``framing``) get their money worked out
there: each leaf's tokens times its price per token, exact in ``DECIMAL``. A segment's rows and its
entry in ``tokentrail_ingested`` are committed in one transaction: if the process dies
after the commit but before the file is deleted, the next drain finds the entry and
deletes the file without inserting it twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..records import TABLE, Column
from .framing import RATE_CELLS, RATES_MARK
from .schema import COST_TYPE
from .segments import width_of

__all__ = ["already_ingested", "insert_lines", "insert_segment", "insert_segments"]

# Each leaf's tokens (see ``pricing.leaves``), from the counts parsed once per row.
_LEAF_TOKENS = (
    "n_input_tokens - n_cache_read_tokens - n_cache_write_tokens - n_input_audio_tokens",
    "n_cache_read_tokens",
    "n_cache_write_tokens - n_cache_write_1h_tokens",
    "n_cache_write_1h_tokens",
    "n_input_audio_tokens",
    "n_output_tokens - n_reasoning_tokens - n_output_audio_tokens",
    "n_reasoning_tokens",
    "n_output_audio_tokens",
)
# Money column -> its leaves (the sums ``pricing.leaves`` bills).
_PRICED_MONEY = {
    "input_cost": (0,),
    "cache_read_cost": (1,),
    "cache_write_cost": (2, 3),
    "output_cost": (5,),
    "reasoning_cost": (6,),
    "audio_cost": (4, 7),
    "total_cost": tuple(range(8)),
}


def _cell(column: Column, v: str) -> str:
    """SQL for one column's value from its cell ``v`` (JSON text, or NULL)."""
    kind = column.kind
    if column.name == "ts":
        return "parsed_ts"
    if kind == "time":
        return _time(v)
    if kind == "count":
        return f"n_{column.name}"
    if kind == "money":
        leaves = _PRICED_MONEY.get(column.name)
        if leaves is None:  # a money column newer than rows priced at ingest
            return f"TRY_CAST({v} AS {COST_TYPE})"
        worked_out = " + ".join(f"leaf{i}" for i in leaves)
        return (
            f"CASE WHEN priced THEN TRY_CAST({worked_out} AS {COST_TYPE}) "
            f"ELSE TRY_CAST({v} AS {COST_TYPE}) END"
        )
    if kind == "number":  # a duration: below 0 (a clock stepped back) it is unknown
        return f"(CASE WHEN TRY_CAST({v} AS DOUBLE) >= 0 THEN TRY_CAST({v} AS DOUBLE) END)"
    if kind == "flag":
        return f"TRY_CAST({v} AS BOOLEAN)"
    if kind == "tags":
        return f"coalesce(TRY_CAST(json_extract_string({v}, '$[*]') AS VARCHAR[]), [])"
    if kind == "json":
        return f"CASE WHEN json_valid({v}) THEN CAST({v} AS JSON) END"
    return v


def _value(index: int, column: Column, width: int) -> str:
    """SQL for a column of a row ``width`` cells wide: its cell, or its default when the
    row was spooled before the column existed (or holds NULL there)."""
    parsed = column.kind == "count" or column.name == "ts"  # step 1, defaults included
    sql = _cell(column, f"v[{index + 1}]") if index < width or parsed else "NULL"
    if parsed or column.default is None:
        return sql
    return f"coalesce({sql}, {column.default})"


def _parsed(table: tuple[Column, ...], width: int) -> str:
    """Step 1: the time and the counts, parsed once per row, and whether the row is priced
    at ingest. ``ts`` is RFC 3339 text with an offset, or microseconds since the epoch
    (UTC) in segments of older versions."""
    counts = [
        f"coalesce(TRY_CAST(v[{i + 1}] AS BIGINT), 0) AS n_{c.name}"
        if i < width
        else f"0 AS n_{c.name}"
        for i, c in enumerate(table)
        if c.kind == "count"
    ]
    return ", ".join(
        [
            "v",
            f"{_time('v[2]')} AS parsed_ts",
            *counts,
            f"v[{width + 1}] IS NOT DISTINCT FROM '{RATES_MARK}' AS priced",
        ]
    )


def _time(v: str) -> str:
    """A time cell: RFC 3339 text with an offset, or microseconds since the epoch (UTC)."""
    return (
        f"coalesce(TRY_CAST({v} AS TIMESTAMPTZ), "
        f"timezone('UTC', make_timestamp(TRY_CAST({v} AS BIGINT))))"
    )


def _rate(width: int, leaf: int) -> str:
    # A leaf without a price (JSON null) costs nothing; an unreadable price makes the
    # figure unknown (NULL), never 0.
    rate = f"v[{width + 2 + leaf}]"
    return f"(CASE WHEN {rate} IS NULL THEN 0 ELSE TRY_CAST({rate} AS {COST_TYPE}) END)"


def _insert_sql(table: tuple[Column, ...], source: str, width: int) -> str:
    """``INSERT INTO usage`` from ``source`` (rows ``v`` of ``width`` columns, each as
    ``VARCHAR[]``). Lines that are not a complete record (a write cut short, a tampered
    file) are skipped; the caller compares the count with the number of lines."""
    priced_width = width + RATE_CELLS
    # ``id`` (1), ``ts`` (2) and ``framework`` (4) lead every layout (columns are appended).
    where = (
        f"WHERE v IS NOT NULL AND len(v) IN ({width}, {priced_width}) AND v[1] IS NOT NULL "
        "AND v[4] IS NOT NULL"
    )
    leaves = ", ".join(
        f"CASE WHEN priced THEN {_rate(width, i)} * ({tokens}) END AS leaf{i}"
        for i, tokens in enumerate(_LEAF_TOKENS)
    )
    values = ", ".join(_value(i, c, width) for i, c in enumerate(table))
    parsed = f"(SELECT {_parsed(table, width)} FROM {source} {where})"
    return (
        f"INSERT INTO usage ({', '.join(c.name for c in table)}) "
        f"SELECT {values} FROM (SELECT *, {leaves} FROM {parsed}) WHERE parsed_ts IS NOT NULL"
    )


# Every value as text (numbers, booleans and the tags array become their JSON text); a
# line that is not a JSON array (torn, garbage, an object) comes back as NULL.
_FROM_FILES = (
    "read_json(?, columns = {'v': 'VARCHAR[]'}, records = 'false', "
    "format = 'newline_delimited', ignore_errors = true)"
)


def _from_text(width: int) -> str:
    paths = ", ".join(f"'$[{i}]'" for i in range(width + RATE_CELLS))
    return (
        f"(SELECT CASE WHEN json_valid(line) THEN json_extract_string(line, [{paths}]) END AS v "
        "FROM (SELECT unnest(string_split(?, chr(10))) AS line) WHERE line <> '')"
    )


_SQL: dict[tuple[tuple[Column, ...], str, int], str] = {}


def _insert(table: tuple[Column, ...], source: str, width: int) -> str:
    """The insert statement for files (``source="files"``) or text lines of a width."""
    key = (table, source, width)
    sql = _SQL.get(key)
    if sql is None:
        rows = _FROM_FILES if source == "files" else _from_text(width)
        sql = _SQL[key] = _insert_sql(table, rows, width)
    return sql


def _inserted(result: Any) -> int:
    rows = result.fetchall()
    return int(rows[0][0]) if rows else 0


def already_ingested(con: Any, segment: str) -> bool:
    """True when the ledger says this segment's rows are already in ``usage``."""
    found = con.execute(
        "SELECT count(*) FROM tokentrail_ingested WHERE segment = ?", [segment]
    ).fetchall()
    return bool(found and found[0][0])


def insert_segment(con: Any, path: Path, *, table: tuple[Column, ...] = TABLE) -> int | None:
    """Insert one segment file's rows and its ledger entry atomically.

    Returns the number of rows inserted, or ``None`` when the ledger shows the segment
    was stored before (its file was left behind by a crash).
    """
    con.execute("BEGIN TRANSACTION")
    try:
        if already_ingested(con, path.name):
            con.execute("ROLLBACK")
            return None
        count = _inserted(con.execute(_insert(table, "files", width_of(path)), [str(path)]))
        con.execute(
            "INSERT INTO tokentrail_ingested (segment, row_count) VALUES (?, ?)",
            [path.name, count],
        )
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            con.execute("ROLLBACK")
        raise
    return count


def insert_segments(
    con: Any,
    segments: Sequence[tuple[Path, int]],
    *,
    forget: Sequence[str] = (),
    table: tuple[Column, ...] = TABLE,
) -> tuple[int, int]:
    """Insert several segment files and their ledger entries in one transaction.

    ``segments`` holds each file with the number of records written to it. One bulk read
    over all the files costs less per row than one per file, and from 122,880 rows (a
    DuckDB row group) on, DuckDB writes the rows straight into the database file instead
    of the write-ahead log and again at checkpoint. ``forget`` names ledger entries to drop
    in the same transaction (their files are gone). Returns (rows inserted, records
    expected from the files not stored before); files the ledger already lists are skipped.
    """
    if not segments and not forget:
        return 0, 0
    todo: list[tuple[Path, int]] = []
    count = 0
    con.execute("BEGIN TRANSACTION")
    try:
        if forget:
            con.execute(
                "DELETE FROM tokentrail_ingested WHERE list_contains(?, segment)", [list(forget)]
            )
        names = [path.name for path, _ in segments]
        stored = {
            row[0]
            for row in con.execute(
                "SELECT segment FROM tokentrail_ingested WHERE list_contains(?, segment)",
                [names],
            ).fetchall()
        }
        todo = [(path, rows) for path, rows in segments if path.name not in stored]
        for width, paths in _by_width(todo).items():
            count += _inserted(con.execute(_insert(table, "files", width), [paths]))
        if todo:
            con.execute(
                "INSERT INTO tokentrail_ingested (segment, row_count) "
                "SELECT unnest(?::VARCHAR[]), unnest(?::BIGINT[])",
                [[path.name for path, _ in todo], [rows for _, rows in todo]],
            )
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            con.execute("ROLLBACK")
        raise
    return count, sum(rows for _, rows in todo)


def _by_width(segments: Sequence[tuple[Path, int]]) -> dict[int, list[str]]:
    """The files, by the number of columns their rows hold (one bulk read per width)."""
    found: dict[int, list[str]] = {}
    for path, _ in segments:
        found.setdefault(width_of(path), []).append(str(path))
    return found


def insert_lines(con: Any, lines: Sequence[bytes], *, table: tuple[Column, ...] = TABLE) -> int:
    """Insert encoded spool lines held in memory (when no spool could be written)."""
    if not lines:
        return 0
    text = b"".join(lines).decode("utf-8", "replace")
    con.execute("BEGIN TRANSACTION")
    try:
        count = _inserted(con.execute(_insert(table, "text", len(table)), [text]))
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            con.execute("ROLLBACK")
        raise
    return count
