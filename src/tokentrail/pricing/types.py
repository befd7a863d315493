"""Value types of the cost engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from ..frozen_init import dict_init

__all__ = ["Cost", "CostSource"]

CostSource = Literal["catalog", "provider", "override"]

_ZERO = Decimal(0)


@dict_init
@dataclass(frozen=True)
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
