"""One spool record per line: a row as a line of JSON.

A line is a JSON array of the row's cells (see :func:`~tokentrail.records.encode_row`),
written by ``orjson``: text, numbers, booleans, null and the list of tags; ``ts`` as RFC
3339 text with its offset (segments of older versions hold microseconds since the epoch,
UTC, which are still read), money as decimal text. The line's closing newline is written
last, so a line that ends in one is complete.

Older versions also wrote rows *priced at ingest*: no money figures, and after the
columns the mark :data:`RATES_MARK` and each leaf's price per token (``LEAVES`` order),
from which DuckDB works the money out (see ``ingest``). Such rows may wait in a spool
written before an upgrade; they are still read, never written.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson

from ..pricing.leaves import LEAVES
from ..records import epoch_micros

__all__ = ["RATES_MARK", "RATE_CELLS", "decode", "frame"]

#: First of the extra cells of a row priced at ingest (older versions).
RATES_MARK = "r1"
#: Cells after the columns of a row priced at ingest: the mark and one price per leaf of
#: the eight those versions knew (the first eight of ``LEAVES``; image leaves came later).
RATE_CELLS = 1 + 8
assert LEAVES[7] == "output_audio"

# ``ts`` is written by orjson as RFC 3339 text (a naive time as UTC); DuckDB reads it.
_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NAIVE_UTC
# The slow, forgiving fallback (lone surrogates, integers beyond 64 bits, deep nesting).
_fallback = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def frame(row: tuple[Any, ...]) -> bytes:
    """One spool record: the row as a line of JSON (UTF-8, ending with a newline)."""
    try:
        return orjson.dumps(row, option=_OPTIONS)
    except orjson.JSONEncodeError:
        pass
    # A lone surrogate (invalid UTF-16 from a bad decode) is replaced, real non-BMP
    # characters pass through; the json module copes with what orjson refuses.
    text: str = _fallback.encode(tuple(_clean(v) for v in row))
    return (text + "\n").encode("ascii")


def _clean(value: Any) -> Any:
    if isinstance(value, datetime):
        return epoch_micros(value)
    if type(value) is str:
        return value.encode("utf-8", "replace").decode("utf-8")
    if type(value) is list:
        return [_clean(v) for v in value]
    return value


def decode(line: bytes, width: int) -> tuple[Any, ...] | None:
    """The ``width`` column cells of one line; ``None`` when it is not a record of that
    layout (torn, not JSON, another shape). Rate cells are left out."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if type(value) is not list or len(value) not in (width, width + RATE_CELLS):
        return None
    return tuple(value[:width])
