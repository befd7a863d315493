"""Spooled rows as values for PostgreSQL's ``COPY``.

DuckDB converts spool lines in SQL (``ingest``); PostgreSQL cannot read the spool files,
so each line is decoded here and its cells checked the way DuckDB's ``TRY_CAST`` would:
a cell that does not fit its column becomes NULL (or the column's default), never an
error that would fail the whole ``COPY``. Lines that are not a complete record (torn,
not JSON, no ``id``/``ts``/``framework``) are skipped; the caller counts them.

PostgreSQL refuses the NUL character in text and JSON: it is replaced by U+FFFD.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from ..records import TABLE, Column

__all__ = ["COPY_COLUMNS", "copy_values"]

#: The ``usage`` columns in the order :func:`copy_values` gives them.
COPY_COLUMNS: tuple[str, ...] = tuple(c.name for c in TABLE)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_INT64 = 2**63
_MONEY_LIMIT = Decimal(10) ** 26  # NUMERIC(38, 12): 26 digits before the point
_MONEY_PLACES = Decimal(10) ** -12


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _time(value: Any) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):  # microseconds since the epoch (older spools)
        try:
            return _EPOCH + timedelta(microseconds=value)
        except OverflowError:
            return None
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _count(value: Any) -> int:
    if isinstance(value, bool) or value is None:
        return 0
    try:
        number = int(value) if isinstance(value, (int, str)) else 0
    except ValueError:
        return 0
    return number if -_INT64 <= number < _INT64 else 0


def _money(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value)).quantize(_MONEY_PLACES)
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() and abs(amount) < _MONEY_LIMIT else None


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _tags(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [t for t in (_text(v) for v in value) if t is not None]


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):  # text that is itself JSON is kept, as DuckDB does
        try:
            json.loads(value)
        except ValueError:
            return None
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False)
    return text.replace("\\u0000", "\\ufffd")


_CONVERT = {
    "time": _time,
    "count": _count,
    "money": _money,
    "number": _number,
    "flag": _flag,
    "tags": _tags,
    "json": _json,
}


def _default(column: Column) -> Any:
    """A column's default as a Python value (the SQL text of ``Column.default``)."""
    text = column.default
    if text is None:
        return None
    if column.kind == "count":
        return int(text)
    if column.kind == "flag":
        return text.lower() == "true"
    return text.strip("'")


_PLAN = tuple((c, _CONVERT.get(c.kind, _text), _default(c)) for c in TABLE)


def copy_values(rows: Iterable[Sequence[Any]]) -> Iterator[tuple[Any, ...]]:
    """Each decoded row (its cells in column order, maybe fewer than the table has) as the
    values of :data:`COPY_COLUMNS`; rows that are not a complete record are skipped."""
    for cells in rows:
        width = len(cells)
        if width < 4 or cells[0] is None or cells[3] is None:
            continue
        out: list[Any] = []
        for index, (_column, convert, default) in enumerate(_PLAN):
            value = convert(cells[index]) if index < width else None
            out.append(default if value is None else value)
        if out[1] is None:  # ts
            continue
        yield tuple(out)
