"""Token usage, model and request id of one LlamaIndex call, read from its responses.

LlamaIndex copies only three counts into ``ChatResponse.additional_kwargs``; the provider's
own response in ``response.raw`` says more (cached and reasoning tokens, Anthropic cache
writes), so the raw payload is read first through :mod:`tokentrail.extract`, and the copied
counts are the fallback. When a stream carried no usage, the counts are estimated locally
(:mod:`tokentrail.estimate`) and marked ``estimated``. Nothing here imports LlamaIndex: the
objects are read by attribute, so the functions are cheap and easy to test.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ..usage import MAX_TOKENS, Usage, trusted_usage

__all__ = [
    "attr",
    "estimate_embedding",
    "estimate_prompt",
    "estimate_text",
    "has_usage",
    "message_dict",
    "model_of",
    "price_variant_of",
    "read_raw",
    "request_id_of",
    "response_text",
    "usage_of",
    "usage_read",
]

logger = logging.getLogger("tokentrail")


# How the objects of a type are read, decided once per type: isinstance() against the
# ``Mapping`` ABC and the pydantic check cost about a microsecond per read otherwise.
_OTHER = 0
_PYDANTIC = 1
_MAPPING = 2
_PYDANTIC_MAPPING = 3
_KINDS: dict[type, int] = {dict: _MAPPING}
_MAX_KINDS = 4096  # types are few; the bound only guards against generated classes


def _kind(cls: type) -> int:
    kind = _KINDS.get(cls)
    if kind is None:
        kind = (_PYDANTIC if hasattr(cls, "__pydantic_fields__") else _OTHER) | (
            _MAPPING if issubclass(cls, Mapping) else _OTHER
        )
        if len(_KINDS) < _MAX_KINDS:
            _KINDS[cls] = kind
    return kind


def attr(obj: Any, name: str) -> Any:
    """``obj.name`` or ``None``, cheaply for pydantic models.

    A missing attribute on a pydantic model goes through ``__getattr__`` and an exception
    (microseconds each); fields and extras are read from the instance dictionaries instead
    (properties of pydantic models are not read).
    """
    if obj is None:
        return None
    if not _kind(type(obj)) & _PYDANTIC:
        return getattr(obj, name, None)
    fields = obj.__dict__
    if name in fields:
        return fields[name]
    extra = obj.__pydantic_extra__
    return extra.get(name) if extra else None


def _get(obj: Any, name: str) -> Any:
    """``obj[name]`` for mappings, ``obj.name`` otherwise; ``None`` when missing."""
    if obj is None:
        return None
    cls = type(obj)
    if cls is dict:
        return obj.get(name)
    kind = _kind(cls)
    if kind & _MAPPING:
        return obj.get(name)
    if not kind & _PYDANTIC:
        return getattr(obj, name, None)
    fields = obj.__dict__
    if name in fields:
        return fields[name]
    extra = obj.__pydantic_extra__
    return extra.get(name) if extra else None


def has_usage(raw: Any) -> bool:
    """True when a raw provider payload (response or stream chunk) carries a usage block."""
    return _get(raw, "usage") is not None or _get(raw, "usage_metadata") is not None


def model_of(raw: Any) -> str | None:
    """The model the provider says served the call (``gpt-4o-mini-2024-07-18``)."""
    value = _get(raw, "model")
    if value is None:
        message = _get(raw, "message")  # Anthropic's message_start event
        value = _get(message, "model")
    return str(value) if isinstance(value, str) and value else None


def price_variant_of(raw: Any) -> str | None:
    """The price variant a response was billed at (``flex``, ``priority``, ``batch``) or None."""
    # OpenAI says it at the top level, Anthropic in usage; "default"/"standard" are no variant.
    for tier in (_get(raw, "service_tier"), _get(_get(raw, "usage"), "service_tier")):
        if isinstance(tier, str) and tier.lower() in _VARIANTS:
            return tier.lower()
    return None


_VARIANTS = frozenset({"flex", "priority", "batch"})


def _variant(tier: Any) -> str | None:
    if type(tier) is not str and not isinstance(tier, str):
        return None
    low = tier.lower()
    return low if low in _VARIANTS else None


def request_id_of(raw: Any) -> str | None:
    """The provider's id of the response (``chatcmpl-…``, ``msg_…``), if any."""
    value = _get(raw, "id")
    return value if isinstance(value, str) and value else None


def usage_of(response: Any, provider: str | None, model: str | None) -> Usage | None:
    """Reported usage of a ``ChatResponse``/``CompletionResponse``, ``None`` if it has none.

    The raw provider payload wins; the counts LlamaIndex copied into ``additional_kwargs``
    (``prompt_tokens``/``completion_tokens``, or Anthropic's streamed ``usage`` dict) are
    used when the raw payload has nothing readable.
    """
    if response is None:
        return None
    raw = _get(response, "raw")
    return usage_read(response, raw, _get(raw, "usage"), provider, model)


