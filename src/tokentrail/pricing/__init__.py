"""Prices and costs: the catalog in ``pricing/`` and the exact cost engine.

Example::

    >>> from tokentrail import pricing
    >>> c = pricing.cost("claude-sonnet-4-5", input_tokens=12_000, output_tokens=800,
    ...                  cache_read_tokens=10_000)
    >>> c.total == Decimal("0.021"), c.model
    (True, 'claude-sonnet-4-5')

Prices are USD per 1M tokens; costs are exact ``Decimal`` values. A model the catalog does not know costs ``None`` (never $0)
and is logged once; ``strict=True`` raises :class:`tokentrail.UnknownModelError` instead.
Override or add prices with :func:`register`, :func:`load_file` or a file named by the
``TOKENTRAIL_PRICING`` environment variable (several paths separated by ``os.pathsep``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ..errors import PricingError, UnknownModelError
from ..usage import Usage
from .catalog import Catalog, ModelEntry, catalog_dir
from .engine import Pricer
from .types import Cost

__all__ = [
    "Catalog",
    "Cost",
    "ModelEntry",
    "Pricer",
    "PricingError",
    "UnknownModelError",
    "catalog_dir",
    "catalog_version",
    "clear_overrides",
    "cost",
    "find_model",
    "load_file",
    "models",
    "register",
    "zero_cost",
]

_default: Pricer | None = None


def default_pricer() -> Pricer:
    """The process-wide :class:`Pricer` over the shipped catalog."""
    global _default
    if _default is None:
        _default = Pricer()
    return _default


def cost(
    model: str | None,
    *,
    provider: str | None = None,
    at: datetime | date | str | None = None,
    usage: Usage | Mapping[str, Any] | None = None,
    variant: str | None = None,
    reported_cost: Decimal | float | str | None = None,
    strict: bool = False,
    **usage_fields: Any,
) -> Cost | None:
    """The cost of one call, or ``None`` when the model is unknown.

    Args:
        model: the model name as the provider or framework reported it; spellings are
            normalized (``openai/gpt-4o``, ``gpt-4o-2024-08-06``, Bedrock and Vertex ids).
        provider: who served the call (``openai``, ``vertex_ai``, ``aws``, ``azure_openai``...).
            Local providers (Ollama, llama.cpp, vLLM, LM Studio) cost 0.
        at: when the call was made (default now), to use the prices in force then.
        usage: a :class:`~tokentrail.Usage` or a mapping of counts; keyword counts
            (``input_tokens=``, ``cache_read_tokens=``...) are added on top.
        variant: a price variant the call used (``batch``, ``priority``, ``flex``...).
        reported_cost: a cost the provider reported itself (OpenRouter's ``usage.cost``);
            it wins, and the result is marked ``source="provider"``.
        strict: raise :class:`~tokentrail.UnknownModelError` (or ``PricingError``) instead
            of returning ``None`` and logging.

    Azure: pass the model name the response reports (``gpt-4o-2024-08-06``), not the
    deployment name, which can be anything; it is priced at the OpenAI model's price.

    Example::

        >>> cost("gpt-4o", input_tokens=1_000, output_tokens=200).total == Decimal("0.0045")
        True
    """
    return default_pricer().cost(
        model,
        provider=provider,
        at=at,
        usage=usage,
        variant=variant,
        reported_cost=reported_cost,
        strict=strict,
        **usage_fields,
    )


def zero_cost(model: str | None, provider: str | None = None) -> Cost:
    """A $0 :class:`Cost` for a call that cost nothing (a framework cache hit, a local model)."""
    return default_pricer().zero_cost(model, provider)


def register(model: str, *, provider: str | None = None, **prices: Any) -> None:
    """Add a model or override its prices (USD per 1M tokens), marked ``source="override"``.

    Keyword arguments: ``input, output, cache_read, cache_write, cache_write_1h, reasoning,
    input_audio, output_audio`` (decimal strings or numbers; ``request`` and ``web_search``
    are fees in USD per 1K requests / searches), ``tiers`` (list of
    ``{"above": N, "input": ...}``), ``match`` (list of ``{"exact"|"prefix"|"regex": ...}``,
    default the exact name), ``effective_from`` (a date: calling again with another date
    builds a price history), ``variants``, ``context_window``, ``name``.

    Example::

        register("my-finetune", provider="openai", input="3", output="12")
    """
    default_pricer().register(model, provider=provider, **prices)


def load_file(path: str | os.PathLike[str]) -> int:
    """Load a price file in the catalog format; its models override the shipped ones.

    Returns the number of models loaded. Raises :class:`~tokentrail.PricingError` when the
    file is invalid (the message names the field at fault).
    """
    return default_pricer().load_file(path)


def clear_overrides() -> None:
    """Forget every price registered in code or loaded from a user file."""
    default_pricer().clear_overrides()


def find_model(model: str, provider: str | None = None) -> ModelEntry | None:
    """The catalog entry that prices ``model`` (after normalizing its spelling), if any."""
    return default_pricer().find(model, provider)


def models(provider: str | None = None) -> Iterator[ModelEntry]:
    """Every model in the shipped catalog, or those of one provider."""
    from ..providers import normalize_provider

    return default_pricer().catalog.entries(normalize_provider(provider))


def catalog_version() -> str | None:
    """The version of the shipped catalog."""
    return default_pricer().catalog.version()
