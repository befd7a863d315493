"""What a LlamaIndex response reports about its call: model, response id, tier and usage.

LlamaIndex keeps the provider's own response in ``response.raw`` and copies only two counts
into ``additional_kwargs``. The raw response says more (cached and reasoning tokens,
Anthropic's cache writes, the model that served the call), so it is read first, through
:func:`tokentrail.extract.response.read_response`; the copied counts are the fallback.
Nothing here imports LlamaIndex: responses are read by attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..extract.response import read_response
from ..extract.response_info import ResponseInfo
from ..usage import Usage

__all__ = ["copied_usage", "field", "has_usage", "reported"]


def field(obj: Any, name: str) -> Any:
    """``obj[name]`` for a mapping, ``obj.name`` otherwise; ``None`` when absent.

    A pydantic object's fields and extras are read from its instance dictionaries (a
    missing attribute would go through ``__getattr__`` and an exception, on every chunk).
    """
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    fields = getattr(obj, "__dict__", None)
    if fields is not None and name in fields:
        return fields[name]
    extra = getattr(obj, "__pydantic_extra__", None)
    if extra is not None:
        return extra.get(name)
    if hasattr(type(obj), "__pydantic_fields__"):
        return None  # a pydantic object without extras: not a field, not there
    return getattr(obj, name, None)


def has_usage(raw: Any) -> bool:
    """True when a raw provider payload (a response or a stream chunk) carries usage."""
    return field(raw, "usage") is not None or field(raw, "usage_metadata") is not None


def reported(
    source: Any, final: Any, provider: str | None, model: str | None
) -> tuple[ResponseInfo, Usage | None]:
    """What a call's responses report, and its usage (``None``: none was reported).

    ``source`` is the response whose raw payload carried the usage (a stream's usage
    chunk), ``final`` the last response. A stream's usage chunk may name no model or id
    (Anthropic's ``message_delta``): those then come from the final response.
    """
    info = read_response(field(source, "raw"), provider=provider, model=model)
    if source is not final and (info.model is None or info.request_id is None):
        other = read_response(field(final, "raw"), provider=provider, model=model)
        info = info._replace(
            model=info.model or other.model, request_id=info.request_id or other.request_id
        )
    usage = info.usage if info.usage is not None else copied_usage(source)
    return info, usage


def copied_usage(response: Any) -> Usage | None:
    """The counts LlamaIndex copied into the response, when the raw payload had none.

    ``additional_kwargs`` ``prompt_tokens``/``completion_tokens`` (OpenAI clients), or the
    ``usage`` dict Anthropic streams put on the message.
    """
    extra = field(response, "additional_kwargs")
    if isinstance(extra, Mapping) and ("prompt_tokens" in extra or "completion_tokens" in extra):
        return Usage.from_counts(
            input_tokens=extra.get("prompt_tokens"),
            output_tokens=extra.get("completion_tokens"),
            source="LlamaIndex additional_kwargs",
        )
    message_extra = field(field(response, "message"), "additional_kwargs")
    counts = message_extra.get("usage") if isinstance(message_extra, Mapping) else None
    if isinstance(counts, Mapping) and counts:
        return Usage.from_counts(
            input_tokens=counts.get("input_tokens"),
            output_tokens=counts.get("output_tokens"),
            source="LlamaIndex message usage",
        )
    return None
