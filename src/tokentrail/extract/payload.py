"""Any other provider response: decoded JSON, or an SDK object no dedicated reader knows.

The model, response id and service tier are read where the providers put them (top level;
Anthropic's ``message_start`` wraps the message; Anthropic says the tier in ``usage``), and
the usage by :func:`~tokentrail.extract.extract_usage`, which recognises the dialect from the
payload's shape. This is the slow, general reader: the SDK readers (:mod:`.openai_sdk`,
:mod:`.anthropic_sdk`) take the objects they know first.
"""

from __future__ import annotations

from typing import Any

from . import extract_usage
from ._access import get
from .response_info import (
    NOTHING,
    ResponseInfo,
    price_variant,
    search_context_variant,
    text_or_none,
)

__all__ = ["read_payload"]


def read_payload(
    raw: Any, *, provider: str | None = None, model: str | None = None
) -> ResponseInfo:
    """Model, response id, price variant and usage of any provider response; never raises.

    ``provider`` says the dialect when the shape cannot (an Anthropic stream's
    ``message_delta`` usage has no telltale keys); ``model`` helps the ambiguous shapes
    (see :func:`~tokentrail.extract.extract_usage`). A usage of all zeros with nothing to
    report about it counts as no usage (``None``): servers send such blocks on every chunk.

    Example::

        >>> read_payload({"id": "r-1", "model": "m", "usage": {"prompt_tokens": 3,
        ...               "completion_tokens": 1}}).usage.total_tokens
        4
    """
    if raw is None:
        return NOTHING
    message = get(raw, "message")  # Anthropic's message_start event
    served = text_or_none(get(raw, "model")) or text_or_none(get(message, "model"))
    block = get(raw, "usage")
    variant = (
        price_variant(get(raw, "service_tier"))
        or price_variant(get(block, "service_tier"))
        or search_context_variant(block)
    )
    dialect = "anthropic" if provider == "anthropic" else None
    usage = extract_usage(raw, dialect=dialect, model=served or model)
    if usage is not None and usage.is_empty and not usage.issues:
        usage = None
    return ResponseInfo(served, text_or_none(get(raw, "id")), variant, usage)
