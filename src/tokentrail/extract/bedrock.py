"""Amazon Bedrock Converse / ConverseStream ``usage`` (``TokenUsage``).

Like Anthropic's, Bedrock's ``inputTokens`` EXCLUDES the tokens read from or written to
the prompt cache (AWS prompt-caching guide; genai-prices and LangChain-AWS add them), so::

    input_tokens   = inputTokens + cacheReadInputTokens + cacheWriteInputTokens
    cache_read     = cacheReadInputTokens
    cache_write    = cacheWriteInputTokens (or the sum of cacheDetails[].inputTokens)
    cache_write_1h = cacheDetails[ttl == "1h"].inputTokens
    output_tokens  = outputTokens

Accepts the Converse response (``{"usage": ...}``), the ``metadata`` event of a stream
(``{"metadata": {"usage": ...}}``) or ``TokenUsage`` itself. Claude bodies returned by
``InvokeModel`` use the Anthropic dialect (:func:`~tokentrail.extract.from_anthropic`).

Dropped on purpose: ``totalTokens`` (recomputed), ``metrics.latencyMs``.
"""

from __future__ import annotations

from typing import Any

from ..usage import Usage
from ._access import get, has_any, items, path
from ._build import Tally, never_raises
from .openai import usage_object

__all__ = ["from_bedrock_converse"]

_MARKERS = ("inputTokens", "outputTokens", "cacheReadInputTokens")


@never_raises("Bedrock Converse")
def from_bedrock_converse(payload: Any) -> Usage | None:
    """Usage of a Bedrock Converse response, stream ``metadata`` event, or ``TokenUsage``."""
    if not has_any(payload, *_MARKERS) and path(payload, "metadata", "usage") is not None:
        payload = get(payload, "metadata")
    usage = usage_object(payload, _MARKERS, "Bedrock Converse")
    if usage is None:
        return None
    tally = Tally("Bedrock Converse")
    uncached = tally.count(get(usage, "inputTokens"), "inputTokens")
    cache_read = tally.count(get(usage, "cacheReadInputTokens"), "cacheReadInputTokens")
    cache_write = tally.count(get(usage, "cacheWriteInputTokens"), "cacheWriteInputTokens")
    detailed = write_1h = 0
    for detail in items(get(usage, "cacheDetails")):
        tokens = tally.count(get(detail, "inputTokens"), "cacheDetails.inputTokens")
        detailed += tokens
        if str(get(detail, "ttl") or "").lower() == "1h":
            write_1h += tokens
    cache_write = max(cache_write, detailed)
    return tally.usage(
        input_tokens=uncached + cache_read + cache_write,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=write_1h,
        output_tokens=tally.count(get(usage, "outputTokens"), "outputTokens"),
    )
