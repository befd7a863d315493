"""Value types of the cost engine."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from typing import Any, Literal

__all__ = ["Cost", "CostSource", "trusted_cost"]

CostSource = Literal["catalog", "provider", "override"]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Cost:
    """The price of one call, broken down by leaf, in ``currency`` (USD).

    Each token is billed once: ``input_cost`` covers uncached, non-audio input;
    ``cache_write_cost`` covers both the 5-minute and 1-hour writes; ``output_cost``
    covers output that is neither reasoning nor audio; ``audio_cost`` covers input and
    output audio. ``total`` is the sum of the leaves (or the provider-reported figure
    when ``source == "provider"``).
    """

    total: Decimal
    input_cost: Decimal = _ZERO
    cache_read_cost: Decimal = _ZERO
    cache_write_cost: Decimal = _ZERO
    output_cost: Decimal = _ZERO
    reasoning_cost: Decimal = _ZERO
    audio_cost: Decimal = _ZERO
    currency: str = "USD"
    #: Catalog id of the model whose prices were used.
    model: str | None = None
    provider: str | None = None
    #: The price period used: in force from ``effective_from`` (inclusive) ...
    effective_from: date | None = None
    #: ... until ``effective_to`` (exclusive; ``None`` = still current).
    effective_to: date | None = None
    catalog_version: str | None = None
    source: CostSource = "catalog"
    #: Price variant applied (``batch``, ``priority``, ``flex``...), ``None`` for standard.
    variant: str | None = None
    #: Long-context tier applied (its input threshold), ``None`` for the base tier.
    tier_threshold: int | None = None


class _CostShell:
    """Same slots as ``Cost`` without its frozen ``__setattr__`` (see :func:`trusted_cost`)."""

    __slots__ = Cost.__slots__


def trusted_cost(
    total: Any,
    input_cost: Any,
    cache_read_cost: Any,
    cache_write_cost: Any,
    output_cost: Any,
    reasoning_cost: Any,
    audio_cost: Any,
    currency: Any,
    model: Any,
    provider: Any,
    effective_from: Any,
    effective_to: Any,
    catalog_version: Any,
    source: Any,
    variant: Any,
    tier_threshold: Any,
) -> Cost:
    """A ``Cost`` from all its field values, positional, unchecked (the engine's hot path).

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``,
    about 3x the cost of this: the fields are set on a shell with the same slot layout,
    which then becomes a ``Cost`` (CPython checks the layouts match at the assignment).
    """
    cost: Any = _CostShell()
    cost.total = total
    cost.input_cost = input_cost
    cost.cache_read_cost = cache_read_cost
    cost.cache_write_cost = cache_write_cost
    cost.output_cost = output_cost
    cost.reasoning_cost = reasoning_cost
    cost.audio_cost = audio_cost
    cost.currency = currency
    cost.model = model
    cost.provider = provider
    cost.effective_from = effective_from
    cost.effective_to = effective_to
    cost.catalog_version = catalog_version
    cost.source = source
    cost.variant = variant
    cost.tier_threshold = tier_threshold
    cost.__class__ = Cost
    result: Cost = cost
    return result


assert (
    [f.name for f in fields(Cost)]
    == list(Cost.__slots__)
    == [
        "total",
        "input_cost",
        "cache_read_cost",
        "cache_write_cost",
        "output_cost",
        "reasoning_cost",
        "audio_cost",
        "currency",
        "model",
        "provider",
        "effective_from",
        "effective_to",
        "catalog_version",
        "source",
        "variant",
        "tier_threshold",
    ]
)
