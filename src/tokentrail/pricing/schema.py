"""The schema of a price catalog file (``pricing/<provider>.yaml``), as pydantic models.

Used when a catalog file is compiled (validated once, then cached) and by
``pricing/import_catalog.py`` to write ``pricing/catalog.schema.json``. Every token price
is in **USD per 1M tokens**, written as a decimal string (``"2.5"``, never a float). The
two fees billed per call rather than per token, ``request`` (per request) and
``web_search`` (per web search the provider ran), are in **USD per 1K** of them: the unit
vendors and genai-prices (``requests_kcount``, ``web_searches_kcount``) quote them in.

A file looks like::

    catalog_version: "2026.11.23"
    units: USD per 1M tokens
    provider: {id: openai, name: OpenAI, fallback: []}
    models:
      - id: gpt-4o
        match: [{exact: gpt-4o}, {prefix: gpt-4o-2024-08}]
        context_window: 128000
        max_output_tokens: 16384
        prices: {input: "2.5", cache_read: "1.25", output: "10"}
        variants: [{name: batch, prices: {input: "1.25", output: "5"}}]
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, time
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "PRICE_KEYS",
    "UNITS",
    "CatalogFile",
    "MatchRule",
    "ModelSpec",
    "Period",
    "PriceSet",
    "ProviderSpec",
    "Tier",
    "Variant",
]

#: The only unit a catalog file may declare: prices are per one million tokens.
UNITS = "USD per 1M tokens"

#: Price keys, in the order leaves are billed. A missing key falls back to its parent:
#: cache_read, cache_write, input_audio, input_image, input_video -> input; cache_write_1h -> cache_write;
#: reasoning, output_audio, output_image -> output; cache_read_audio -> cache_read.
#: ``request`` and ``web_search`` (USD per 1K, see the module docstring) have no parent.
PRICE_KEYS: tuple[str, ...] = (
    "input",
    "cache_read",
    "cache_write",
    "cache_write_1h",
    "input_audio",
    "output",
    "reasoning",
    "output_audio",
    "input_image",
    "output_image",
    "cache_read_audio",
    "input_video",
    "request",
    "web_search",
)


def _price(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a price")
    if isinstance(value, float):
        value = repr(value)  # 2.5 -> "2.5", not the binary expansion
    try:
        price = Decimal(str(value).strip())
    except ArithmeticError as exc:
        raise ValueError(f"{value!r} is not a decimal price") from exc
    if not price.is_finite() or price < 0:
        raise ValueError(f"{value!r} is not a finite non-negative price")
    return price


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Prices(_Strict):
    """Prices in USD per 1M tokens (fees per 1K); ``None`` means "use the parent's price"."""

    input: Decimal | None = None
    cache_read: Decimal | None = None
    cache_write: Decimal | None = Field(None, description="5-minute cache write")
    cache_write_1h: Decimal | None = None
    input_audio: Decimal | None = None
    output: Decimal | None = None
    reasoning: Decimal | None = Field(None, description="only when it differs from output")
    output_audio: Decimal | None = None
    input_image: Decimal | None = None
    output_image: Decimal | None = None
    cache_read_audio: Decimal | None = None
    input_video: Decimal | None = None
    request: Decimal | None = Field(None, description="USD per 1K requests")
    web_search: Decimal | None = Field(None, description="USD per 1K web searches")

    @field_validator(*PRICE_KEYS, mode="before")
    @classmethod
    def _decimal(cls, value: Any) -> Decimal | None:
        return _price(value)


class Tier(_Prices):
    """Long-context tier: when a request's total input exceeds ``above`` tokens, these
    prices apply to the *whole* request (keys not given keep the base price)."""

    above: int = Field(gt=0)


class PriceSet(_Prices):
    """Base prices plus optional long-context tiers (ascending ``above``)."""

    tiers: list[Tier] = Field(default_factory=list)

    @field_validator("tiers")
    @classmethod
    def _ascending(cls, tiers: list[Tier]) -> list[Tier]:
        thresholds = [t.above for t in tiers]
        if thresholds != sorted(set(thresholds)):
            raise ValueError(f"tier thresholds must be ascending and distinct, got {thresholds}")
        return tiers


class Period(_Strict):
    """Prices in force from ``effective_from`` (UTC date, inclusive; ``None`` = always).

    With ``utc_hours`` the period applies only inside that daily window (off-peak
    discounts). The last period in force at the time of the call wins.
    """

    effective_from: date | None = None
    utc_hours: tuple[time, time] | None = None
    prices: PriceSet
    note: str | None = None


class Variant(_Strict):
    """Prices the caller opts into (``batch``, ``priority``, ``flex``, ``fast``, a region).

    Only the keys given replace the standard prices. Several entries with the same name
    and different ``effective_from`` form that variant's price history.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.\-/]*$")
    effective_from: date | None = None
    prices: PriceSet
    note: str | None = None


class MatchRule(_Strict):
    """One way a model name refers to this model (compared in lowercase after
    normalizing spellings): an ``exact`` name, a ``prefix``, or a ``regex`` (searched)."""

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> MatchRule:
        given = [k for k in ("exact", "prefix", "regex") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a match rule needs exactly one of exact/prefix/regex, got {given}")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.regex!r}: {exc}") from exc
        return self


class ModelSpec(_Strict):
    """One model: its id, how names match it, and its prices (one set or a history)."""

    id: str = Field(min_length=1)
    name: str | None = None
    match: list[MatchRule] = Field(default_factory=list)
    context_window: int | None = Field(None, gt=0)
    #: The most tokens one reply can have (the budget guard's bound when a call sets no
    #: ``max_tokens``).
    max_output_tokens: int | None = Field(None, gt=0)
    prices: PriceSet | None = None
    periods: list[Period] | None = None
    variants: list[Variant] = Field(default_factory=list)
    deprecated: bool = False
    #: Where the figures come from and how a disagreement between sources was decided.
    note: str | None = None
    sources: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _prices_or_periods(self) -> ModelSpec:
        if (self.prices is None) == (self.periods is None):
            raise ValueError(f"model {self.id!r}: give exactly one of 'prices' or 'periods'")
        if self.periods is not None and not self.periods:
            raise ValueError(f"model {self.id!r}: 'periods' is empty")
        return self


class ProviderSpec(_Strict):
    """The provider a file describes; ``fallback`` lists providers whose models it also
    serves at the same price (Azure serves OpenAI's, Vertex serves Anthropic's)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    name: str
    pricing_urls: list[str] = Field(default_factory=list)
    fallback: list[str] = Field(default_factory=list)
    note: str | None = None


class CatalogFile(_Strict):
    """A whole catalog file: one provider and its models, or the local-providers rule."""

    catalog_version: str = Field(min_length=1)
    units: Literal["USD per 1M tokens"] = "USD per 1M tokens"
    provider: ProviderSpec | None = None
    models: list[ModelSpec] = Field(default_factory=list)
    #: Providers priced at 0 by rule (models served on the user's own hardware).
    local_providers: list[str] = Field(default_factory=list)
    note: str | None = None

    @model_validator(mode="after")
    def _has_content(self) -> CatalogFile:
        if self.provider is None and self.models:
            raise ValueError("a file with models needs a 'provider' section")
        if self.provider is None and not self.local_providers:
            raise ValueError("a catalog file needs a 'provider' section or 'local_providers'")
        counts = Counter(m.id for m in self.models)
        dupes = sorted(i for i, n in counts.items() if n > 1)
        if dupes:
            raise ValueError(f"duplicate model ids: {dupes}")
        return self
