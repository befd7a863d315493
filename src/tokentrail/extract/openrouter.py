"""OpenRouter usage, and the cost OpenRouter reports itself.

OpenRouter answers in the Chat Completions dialect (``prompt_tokens``,
``prompt_tokens_details.cached_tokens`` / ``cache_write_tokens`` / ``audio_tokens``,
``completion_tokens``, ``completion_tokens_details.reasoning_tokens``), or the Responses
dialect on ``/responses``. Its ``usage.cost`` is what the call was charged, in USD
credits: :func:`reported_cost` returns it as a ``Decimal`` so that it can win over the
catalog price (``UsageRecord.reported_cost``).

Dropped on purpose: ``cost_details`` (upstream BYOK cost), ``is_byok``.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

from ..usage import Usage
from ._access import get, has_any, is_record
from ._build import logger, never_raises
from .compatible import from_openai_compatible
from .openai import from_openai_responses

__all__ = ["from_openrouter", "reported_cost"]


def _usage(payload: Any) -> Any:
    if has_any(payload, "prompt_tokens", "input_tokens", "cost"):
        return payload
    return get(payload, "usage")


@never_raises("OpenRouter")
def from_openrouter(payload: Any) -> Usage | None:
    """Token usage of an OpenRouter response (chat or responses shape), or its ``usage``."""
    usage = _usage(payload)
    if usage is None or not is_record(usage):
        return from_openai_compatible(payload)  # warns about a malformed payload
    if has_any(usage, "input_tokens") and not has_any(usage, "prompt_tokens"):
        return from_openai_responses(usage)
    model = get(payload, "model")
    return from_openai_compatible(usage, model=model if isinstance(model, str) else None)


@never_raises("OpenRouter cost")
def reported_cost(payload: Any) -> Decimal | None:
    """The ``usage.cost`` OpenRouter reported (USD) as a ``Decimal``; ``None`` when absent.

    Perplexity's ``usage.cost`` is a breakdown: its ``total_cost`` is read (it includes the
    search-query and request fees no token price expresses).

    A cost that is negative, NaN or not a number is ignored with a warning.
    """
    usage = _usage(payload)
    value = get(usage, "cost")
    if is_record(value):  # Perplexity: {"input_tokens_cost": ..., "total_cost": ...}
        value = get(value, "total_cost")
    if value is None:
        return None
    if isinstance(value, bool):
        value = "not a number"
    try:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidOperation
            amount = Decimal(repr(value))  # the shortest decimal that reads back as value
        else:
            amount = Decimal(str(value).strip())
        if not amount.is_finite() or amount < 0:
            raise InvalidOperation
    except (InvalidOperation, ValueError, TypeError):
        logger.warning("tokentrail: OpenRouter reported cost %.40r is not a cost; ignored", value)
        return None
    return amount
