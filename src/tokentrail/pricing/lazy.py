"""A ``Cost`` worked out when first read, so that the store can price rows in bulk.

On the capture path most calls are priced by one undated price in the base tier: the
price per token of each leaf is known, and so are the leaf counts. Multiplying them out
in ``Decimal`` and turning seven figures into text costs the caller's thread a few
microseconds per call; DuckDB does the same sums exactly, in bulk, off that thread, when
it stores the spooled rows (see ``store.ingest``). :class:`LazyCost` carries what the
sums need (:class:`PendingPrice`) and works out its figures only when Python code reads
one (a budget, a ``track()`` block, a listener, ``repr``): the same figures, by the same
arithmetic as an eagerly priced call.

Only prices with at most 12 decimal places per token take this path, so both sides are
exact: DuckDB's ``DECIMAL(18, 12)`` holds every leaf and total without rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from decimal import Decimal
from typing import Any

from .types import Cost

__all__ = [
    "RATES_MARK",
    "LazyCost",
    "PendingPrice",
    "lazy_cost",
    "pending_of",
    "plain_figures",
    "rate_cells",
]

_ZERO = Decimal(0)

#: First of the extra spool cells of a row priced at ingest; its per-token rates follow.
RATES_MARK = "r1"

_FIELDS = tuple(f.name for f in fields(Cost))
_FIELD_SET = frozenset(_FIELDS)


def plain_figures(
    prices: tuple[Decimal | None, ...], counts: tuple[int, ...]
) -> tuple[Decimal, ...]:
    """(total, input, cache read, cache write, output, reasoning, audio) of a call, from
    the per-token ``prices`` and the token ``counts`` of each leaf (``LEAVES`` order)."""
    text_in, cache_read, cache_5m, cache_1h, audio_in, text_out, reasoning, audio_out = counts
    p_in, p_read, p_5m, p_1h, p_ain, p_out, p_reason, p_aout = prices
    zero = _ZERO
    c_in = p_in * text_in if text_in and p_in is not None else zero
    c_read = p_read * cache_read if cache_read and p_read is not None else zero
    c_out = p_out * text_out if text_out and p_out is not None else zero
    total = c_in + c_read + c_out
    c_write = zero
    if cache_5m and p_5m is not None:
        c_write = p_5m * cache_5m
        total += c_write
    if cache_1h and p_1h is not None:
        c_1h = p_1h * cache_1h
        c_write += c_1h
        total += c_1h
    c_reason = zero
    if reasoning and p_reason is not None:
        c_reason = p_reason * reasoning
        total += c_reason
    c_audio = zero
    if audio_in and p_ain is not None:
        c_audio = p_ain * audio_in
        total += c_audio
    if audio_out and p_aout is not None:
        c_aout = p_aout * audio_out
        c_audio += c_aout
        total += c_aout
    return total, c_in, c_read, c_write, c_out, c_reason, c_audio


def rate_cells(prices: tuple[Decimal | None, ...]) -> tuple[str | None, ...] | None:
    """The spool cells that let DuckDB price a row: the mark, then each leaf's price per
    token as plain decimal text; ``None`` when a price has more than 12 decimal places
    (DuckDB would round it) or is too large for ``DECIMAL(18, 12)``."""
    cells: list[str | None] = [RATES_MARK]
    for price in prices:
        if price is None:
            cells.append(None)
            continue
        exact = price.normalize()
        exponent = exact.as_tuple().exponent
        if not isinstance(exponent, int) or exponent < -12 or not 0 <= exact < 1_000_000:
            return None
        cells.append(format(exact, "f"))
    return tuple(cells)


class PendingPrice:
    """What a :class:`LazyCost` needs to work out its figures (and the spool, to let
    DuckDB do it): per-token prices, the leaf counts, the ``Cost`` fields after the
    figures, and the spool cells naming the prices."""

    __slots__ = ("cells", "counts", "prices", "static")

    def __init__(
        self,
        prices: tuple[Decimal | None, ...],
        counts: tuple[int, ...],
        static: tuple[Any, ...],
        cells: tuple[str | None, ...],
    ) -> None:
        self.prices = prices
        self.counts = counts
        self.static = static
        self.cells = cells

    def values(self) -> tuple[Any, ...]:
        """Every ``Cost`` field, in order."""
        return (*plain_figures(self.prices, self.counts), *self.static)


class LazyCost(Cost):
    """A :class:`Cost` whose fields are set from its :class:`PendingPrice` when first read.

    Equal to (and hashing like) a ``Cost`` with the same fields; pickles and copies as a
    plain ``Cost``.
    """

    __slots__ = ("_pending",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        Cost.__init__(self, *args, **kwargs)  # (dataclasses.replace and friends)
        _set_pending(self, None)

    def __getattr__(self, name: str) -> Any:
        # Called only for a field that is not set yet: set them all, then answer.
        if name in _FIELD_SET:
            pending = _get_pending(self)
            if pending is not None:
                for field, value in zip(_FIELDS, pending.values(), strict=True):
                    object.__setattr__(self, field, value)
                _set_pending(self, None)
                return object.__getattribute__(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def pending(self) -> PendingPrice | None:
        """What the figures will be worked out from; ``None`` once they have been."""
        found: PendingPrice | None = _get_pending(self)
        return found

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Cost):
            return all(getattr(self, f) == getattr(other, f) for f in _FIELDS)
        return NotImplemented

    __hash__ = Cost.__hash__

    def __repr__(self) -> str:
        return Cost.__repr__(self).replace(type(self).__qualname__, "Cost", 1)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Cost, tuple(getattr(self, f) for f in _FIELDS))


_set_pending = LazyCost._pending.__set__  # type: ignore[attr-defined]
_get_pending = LazyCost._pending.__get__  # type: ignore[attr-defined]


#: ``cost.pending`` for the spool's hot path: the slot's own getter, no Python frame.
pending_of: Callable[[LazyCost], PendingPrice | None] = _get_pending


def lazy_cost(pending: PendingPrice) -> LazyCost:
    """A :class:`LazyCost` for ``pending`` (no field set until one is read)."""
    cost: LazyCost = object.__new__(LazyCost)
    _set_pending(cost, pending)
    return cost
