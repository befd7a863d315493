"""``UsageRecord``: one model call as it is stored — attribution, usage, cost, timing, status.

Also the row it is stored as: :data:`TABLE` describes the ``usage`` table column by
column, and :func:`encode_row`, derived from it, turns a record into that row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from math import isfinite
from operator import attrgetter, itemgetter
from typing import Any, Literal

import orjson
import uuid_utils

from .pricing.types import Cost
from .usage import Usage

__all__ = [
    "COLUMNS",
    "MONEY_COLUMNS",
    "MONEY_FIELDS",
    "ROW_LAYOUT",
    "TABLE",
    "Column",
    "Framework",
    "Kind",
    "RowLayout",
    "Status",
    "UsageRecord",
    "encode_row",
    "epoch_micros",
    "new_id",
]

Framework = Literal["langchain", "llamaindex", "manual"]
_REAL = frozenset((int, float))
Status = Literal["ok", "error", "cancelled"]

#: What a column holds; the spool encoder and the ingest SQL treat each kind one way:
#: ``text``, ``time`` (a datetime; a missing one is when the row is written), ``number``
#: (a duration in ms, a float; NaN, infinities and values below 0 are NULL), ``tags`` (text list), ``json`` (a mapping),
#: ``count`` (an int, 0 when missing), ``money`` (a Decimal, stored exactly) and ``flag``.
Kind = Literal["text", "time", "number", "tags", "json", "count", "money", "flag"]
#: Where a column's value is read: the record, its ``usage`` or its ``cost``.
Source = Literal["record", "usage", "cost"]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the ``usage`` table: its name, its kind and where its value comes from.

    The value is ``getattr(<source>, attr)``: ``source`` is the record itself, its
    ``usage`` or its ``cost`` (NULL when the call has no cost; money columns are read from
    the cost, as decimal text). ``default`` is the SQL value
    stored when a row has none (a column added after the row was spooled, or NULL where
    the table says ``NOT NULL``).
    """

    name: str
    kind: Kind = "text"
    source: Source = "record"
    attr: str = ""
    default: str | None = None

    @property
    def read_from(self) -> str:
        """The attribute the value is read from (the column's name unless ``attr`` says)."""
        return self.attr or self.name

    @property
    def path(self) -> str:
        """The value's path from the record: ``request_id``, ``usage.input_tokens``..."""
        return self.read_from if self.source == "record" else f"{self.source}.{self.read_from}"


def _count_column(name: str) -> Column:
    return Column(name, "count", "usage", default="0")


def _money_column(name: str, attr: str = "") -> Column:
    return Column(name, "money", "cost", attr)


#: The ``usage`` table, column by column, in table order. A contract: users write SQL
#: against these names. To add a column: append it here, add the field it reads (on
#: ``UsageRecord``, ``Usage`` or ``Cost``) and a migration that adds it to the table
#: (``store/schema.py``); the spool encoder and the ingest SQL are derived from this
#: table. Append only: segments spooled by an older version hold a prefix of it.
TABLE: tuple[Column, ...] = (
    Column("id"),
    Column("ts", "time"),
    Column("latency_ms", "number"),
    Column("framework"),
    Column("provider"),
    Column("model"),
    Column("priced_model", source="cost", attr="model"),
    Column("user_id"),
    Column("session_id"),
    Column("operation"),
    Column("run_id"),
    Column("parent_run_id"),
    Column("trace_id"),
    Column("tags", "tags"),
    Column("metadata", "json", attr="stored_metadata"),
    _count_column("input_tokens"),
    _count_column("output_tokens"),
    _count_column("total_tokens"),
    _count_column("cache_read_tokens"),
    _count_column("cache_write_tokens"),
    _count_column("cache_write_1h_tokens"),
    _count_column("reasoning_tokens"),
    _count_column("input_audio_tokens"),
    _count_column("output_audio_tokens"),
    _money_column("input_cost"),
    _money_column("cache_read_cost"),
    _money_column("cache_write_cost"),
    _money_column("output_cost"),
    _money_column("reasoning_cost"),
    _money_column("audio_cost"),
    _money_column("total_cost", "total"),
    Column("currency", source="cost"),
    Column("cost_source", source="cost", attr="source"),
    Column("catalog_version", source="cost"),
    Column("estimated", "flag", "usage", default="false"),
    Column("streamed", "flag", default="false"),
    Column("status", default="'ok'"),
    Column("error_type"),
    Column("request_id"),
    _count_column("input_image_tokens"),
    _count_column("output_image_tokens"),
    _count_column("cache_read_audio_tokens"),
    _count_column("web_search_requests"),
    _count_column("input_video_tokens"),
    _money_column("fee_cost"),
)

