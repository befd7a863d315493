"""What a provider's response says about the call that produced it.

Frameworks such as LlamaIndex hand over the provider's own response object (``response.raw``):
an ``openai`` SDK ``ChatCompletion``, an Anthropic ``Message`` turned into a dict, a Gemini
response, a plain dict of JSON. Besides its usage, it names the model that really served the
call (``gpt-4o-mini-2024-07-18``), the provider's id of the response (``chatcmpl-…``) and the
service tier it was billed at. :class:`ResponseInfo` carries those four facts; the readers in
:mod:`.openai_sdk`, :mod:`.anthropic_sdk` and :mod:`.payload` fill it, one per shape, and
:func:`tokentrail.extract.response.read_response` picks the reader.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..usage import Usage
from ._access import get

__all__ = [
    "NOTHING",
    "PRICE_VARIANTS",
    "SEARCH_CONTEXT_VARIANTS",
    "ResponseInfo",
    "price_variant",
    "search_context_variant",
    "text_or_none",
]


class ResponseInfo(NamedTuple):
    """The model, response id, price variant and usage a provider response reports.

    Each is ``None`` when the response does not say. ``usage`` is ``None`` when no usage was
    reported (a stream chunk before the last, a server that sends none): the caller then
    looks elsewhere or estimates, which it could not do with zero counts.
    """

    model: str | None
    request_id: str | None
    price_variant: str | None
    usage: Usage | None


#: A response that says nothing.
NOTHING = ResponseInfo(None, None, None, None)

#: Service tiers priced differently from the standard rate (``default``, ``auto``,
#: ``standard`` and anything else are the standard rate).
PRICE_VARIANTS = frozenset({"flex", "priority", "batch"})


def price_variant(tier: Any) -> str | None:
    """The price variant a reported service tier names (``"Flex"`` -> ``"flex"``), or ``None``.

    Example::

        >>> price_variant("priority"), price_variant("default"), price_variant(None)
        ('priority', None, None)
    """
    if not isinstance(tier, str):
        return None
    low = tier.lower()
    return low if low in PRICE_VARIANTS else None


#: Perplexity's ``usage.search_context_size`` -> the price variant of its request fee
#: (docs.perplexity.ai pricing: sonar $5 / $8 / $12 per 1K requests for low / medium /
#: high). ``low``, the default, is the standard price.
SEARCH_CONTEXT_VARIANTS = {"medium": "search_medium", "high": "search_high"}


def search_context_variant(usage: Any) -> str | None:
    """The price variant a usage's ``search_context_size`` names, or ``None``.

    Example::

        >>> search_context_variant({"search_context_size": "high"})
        'search_high'
    """
    size = get(usage, "search_context_size")
    return SEARCH_CONTEXT_VARIANTS.get(size.lower()) if isinstance(size, str) else None


def text_or_none(value: Any) -> str | None:
    """``value`` when it is a non-empty string (a model name, a response id), else ``None``."""
    return value if isinstance(value, str) and value else None
