"""Response objects of the ``anthropic`` Python SDK, as frameworks hand them over.

``llama-index-llms-anthropic`` puts ``dict(message)`` in ``response.raw`` (the SDK's
``Message`` turned into a dict whose ``usage`` is still the SDK's ``Usage``) and, for a
stream, ``dict(event)`` of each event: the usage arrives in ``message_delta`` events
(``MessageDeltaUsage``, cumulative). The SDK objects themselves are read too. The counts
follow Anthropic's meaning, converted as :mod:`.anthropic` documents (raw ``input_tokens``
exclude the cache reads and writes, which are added).

Recognised by the usage object's class (module and name, decided once per class): this
module imports no SDK. Plain JSON dicts are left to the generic reader (:mod:`.payload`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..usage import MAX_TOKENS, Usage
from .anthropic import from_anthropic
from .response_info import ResponseInfo, price_variant, text_or_none

__all__ = ["from_anthropic_usage", "read_anthropic_response"]

_USAGES = frozenset(
    {
        ("anthropic.types.usage", "Usage"),
        ("anthropic.types.message_delta_usage", "MessageDeltaUsage"),
    }
)
_CACHE_CREATION = ("anthropic.types.cache_creation", "CacheCreation")

_KNOWN: dict[type, str | None] = {}
_MAX_KNOWN = 1024


def _sdk_kind(cls: type) -> str | None:
    """``"usage"``, ``"cache_creation"`` or ``None`` for a class (decided once per class)."""
    if cls in _KNOWN:
        return _KNOWN[cls]
    name = (getattr(cls, "__module__", ""), cls.__name__)
    kind = "usage" if name in _USAGES else "cache_creation" if name == _CACHE_CREATION else None
    if kind is not None and not hasattr(cls, "__pydantic_fields__"):
        kind = None
    if len(_KNOWN) < _MAX_KNOWN:
        _KNOWN[cls] = kind
    return kind


def _get(obj: Any, name: str) -> Any:
    """A key of a dict, or a field of an SDK object, ``None`` when absent."""
    if type(obj) is dict:
        return obj.get(name)
    if not hasattr(obj, "__pydantic_extra__"):
        return None
    fields = obj.__dict__
    if name in fields:
        return fields[name]
    extra = obj.__pydantic_extra__
    return extra.get(name) if extra else None


def read_anthropic_response(raw: Any) -> ResponseInfo | None:
    """Model, message id, price variant and usage of an Anthropic SDK response.

    Accepts a ``Message``, a ``message_start`` or ``message_delta`` event, or ``dict()`` of
    any of them. ``None`` when ``raw`` is none of those (its usage is not the SDK's);
    never raises. A ``message_delta`` names no model or id (``None``).

    Example::

        >>> info = read_anthropic_response(dict(client.messages.create(...)))
        >>> info.usage.input_tokens  # input + cache reads + cache writes
        10000
    """
    try:
        message = raw
        if _get(raw, "type") == "message_start":
            message = _get(raw, "message")
        block = _get(message, "usage")
        if block is None or _sdk_kind(type(block)) != "usage":
            return None
        return ResponseInfo(
            text_or_none(_get(message, "model")),
            text_or_none(_get(message, "id")),
            price_variant(_get(block, "service_tier")),
            from_anthropic_usage(block),
        )
    except Exception:  # a response we cannot read is a response without information
        return None


def from_anthropic_usage(usage: Any) -> Usage | None:
    """Canonical usage of the SDK's ``Usage`` or ``MessageDeltaUsage``.

    The usual case is read straight off the object: the SDK's class with no extra keys and
    no ``output_tokens_details``, every count a plain ``int`` (or ``None``, read as 0) and
    the sum within ``MAX_TOKENS``. Anything else is read by
    :func:`~tokentrail.extract.from_anthropic`, which validates and records what it fixed.
    """
    if _sdk_kind(type(usage)) == "usage" and not usage.__pydantic_extra__:
        counts = _plain_counts(usage.__dict__)
        if counts is not None:
            return counts
    return from_anthropic(usage)


def _plain_counts(fields: Mapping[str, Any]) -> Usage | None:
    searches: Any = getattr(fields.get("server_tool_use"), "web_search_requests", None)
    if fields.get("output_tokens_details") is not None or searches:
        return None  # thinking tokens, web searches: the general reader
    write_1h: Any = 0
    write_split: Any = 0
    breakdown = fields.get("cache_creation")
    if breakdown is not None:
        if _sdk_kind(type(breakdown)) != "cache_creation" or breakdown.__pydantic_extra__:
            return None
        write_1h = _zero(breakdown.__dict__.get("ephemeral_1h_input_tokens"))
        write_split = _zero(breakdown.__dict__.get("ephemeral_5m_input_tokens"))
    uncached = _zero(fields.get("input_tokens"))
    cache_read = _zero(fields.get("cache_read_input_tokens"))
    cache_write = _zero(fields.get("cache_creation_input_tokens"))
    out = _zero(fields.get("output_tokens"))
    for n in (uncached, cache_read, cache_write, out, write_1h, write_split):
        if type(n) is not int or n < 0:
            return None  # bool, float, str, negative: the general reader fixes it
    # The TTL split sums to the cache writes; the larger wins so no written token is lost.
    cache_write = max(cache_write, write_split + write_1h)
    inp = uncached + cache_read + cache_write
    if inp > MAX_TOKENS or out > MAX_TOKENS:
        return None
    return Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=write_1h,
    )


def _zero(value: Any) -> Any:
    return 0 if value is None else value