def usage_read(
    response: Any, raw: Any, usage: Any, provider: str | None, model: str | None
) -> Usage | None:
    """:func:`usage_of` when ``response.raw`` and ``raw.usage`` were already read."""
    if response is None:
        return None
    if raw is not None and (usage is not None or _get(raw, "usage_metadata") is not None):
        if provider in _OPENAI_SEMANTICS and _is_sdk_usage(type(usage)):
            fast = _sdk_counts(usage)
            if fast is not None:
                return fast
        found = _extract(raw, provider, model)
        if found is not None:
            return found
    return _from_additional_kwargs(response)


_NO_EXTRA: Mapping[str, Any] = {}


def read_raw(raw: Any) -> tuple[str | None, str | None, str | None, Any]:
    """(model, request id, price variant, usage block) of a raw provider payload.

    The values of :func:`model_of`, :func:`request_id_of`, :func:`price_variant_of` and
    ``raw.usage``, read in one pass (this runs once per recorded call).
    """
    if raw is None:
        return None, None, None, None
    cls = type(raw)
    kind = _MAPPING if cls is dict else _kind(cls)
    if kind & _MAPPING:
        get = raw.get
        model, rid, tier, usage = get("model"), get("id"), get("service_tier"), get("usage")
    elif kind & _PYDANTIC:
        fields = raw.__dict__
        extra = raw.__pydantic_extra__ or _NO_EXTRA
        model = fields["model"] if "model" in fields else extra.get("model")
        rid = fields["id"] if "id" in fields else extra.get("id")
        tier = fields["service_tier"] if "service_tier" in fields else extra.get("service_tier")
        usage = fields["usage"] if "usage" in fields else extra.get("usage")
    else:
        model = getattr(raw, "model", None)
        rid = getattr(raw, "id", None)
        tier = getattr(raw, "service_tier", None)
        usage = getattr(raw, "usage", None)
    if model is None:
        model = _get(_get(raw, "message"), "model")  # Anthropic's message_start event
    # OpenAI says the tier at the top level, Anthropic in usage (see price_variant_of).
    variant = _variant(tier)
    if variant is None and usage is not None:
        variant = _variant(_get(usage, "service_tier"))
    return (
        str(model) if isinstance(model, str) and model else None,
        rid if isinstance(rid, str) and rid else None,
        variant,
        usage,
    )


# Providers whose Chat Completions usage has OpenAI's own meaning (no compatible-server quirks).
_OPENAI_SEMANTICS = frozenset({"openai", "azure"})


_SDK_USAGE: dict[type, bool] = {}


def _is_sdk_usage(cls: type) -> bool:
    """True for the ``openai`` SDK's ``CompletionUsage`` (decided once per type)."""
    found = _SDK_USAGE.get(cls)
    if found is None:
        found = cls.__name__ == "CompletionUsage" and cls.__module__.startswith("openai.")
        if len(_SDK_USAGE) < _MAX_KINDS:
            _SDK_USAGE[cls] = found
    return found


def _openai_sdk_usage(raw: Any) -> Usage | None:
    """Fast path for the ``openai`` SDK's ``CompletionUsage`` (the common case).

    Reads the same fields as :func:`tokentrail.extract.from_openai_chat` straight off the
    SDK object (the generic reader costs tens of microseconds per call on pydantic objects).
    Anything unexpected (not the SDK type, a non-integer, a subset larger than its parent)
    returns ``None`` so that the generic reader validates and flags it.
    """
    usage: Any = _get(raw, "usage")
    return _sdk_counts(usage) if _is_sdk_usage(type(usage)) else None


def _details(obj: Any, a: str, b: str, c: str) -> tuple[Any, Any, Any]:
    """``attr(obj, name)`` for three names with one type check; missing/None counts are 0."""
    if obj is None:
        return 0, 0, 0
    if not _kind(type(obj)) & _PYDANTIC:
        va, vb, vc = getattr(obj, a, None), getattr(obj, b, None), getattr(obj, c, None)
    else:
        fields = obj.__dict__
        extra = obj.__pydantic_extra__ or _NO_EXTRA
        va = fields[a] if a in fields else extra.get(a)
        vb = fields[b] if b in fields else extra.get(b)
        vc = fields[c] if c in fields else extra.get(c)
    return (0 if va is None else va), (0 if vb is None else vb), (0 if vc is None else vc)


