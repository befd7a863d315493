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


# The slots' own setters: a frozen dataclass's __init__ goes through object.__setattr__
# per field (a name lookup each), most of the cost of pricing a call.
(
    _set_total,
    _set_input_cost,
    _set_cache_read_cost,
    _set_cache_write_cost,
    _set_output_cost,
    _set_reasoning_cost,
    _set_audio_cost,
    _set_currency,
    _set_model,
    _set_provider,
    _set_effective_from,
    _set_effective_to,
    _set_catalog_version,
    _set_source,
    _set_variant,
    _set_tier_threshold,
) = (Cost.__dict__[f.name].__set__ for f in fields(Cost))
assert [f.name for f in fields(Cost)] == [
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
    """A ``Cost`` from all its field values, positional, unchecked (the engine's hot path)."""
    cost: Cost = object.__new__(Cost)
    _set_total(cost, total)
    _set_input_cost(cost, input_cost)
    _set_cache_read_cost(cost, cache_read_cost)
    _set_cache_write_cost(cost, cache_write_cost)
    _set_output_cost(cost, output_cost)
    _set_reasoning_cost(cost, reasoning_cost)
    _set_audio_cost(cost, audio_cost)
    _set_currency(cost, currency)
    _set_model(cost, model)
    _set_provider(cost, provider)
    _set_effective_from(cost, effective_from)
    _set_effective_to(cost, effective_to)
    _set_catalog_version(cost, catalog_version)
    _set_source(cost, source)
    _set_variant(cost, variant)
    _set_tier_threshold(cost, tier_threshold)
    return cost
