"""Anthropic Messages usage, whole responses and streams.

Anthropic's raw ``input_tokens`` EXCLUDES cache tokens, so::

    input_tokens  = input_tokens + cache_creation_input_tokens + cache_read_input_tokens
    cache_read    = cache_read_input_tokens
    cache_write   = cache_creation_input_tokens
                    (or cache_creation.ephemeral_5m_input_tokens + ephemeral_1h_input_tokens)
    cache_write_1h = cache_creation.ephemeral_1h_input_tokens
    output_tokens = output_tokens (includes thinking)
    reasoning     = output_tokens_details.thinking_tokens
    web_search_requests = server_tool_use.web_search_requests (billed per search)

Dropped on purpose: ``server_tool_use.web_fetch_requests`` (no charge beyond the fetched
tokens, which are input), ``service_tier``, ``inference_geo`` and ``speed`` (pricing
variants: read them with :func:`tokentrail.extract.service_tier_of`, not counts).

Streams: ``message_start`` carries the input and cache counts (and a first, tiny
``output_tokens``); each ``message_delta`` carries *cumulative* counts that replace the
earlier ones (``output_tokens`` always, the others when present). Nothing is summed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..usage import Usage
from ._access import get, has_any, path
from ._build import Tally, never_raises
from .openai import usage_object

__all__ = ["from_anthropic", "from_anthropic_stream"]

_MARKERS = ("input_tokens", "output_tokens", "cache_read_input_tokens")
_STREAM_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cache_creation",
    "output_tokens_details",
    "server_tool_use",
)


@never_raises("Anthropic")
def from_anthropic(payload: Any) -> Usage | None:
    """Usage of an Anthropic Messages response (``anthropic.types.Message``), its ``usage``,
    a ``message_start`` event, or the same as dicts (also Bedrock/Vertex Claude bodies).
    """
    if get(payload, "message") is not None and not has_any(payload, *_MARKERS):
        payload = get(payload, "message")  # a message_start event
    usage = usage_object(payload, _MARKERS, "Anthropic")
    if usage is None:
        return None
    tally = Tally("Anthropic")
    uncached = tally.count(get(usage, "input_tokens"), "input_tokens")
    cache_read = tally.count(get(usage, "cache_read_input_tokens"), "cache_read_input_tokens")
    cache_write = tally.count(
        get(usage, "cache_creation_input_tokens"), "cache_creation_input_tokens"
    )
    breakdown = get(usage, "cache_creation")
    write_5m = tally.count(get(breakdown, "ephemeral_5m_input_tokens"), "ephemeral_5m")
    write_1h = tally.count(get(breakdown, "ephemeral_1h_input_tokens"), "ephemeral_1h")
    # The TTL breakdown sums to cache_creation_input_tokens; trust the larger if they differ
    # so that no written token goes unbilled.
    cache_write = max(cache_write, write_5m + write_1h)
    return tally.usage(
        input_tokens=uncached + cache_read + cache_write,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=write_1h,
        output_tokens=tally.count(get(usage, "output_tokens"), "output_tokens"),
        reasoning_tokens=tally.count(
            path(usage, "output_tokens_details", "thinking_tokens"), "thinking_tokens"
        ),
        web_search_requests=tally.count(
            path(usage, "server_tool_use", "web_search_requests"), "web_search_requests"
        ),
    )


@never_raises("Anthropic stream")
def from_anthropic_stream(events: Iterable[Any]) -> Usage | None:
    """Usage of a streamed Anthropic message, from its events (SDK objects or dicts).

    Reads ``message_start`` (``event.message.usage``) then every ``message_delta``
    (``event.usage``, cumulative). ``None`` when no event carried usage.
    """
    merged: dict[str, Any] = {}
    for event in events:
        kind = get(event, "type")
        if kind == "message_start":
            usage = path(event, "message", "usage")
        elif kind == "message_delta":
            usage = get(event, "usage")
        else:
            continue
        if usage is None:
            continue
        for name in _STREAM_FIELDS:
            value = get(usage, name)
            if value is not None:  # cumulative: a later value replaces an earlier one
                merged[name] = value
    if not merged:
        return None
    return from_anthropic(merged)