def _sdk_counts(usage: Any) -> Usage | None:
    """:func:`_openai_sdk_usage` on the SDK's ``CompletionUsage`` itself."""
    inp = usage.prompt_tokens
    out = usage.completion_tokens
    inp = 0 if inp is None else inp
    out = 0 if out is None else out
    cache_read, cache_write, audio_in = _details(
        usage.prompt_tokens_details, "cached_tokens", "cache_write_tokens", "audio_tokens"
    )
    # Two names wanted here: the third repeats the first.
    reasoning, audio_out, _unused = _details(
        usage.completion_tokens_details, "reasoning_tokens", "audio_tokens", "reasoning_tokens"
    )
    # Every count a plain int (bool is not: type(True) is not int) within 0..MAX_TOKENS:
    # the bitwise or of non-negative ints is at least each of them, and negative if any is.
    if not (
        type(inp) is int
        and type(out) is int
        and type(cache_read) is int
        and type(cache_write) is int
        and type(audio_in) is int
        and type(reasoning) is int
        and type(audio_out) is int
    ):
        return None
    ored = inp | out | cache_read | cache_write | audio_in | reasoning | audio_out
    if ored < 0 or ored > MAX_TOKENS:
        return None  # the general reader clamps the count and flags it
    if cache_read + cache_write > inp or audio_in > inp or reasoning + audio_out > out:
        return None
    # Checked above: built without the frozen dataclass's per-field __setattr__.
    return trusted_usage(inp, out, cache_read, cache_write, 0, audio_in, reasoning, audio_out)


def _extract(raw: Any, provider: str | None, model: str | None) -> Usage | None:
    try:
        from ..extract import extract_usage
    except ImportError:  # pragma: no cover - the extract module ships with tokentrail
        return None
    # Shape detection reads OpenAI-compatible servers right whatever the client class;
    # Anthropic's stream deltas need the dialect said (their usage has no telltale keys).
    dialect = "anthropic" if provider == "anthropic" else None
    try:
        usage = extract_usage(raw, dialect=dialect, model=model)
    except Exception:  # a payload we cannot read is a missing usage, not a failure
        logger.debug("tokentrail: could not read usage from %s", type(raw).__name__, exc_info=True)
        return None
    if usage is None or (usage.is_empty and not usage.issues):
        return None
    return usage


def _from_additional_kwargs(response: Any) -> Usage | None:
    extra = _get(response, "additional_kwargs")
    if isinstance(extra, Mapping) and ("prompt_tokens" in extra or "completion_tokens" in extra):
        return Usage.from_counts(
            input_tokens=extra.get("prompt_tokens"),
            output_tokens=extra.get("completion_tokens"),
            source="LlamaIndex additional_kwargs",
        )
    # Anthropic streams put the message_start/message_delta counts on the message.
    message_extra = _get(_get(response, "message"), "additional_kwargs")
    counts = message_extra.get("usage") if isinstance(message_extra, Mapping) else None
    if isinstance(counts, Mapping) and counts:
        return Usage.from_counts(
            input_tokens=counts.get("input_tokens"),
            output_tokens=counts.get("output_tokens"),
            source="LlamaIndex message usage",
        )
    return None


def response_text(response: Any) -> str:
    """What was generated so far, as text: the message content plus its tool calls.

    A tool call counts as its name and its JSON arguments (what the model emitted).
    """
    if response is None:
        return ""
    message = _get(response, "message")
    if message is None:
        text = _get(response, "text")
        return text if isinstance(text, str) else ""
    try:
        content = message.content
    except Exception:  # blocks that cannot be rendered as text
        content = None
    parts = [content if isinstance(content, str) else ""]
    for block in _get(message, "blocks") or ():
        name = _get(block, "tool_name")
        if isinstance(name, str):
            arguments = _get(block, "tool_kwargs")
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments, default=str)
            parts.append(name + arguments)
    return "".join(parts)


def message_dict(message: Any) -> dict[str, Any]:
    """A ``ChatMessage`` as the ``{"role", "content"}`` mapping the estimator reads."""
    role = _get(message, "role")
    role = getattr(role, "value", role)
    try:
        content = message.content if not isinstance(message, Mapping) else message.get("content")
    except Exception:
        content = None
    return {"role": str(role or "user"), "content": content if isinstance(content, str) else ""}


def estimate_prompt(
    messages: Sequence[Any] | None,
    prompt: str | None,
    model: str | None,
    tools: Sequence[Any] | None = None,
) -> int:
    """Local estimate of the prompt tokens of a chat (``messages``, ``tools``) or completion."""
    try:
        from .. import estimate

        if messages is not None:
            return estimate.count_message_tokens(
                [message_dict(m) for m in messages], model, tools=tools or None
            )
        return estimate.count_text_tokens(prompt or "", model)
    except Exception:  # estimation is best effort: never fail a capture on it
        logger.debug("tokentrail: prompt estimate failed", exc_info=True)
        text = "".join(message_dict(m)["content"] for m in messages or ()) + (prompt or "")
        return (len(text) + 3) // 4


def estimate_text(text: str, model: str | None) -> int:
    """Local estimate of the tokens of a generated text."""
    if not text:
        return 0
    try:
        from .. import estimate

        return estimate.count_text_tokens(text, model)
    except Exception:
        logger.debug("tokentrail: text estimate failed", exc_info=True)
        return (len(text) + 3) // 4


def estimate_embedding(chunks: Sequence[str], model: str | None) -> int:
    """Local estimate of the input tokens of an embedding call over ``chunks``."""
    return sum(estimate_text(c, model) for c in chunks if isinstance(c, str))
