"""Value types of the cost engine."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from typing import Literal

__all__ = ["Cost", "CostSource"]

CostSource = Literal["catalog", "provider", "override"]

_ZERO = Decimal(0)


@dataclass(frozen=True, init=False)
class Cost:
    """The price of one call, broken down by leaf, in ``currency`` (USD).

    Each token is billed once: ``input_cost`` covers uncached, non-audio input (text,
    image and video);
    ``cache_write_cost`` covers both the 5-minute and 1-hour writes; ``output_cost``
    covers output that is neither reasoning nor audio; ``audio_cost`` covers input and
    output audio; ``fee_cost`` covers what is billed per call, not per token (request
    fees and web searches). ``total`` is the sum of the leaves (or the provider-reported
    figure when ``source == "provider"``).
    """

    total: Decimal
    input_cost: Decimal = _ZERO
    cache_read_cost: Decimal = _ZERO
    cache_write_cost: Decimal = _ZERO
    output_cost: Decimal = _ZERO
    reasoning_cost: Decimal = _ZERO
    audio_cost: Decimal = _ZERO
    fee_cost: Decimal = _ZERO
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

    def __init__(
        self,
        total: Decimal,
        input_cost: Decimal = _ZERO,
        cache_read_cost: Decimal = _ZERO,
        cache_write_cost: Decimal = _ZERO,
        output_cost: Decimal = _ZERO,
        reasoning_cost: Decimal = _ZERO,
        audio_cost: Decimal = _ZERO,
        fee_cost: Decimal = _ZERO,
        currency: str = "USD",
        model: str | None = None,
        provider: str | None = None,
        effective_from: date | None = None,
        effective_to: date | None = None,
        catalog_version: str | None = None,
        source: CostSource = "catalog",
        variant: str | None = None,
        tier_threshold: int | None = None,
    ) -> None:
        # Frozen: the fields go into the instance's dict in one call, as in ``Usage``
        # (the generated __init__ calls object.__setattr__ once per field, about 2x this;
        # every priced call builds one, benchmarks/bench_langchain.py).
        self.__dict__.update(
            total=total,
            input_cost=input_cost,
            cache_read_cost=cache_read_cost,
            cache_write_cost=cache_write_cost,
            output_cost=output_cost,
            reasoning_cost=reasoning_cost,
            audio_cost=audio_cost,
            fee_cost=fee_cost,
            currency=currency,
            model=model,
            provider=provider,
            effective_from=effective_from,
            effective_to=effective_to,
            catalog_version=catalog_version,
            source=source,
            variant=variant,
            tier_threshold=tier_threshold,
        )


# The hand-written __init__ must take every field, in the fields' order.
assert list(Cost.__init__.__code__.co_varnames[1 : len(fields(Cost)) + 1]) == [
    f.name for f in fields(Cost)
]