#: The column names, in table order.
COLUMNS: tuple[str, ...] = tuple(c.name for c in TABLE)

#: The money columns (USD, ``DECIMAL``; NULL when the cost is unknown).
MONEY_COLUMNS: tuple[str, ...] = tuple(c.name for c in TABLE if c.kind == "money")
#: Each money column and the :class:`~tokentrail.pricing.Cost` field it is read from.
MONEY_FIELDS: tuple[tuple[str, str], ...] = tuple(
    (c.name, c.read_from) for c in TABLE if c.kind == "money"
)


def new_id() -> str:
    """A unique id that sorts by creation time (a UUIDv7, RFC 9562, as 36 characters)."""
    return str(uuid_utils.uuid7())


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(slots=True)
class UsageRecord:
    """One model call. Prompt and response text are never part of it.

    Integrations fill ``usage`` and attribution; the tracker fills ``cost`` (unless the
    caller already priced it) before the record is stored.
    """

    model: str | None
    provider: str | None
    usage: Usage
    framework: Framework = "manual"
    id: str = field(default_factory=new_id)
    #: When the call started (UTC).
    ts: datetime = field(default_factory=_now)
    latency_ms: float | None = None
    user_id: str | None = None
    session_id: str | None = None
    operation: str | None = None
    run_id: str | None = None
    parent_run_id: str | None = None
    trace_id: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    cost: Cost | None = None
    streamed: bool = False
    status: Status = "ok"
    error_type: str | None = None
    request_id: str | None = None
    #: A cost the provider reported itself (OpenRouter ``usage.cost``); wins over the catalog.
    reported_cost: Decimal | None = None
    #: Price variant to apply (``batch``, ``priority``, ``flex``...); ``None`` = standard.
    price_variant: str | None = None
    #: A framework cache hit: no request was sent, recorded at zero cost.
    cache_hit: bool = False
    #: The model the request asked for (``model`` is the one the response named, e.g.
    #: ``gpt-4o-mini`` -> ``gpt-4o-mini-2024-07-18``); ``None``: unknown, taken as ``model``.
    #: Not a column: OpenTelemetry's ``gen_ai.request.model`` reads it.
    request_model: str | None = None

    @property
    def estimated(self) -> bool:
        """True when the token counts were estimated locally."""
        return self.usage.estimated

    @property
    def total_cost(self) -> Decimal | None:
        """The call's cost in USD, ``None`` when unknown."""
        return None if self.cost is None else self.cost.total

    @property
    def stored_metadata(self) -> dict[str, Any]:
        """``metadata`` as stored: the caller's, plus a note of a cache hit, the price
        variant, the problems found in the counts (``usage_issues``) and a latency below 0
        (``latency_issue``; the latency is stored as NULL)."""
        usage = self.usage
        latency = self.latency_ms
        negative = type(latency) in _REAL and latency < 0  # type: ignore[operator]
        if not (self.cache_hit or self.price_variant or usage.issues or negative):
            return self.metadata
        meta = dict(self.metadata) if self.metadata else {}
        if self.cache_hit:
            meta["cache_hit"] = True
        if self.price_variant:
            meta.setdefault("price_variant", self.price_variant)
        if usage.issues:
            meta["usage_issues"] = list(usage.issues)
        if negative:
            meta["latency_issue"] = f"negative latency ({latency} ms): clock stepped back?"
        return meta

    def to_row(self) -> dict[str, Any]:
        """The record as the store writes it: column name -> cell (see :func:`encode_row`)."""
        return dict(zip(COLUMNS, encode_row(self), strict=True))


# ---------------------------------------------------------------------------- the row
# The encoder below turns a record into its row: one plain value per column (text,
# numbers, booleans, a list of tags, ``ts`` as a datetime or microseconds since the epoch,
# money as decimal text), ready for one line of JSON in the spool. Everything it does is
# derived from ``TABLE``: values are read in one bulk read, then each kind's cells are
# made plain. It runs on the caller's thread for every call, so the usual row (text cells
# already text, counts already ints) is checked in bulk and passes as it is.

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_TEXT_TYPES = frozenset((str, type(None)))
_INT = frozenset((int,))
_STR = frozenset((str,))


