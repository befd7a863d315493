"""Copying spooled rows into the ``usage`` table in bulk, exactly once.

DuckDB reads a spool segment itself with its bulk JSON reader and an explicit schema
(each line an array, read as ``VARCHAR[]``: no type sniffing, no JSON path lookups) and
converts it in one ``INSERT ... SELECT``: no Python work per row, no GIL held while it
runs, and nothing like DuckDB's row-by-row ``executemany`` (about 2,000 rows/s). Rows
priced at ingest (see ``pricing.lazy``) get their money worked out there: each leaf's
tokens times its price per token, exact in ``DECIMAL``. A segment's rows and its
entry in ``tokentrail_ingested`` are committed in one transaction: if the process dies
after the commit but before the file is deleted, the next drain finds the entry and
deletes the file without inserting it twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..pricing.lazy import RATES_MARK
from ..pricing.leaves import LEAVES
from ..records import COLUMNS, MONEY_COLUMNS
from ..usage import COUNT_FIELDS
from .schema import COST_TYPE

__all__ = ["already_ingested", "insert_lines", "insert_segment", "insert_segments"]

_MONEY = frozenset(MONEY_COLUMNS)
_COUNTS = frozenset((*COUNT_FIELDS, "total_tokens"))


_WIDTH = len(COLUMNS)
# A row priced at ingest: the mark, then the price per token of each leaf (``LEAVES``
# order), after the columns (see ``pricing.lazy``).
_PRICED_WIDTH = _WIDTH + 1 + len(LEAVES)


def _rate(i: int) -> str:
    # A leaf without a price (JSON null) costs nothing; an unreadable price makes the
    # figure unknown (NULL), never 0.
    rate = f"v[{_WIDTH + 2 + i}]"
    return f"(CASE WHEN {rate} IS NULL THEN 0 ELSE TRY_CAST({rate} AS {COST_TYPE}) END)"


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
# Money column -> its leaves (same sums as ``pricing.lazy.plain_figures``).
_PRICED_MONEY = {
    "input_cost": (0,),
    "cache_read_cost": (1,),
    "cache_write_cost": (2, 3),
    "output_cost": (5,),
    "reasoning_cost": (6,),
    "audio_cost": (4, 7),
    "total_cost": tuple(range(8)),
}


def _expression(index: int, name: str) -> str:
    v = f"v[{index + 1}]"
    if name == "ts":
        return "parsed_ts"
    if name in _MONEY:
        worked_out = " + ".join(f"leaf{i}" for i in _PRICED_MONEY[name])
        return (
            f"CASE WHEN priced THEN TRY_CAST({worked_out} AS {COST_TYPE}) "
            f"ELSE TRY_CAST({v} AS {COST_TYPE}) END"
        )
    if name in _COUNTS:
        return f"n_{name}"
    if name == "latency_ms":
        return f"TRY_CAST({v} AS DOUBLE)"
    if name in ("estimated", "streamed"):
        return f"coalesce(TRY_CAST({v} AS BOOLEAN), false)"
    if name == "status":
        return f"coalesce({v}, 'ok')"
    if name == "tags":
        return f"coalesce(TRY_CAST(json_extract_string({v}, '$[*]') AS VARCHAR[]), [])"
    if name == "metadata":
        return f"CASE WHEN json_valid({v}) THEN CAST({v} AS JSON) END"
    return v


# Step 1: the time and the counts, parsed once per row, and whether the row is priced
# at ingest. ``ts`` is RFC 3339 text with an offset (orjson), or microseconds since the
# epoch (UTC) in segments of older versions.
_PARSED = ", ".join(
    [
        "v",
        "coalesce(TRY_CAST(v[2] AS TIMESTAMPTZ), "
        "timezone('UTC', make_timestamp(TRY_CAST(v[2] AS BIGINT)))) AS parsed_ts",
        *(
            f"coalesce(TRY_CAST(v[{i + 1}] AS BIGINT), 0) AS n_{name}"
            for i, name in enumerate(COLUMNS)
            if name in _COUNTS
        ),
        f"v[{_WIDTH + 1}] = '{RATES_MARK}' AS priced",
    ]
)
# Step 2: each leaf's money (rows priced at ingest only).
_LEAVES = ", ".join(
    f"CASE WHEN priced THEN {_rate(i)} * ({tokens}) END AS leaf{i}"
    for i, tokens in enumerate(_LEAF_TOKENS)
)
_PATHS = ", ".join(f"'$[{i}]'" for i in range(_PRICED_WIDTH))
_VALUES = ", ".join(_expression(i, name) for i, name in enumerate(COLUMNS))
# Lines that are not a complete record (a write cut short, a tampered file) are skipped;
# the caller compares the count with the number of lines.
_FILTER = (
    f"WHERE v IS NOT NULL AND len(v) IN ({_WIDTH}, {_PRICED_WIDTH}) AND v[1] IS NOT NULL "
    "AND v[4] IS NOT NULL"
)
# Every value as text (numbers, booleans and the tags array become their JSON text); a
# line that is not a JSON array (torn, garbage, an object) comes back as NULL.
_FROM_FILE = (
    "read_json(?, columns = {'v': 'VARCHAR[]'}, records = 'false', "
    "format = 'newline_delimited', ignore_errors = true)"
)
_FROM_TEXT = (
    f"(SELECT CASE WHEN json_valid(line) THEN json_extract_string(line, [{_PATHS}]) END AS v "
    "FROM (SELECT unnest(string_split(?, chr(10))) AS line) WHERE line <> '')"
)


def _insert_sql(source: str) -> str:
    parsed = f"(SELECT {_PARSED} FROM {source} {_FILTER})"
    leaves = f"(SELECT *, {_LEAVES} FROM {parsed})"
    return (
        f"INSERT INTO usage ({', '.join(COLUMNS)}) SELECT {_VALUES} FROM {leaves} "
        "WHERE parsed_ts IS NOT NULL"
    )


_INSERT_FILE = _insert_sql(_FROM_FILE)
_INSERT_TEXT = _insert_sql(_FROM_TEXT)


def _inserted(result: Any) -> int:
    rows = result.fetchall()
    return int(rows[0][0]) if rows else 0


def already_ingested(con: Any, segment: str) -> bool:
    """True when the ledger says this segment's rows are already in ``usage``."""
    found = con.execute(
        "SELECT count(*) FROM tokentrail_ingested WHERE segment = ?", [segment]
    ).fetchall()
    return bool(found and found[0][0])


def insert_segment(con: Any, path: Path) -> int | None:
    """Insert one segment file's rows and its ledger entry atomically.

    Returns the number of rows inserted, or ``None`` when the ledger shows the segment
    was stored before (its file was left behind by a crash).
    """
    con.execute("BEGIN TRANSACTION")
    try:
        if already_ingested(con, path.name):
            con.execute("ROLLBACK")
            return None
        count = _inserted(con.execute(_INSERT_FILE, [str(path)]))
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
    con: Any, segments: Sequence[tuple[Path, int]], *, forget: Sequence[str] = ()
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
        if todo:
            count = _inserted(con.execute(_INSERT_FILE, [[str(path) for path, _ in todo]]))
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


def insert_lines(con: Any, lines: Sequence[bytes]) -> int:
    """Insert encoded spool lines held in memory (when no spool could be written)."""
    if not lines:
        return 0
    text = b"".join(lines).decode("utf-8", "replace")
    con.execute("BEGIN TRANSACTION")
    try:
        count = _inserted(con.execute(_INSERT_TEXT, [text]))
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            con.execute("ROLLBACK")
        raise
    return count
