"""Response objects of the ``openai`` Python SDK, as frameworks hand them over.

LlamaIndex's OpenAI client (and others built on ``openai``) puts the SDK's own response in
``response.raw``: a ``ChatCompletion``, the ``ChatCompletionChunk`` of a stream, a legacy
``Completion`` or a ``CreateEmbeddingResponse``. Their ``usage`` is the SDK's
``CompletionUsage`` (embeddings: a ``Usage`` with ``prompt_tokens`` only), read with the
meaning documented in :mod:`.openai`.

The classes are recognised by module and name, decided once per class, so importing this
module imports no SDK. A response of any other class is not read here (``None``): the
generic reader (:mod:`.payload`) takes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..usage import MAX_TOKENS, Usage, subsets_fit
from .compatible import from_openai_compatible
from .response_info import ResponseInfo, price_variant, search_context_variant, text_or_none

__all__ = ["from_openai_usage", "read_openai_response"]

_RESPONSES = frozenset(
    {
        ("openai.types.chat.chat_completion", "ChatCompletion"),
        ("openai.types.chat.chat_completion_chunk", "ChatCompletionChunk"),
        ("openai.types.completion", "Completion"),
        ("openai.types.create_embedding_response", "CreateEmbeddingResponse"),
    }
)
_USAGES = frozenset(
    {
        ("openai.types.completion_usage", "CompletionUsage"),
        ("openai.types.create_embedding_response", "Usage"),
    }
)
_PROMPT_DETAILS = frozenset({("openai.types.completion_usage", "PromptTokensDetails")})
_COMPLETION_DETAILS = frozenset({("openai.types.completion_usage", "CompletionTokensDetails")})

#: Per class: is it one of the SDK classes of a set? (Classes are few; the bound guards
#: against generated ones.)
_KNOWN: dict[tuple[type, frozenset[tuple[str, str]]], bool] = {}
_MAX_KNOWN = 1024


def _is_sdk_class(cls: type, names: frozenset[tuple[str, str]]) -> bool:
    key = (cls, names)
    found = _KNOWN.get(key)
    if found is None:
        found = (getattr(cls, "__module__", ""), cls.__name__) in names and hasattr(
            cls, "__pydantic_fields__"
        )
        if len(_KNOWN) < _MAX_KNOWN:
            _KNOWN[key] = found
    return found


def _field(obj: Any, name: str) -> Any:
    """A pydantic object's field or extra key, ``None`` when absent.

    Read from the instance dictionaries: a missing attribute would go through pydantic's
    ``__getattr__`` and an exception (an object built with ``construct()`` may lack fields).
    """
    fields = obj.__dict__
    if name in fields:
        return fields[name]
    extra = obj.__pydantic_extra__
    return extra.get(name) if extra else None


def read_openai_response(
    raw: Any, *, provider: str | None = None, model: str | None = None
) -> ResponseInfo | None:
    """Model, response id, price variant and usage of an ``openai`` SDK response object.

    ``provider`` and ``model`` help read OpenAI-compatible servers (see
    :func:`from_openai_usage`). ``None`` when ``raw`` is not one of the SDK's response
    classes; never raises.

    Example::

        >>> info = read_openai_response(client.chat.completions.create(...))
        >>> info.model, info.request_id, info.usage.cache_read_tokens
        ('gpt-4o-mini-2024-07-18', 'chatcmpl-…', 1024)
    """
    if raw is None or not _is_sdk_class(type(raw), _RESPONSES):
        return None
    try:
        served = text_or_none(_field(raw, "model"))
        block = _field(raw, "usage")
        usage = (
            None
            if block is None
            else from_openai_usage(block, provider=provider, model=served or model)
        )
        variant = _variant(_field(raw, "service_tier"), block)
        return ResponseInfo(served, text_or_none(_field(raw, "id")), variant, usage)
    except Exception:  # a response we cannot read is a response without information
        return None


def _variant(tier: Any, block: Any) -> str | None:
    """The price variant of the response's service ``tier``, else of its usage ``block``.

    Some compatible servers put the tier in the usage block, and Perplexity its search
    context size: the SDK's usage class declares neither, so they are extra keys there.
    """
    if block is None:
        return price_variant(tier)
    if _is_sdk_class(type(block), _USAGES):
        block = block.__pydantic_extra__
        if not block:
            return price_variant(tier)  # the usual case: nothing more in the block
        if tier is None:
            tier = block.get("service_tier")
    elif tier is None and hasattr(block, "__pydantic_extra__"):
        tier = _field(block, "service_tier")
    return price_variant(tier) or search_context_variant(block)


def from_openai_usage(
    usage: Any, *, provider: str | None = None, model: str | None = None
) -> Usage | None:
    """Canonical usage of the SDK's ``CompletionUsage`` (or an embeddings ``Usage``).

    The usual case is read straight off the object: the SDK's class with no extra keys,
    ``prompt_tokens`` a count, every count a plain ``int`` from 0 to ``MAX_TOKENS`` (or
    ``None``, read as 0), each subset within its parent, and ``total_tokens`` equal to
    prompt + completion whenever reasoning tokens are reported. Anything else (a value to
    coerce or clamp, an OpenAI-compatible server's extra keys such as DeepSeek's
    ``prompt_cache_hit_tokens``, xAI's reasoning outside the completion, another class, a
    dict) is read by :func:`~tokentrail.extract.from_openai_compatible`, which validates,
    applies those servers' rules on evidence and records what it fixed in ``issues``.
    ``None`` when no usage is reported.
    """
    if _is_sdk_class(type(usage), _USAGES) and not usage.__pydantic_extra__:
        counts = _plain_counts(usage.__dict__)
        if counts is not None:
            return counts
    return from_openai_compatible(usage, provider=provider, model=model)


def _plain_counts(fields: Mapping[str, Any]) -> Usage | None:
    """The counts of a usage's fields when all are plain and consistent, else ``None``."""
    prompt = _details(
        fields.get("prompt_tokens_details"), _PROMPT_DETAILS, "cached_tokens", "cache_write_tokens"
    )
    completion = _details(
        fields.get("completion_tokens_details"), _COMPLETION_DETAILS, "reasoning_tokens", None
    )
    if prompt is None or completion is None:
        return None
    inp: Any = fields.get("prompt_tokens")
    out = fields.get("completion_tokens")
    out = 0 if out is None else out
    cache_read, cache_write, audio_in = prompt
    reasoning, _unused, audio_out = completion
    for n in (inp, out, cache_read, cache_write, audio_in, reasoning, audio_out):
        if type(n) is not int or n < 0 or n > MAX_TOKENS:
            return None  # bool, float, str, negative, too large: the general reader fixes it
    counts = {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "input_audio_tokens": audio_in,
        "reasoning_tokens": reasoning,
        "output_audio_tokens": audio_out,
    }
    if not subsets_fit(counts):
        return None  # clamped and flagged by the general reader
    if reasoning and fields.get("total_tokens") != inp + out:
        return None  # reasoning may be outside the completion (xAI): the general reader decides
    return Usage(**counts)


def _details(
    details: Any, classes: frozenset[tuple[str, str]], first: str, second: str | None
) -> tuple[Any, Any, Any] | None:
    """(``first``, ``second``, ``audio_tokens``) of a details object, ``None`` counted as 0.

    ``None`` when the details are not the SDK's class (left to the general reader).
    """
    if details is None:
        return 0, 0, 0
    if not _is_sdk_class(type(details), classes):
        return None
    found = details.__dict__
    a, b, c = found.get(first), found.get(second) if second else 0, found.get("audio_tokens")
    return (0 if a is None else a), (0 if b is None else b), (0 if c is None else c)