class RowLayout:
    """How a record becomes a row of ``table`` (:data:`TABLE` unless a test says).

    Everything is derived from the table once: one ``attrgetter`` reads every column's
    value in table order (``usage.input_tokens``, ``cost.total``...), then each kind's
    cells are made plain.
    """

    def __init__(self, table: tuple[Column, ...]) -> None:
        self.table = table
        self._read = _getter(c.path for c in table)
        # A call without a cost: each cost column reads the (absent) cost itself, None.
        self._read_uncosted = _getter(c.source if c.source == "cost" else c.path for c in table)
        self._money = tuple(i for i, c in enumerate(table) if c.kind == "money")
        self._make_plain = tuple(
            (i, _PLAIN[c.kind]) for i, c in enumerate(table) if c.kind in _PLAIN
        )
        self._text = tuple(i for i, c in enumerate(table) if c.kind == "text")
        self._count = tuple(i for i, c in enumerate(table) if c.kind == "count")
        self._text_cells = itemgetter(*self._text)
        self._count_cells = itemgetter(*self._count)

    def encode(self, record: UsageRecord) -> tuple[Any, ...]:
        """The record as a row: one plain value per column, in table order.

        Money is decimal text (``"0"`` for zero; range and NaN are checked by DuckDB, which
        stores NULL for a figure that does not fit). Raises when a value cannot be made
        plain (an object whose ``str()`` fails): the store then keeps a salvaged copy of
        the record.
        """
        if record.cost is None:
            cells = list(self._read_uncosted(record))
        else:
            cells = list(self._read(record))
            for i in self._money:
                if (money := cells[i]) is not None:
                    cells[i] = str(money) if money else "0"
        for i, make_plain in self._make_plain:
            cells[i] = make_plain(cells[i])
        if not (
            _TEXT_TYPES.issuperset(map(type, self._text_cells(cells)))
            and _INT.issuperset(map(type, self._count_cells(cells)))
        ):
            self._repair(cells)  # rare: the usual row passes the bulk check as it is
        return tuple(cells)

    def _repair(self, cells: list[Any]) -> None:
        """Make the text cells text (or NULL) and the counts ints."""
        for i in self._text:
            value = cells[i]
            cells[i] = value if value is None or type(value) is str else str(value)
        for i in self._count:
            cells[i] = int(cells[i])


def _getter(paths: Iterable[str]) -> Callable[[Any], tuple[Any, ...]]:
    """One C-level read of every path (``attrgetter`` returns a tuple for two or more)."""
    get: Callable[[Any], tuple[Any, ...]] = attrgetter(*paths)
    return get


def _time(ts: Any) -> datetime | int:
    """``ts`` as orjson writes it (RFC 3339 text), or microseconds since the epoch."""
    if type(ts) is datetime or type(ts) is int:
        return ts
    if isinstance(ts, datetime):  # a subclass (pendulum, arrow): the same instant
        return epoch_micros(ts)
    return epoch_micros(datetime.now(timezone.utc))


def epoch_micros(ts: datetime) -> int:
    """Microseconds since the epoch; a naive time is taken as UTC, like every ts we create."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    micros: int = (ts - _EPOCH) // _MICROSECOND
    return micros


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    # Below 0 a clock stepped back (NTP, a VM resumed): unknown, not a negative duration.
    return number if isfinite(number) and number >= 0 else None


def _tags(tags: Any) -> list[str]:
    if not tags:
        return []
    return [*tags] if _STR.issuperset(map(type, tags)) else [str(t) for t in tags]


def _json(meta: Any) -> str | None:
    """Metadata as JSON text; values JSON does not know (Decimal, sets, objects) become
    their ``str()``, keys that are not text are written as text, like ``json`` does."""
    if not meta:
        return None
    try:
        return orjson.dumps(meta, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except Exception:  # a failing str(), integers beyond 64 bits
        pass
    try:
        text: str = json.dumps(meta, default=str, separators=(",", ":"))
    except Exception:  # keys that are not strings, circular references, a failing str()
        try:
            items = {str(k): v for k, v in meta.items()}
            text = json.dumps(items, default=repr, separators=(",", ":"))
        except Exception:
            return None
    return text


_PLAIN: dict[str, Callable[[Any], Any]] = {
    "time": _time,
    "number": _number,
    "tags": _tags,
    "json": _json,
    "flag": bool,
}
#: The layout of the ``usage`` table.
ROW_LAYOUT = RowLayout(TABLE)
#: The one record encoder (see :meth:`RowLayout.encode`).
encode_row = ROW_LAYOUT.encode
