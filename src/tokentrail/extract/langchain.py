"""LangChain ``usage_metadata`` and the legacy ``llm_output`` token usage.

``AIMessage.usage_metadata`` already follows the canonical convention (input includes
cache and audio, output includes reasoning and audio)::

    input_tokens / output_tokens              -> input_tokens / output_tokens
    input_token_details.cache_read            -> cache_read_tokens
    input_token_details.cache_creation        -> cache_write_tokens
    input_token_details.ephemeral_5m_input_tokens + ephemeral_1h_input_tokens
                                              -> cache_write_tokens (Anthropic TTL split;
                                                 langchain-anthropic then sets
                                                 cache_creation to 0)
    input_token_details.ephemeral_1h_input_tokens -> cache_write_1h_tokens
    input_token_details.audio                 -> input_audio_tokens
    output_token_details.reasoning            -> reasoning_tokens
    output_token_details.audio                -> output_audio_tokens

OpenAI service tiers rename the keys: with ``service_tier="priority"`` langchain-openai
reports ``priority_cache_read``, ``priority_cache_creation``, ``priority_reasoning`` and
adds ``priority`` (= the tokens that are neither). A tiered key IS the canonical subset
(``priority_cache_read`` is cache read), so every ``<tier>_cache_read`` /
``<tier>_cache_creation`` / ``<tier>_reasoning`` is folded in; the bare ``<tier>`` keys
are not subsets and only tell the tier, see :func:`service_tier_from_usage_metadata`.

Dropped on purpose: ``total_tokens`` (recomputed) and detail keys the canonical model has
no field for (e.g. image/text modality counts some integrations add).

Legacy ``llm_output``: ``token_usage`` (langchain-openai and most OpenAI-compatible
integrations: Chat Completions shape, possibly summed over generations) or ``usage``
(langchain-anthropic: the raw Anthropic usage, whose input excludes cache tokens).
"""

from __future__ import annotations

from typing import Any

from ..usage import Usage
from ._access import get, has_any, is_record
from ._build import Tally, logger, never_raises
from ._detect import langchain_generation_message

__all__ = [
    "KNOWN_TIERS",
    "from_langchain_llm_output",
    "from_langchain_usage_metadata",
    "service_tier_from_usage_metadata",
]

#: Service tiers whose names prefix LangChain's detail keys (``flex_cache_read``...).
KNOWN_TIERS = ("priority", "flex", "batch", "scale")

_MARKERS = ("input_tokens", "output_tokens", "total_tokens")


def _metadata(payload: Any) -> Any:
    """The usage_metadata record of a message, a chunk, a generation or the record itself."""
    if not is_record(payload):
        if payload is not None:
            logger.warning(
                "tokentrail: LangChain usage_metadata is a %s; dropped", type(payload).__name__
            )
        return None
    if has_any(payload, *_MARKERS):
        return payload
    usage = get(payload, "usage_metadata")
    if usage is None:
        # A ChatGeneration, or an LLMResult (n>1 generations repeat one usage: read one).
        message = get(payload, "message") or langchain_generation_message(payload)
        usage = get(message, "usage_metadata") if message is not None else None
    if usage is not None and not is_record(usage):
        logger.warning(
            "tokentrail: LangChain usage_metadata is a %s; dropped", type(usage).__name__
        )
        return None
    return usage


def _detail_items(details: Any) -> list[tuple[str, Any]]:
    if type(details) is dict:
        return [(k, v) for k, v in details.items() if isinstance(k, str)]
    if not is_record(details):
        return []
    try:
        # A mapping, or an object with attributes (e.g. a pydantic model).
        pairs = list(details.items()) if hasattr(details, "items") else list(vars(details).items())
    except Exception:
        return []
    return [(k, v) for k, v in pairs[:200] if isinstance(k, str)]


_FOLDED = ("cache_read", "cache_creation", "reasoning")


def _folded(details: Any, tally: Tally) -> dict[str, int]:
    """Per canonical key (``cache_read``...), the sum of it and every ``<tier>_<key>``."""
    sums = dict.fromkeys(_FOLDED, 0)
    for key, value in _detail_items(details):
        for suffix in _FOLDED:
            if key == suffix or key.endswith("_" + suffix):
                sums[suffix] += tally.count(value, key)
                break
    return sums


_PLAIN_TOP = frozenset((*_MARKERS, "input_token_details", "output_token_details", "total_cost"))
_PLAIN_INPUT = frozenset(
    (
        "cache_read",
        "cache_creation",
        "audio",
        "ephemeral_5m_input_tokens",
        "ephemeral_1h_input_tokens",
    )
)
_PLAIN_OUTPUT = frozenset(("reasoning", "audio"))
_EMPTY: dict[str, Any] = {}
_INT = frozenset((int,))
_SOURCE = "LangChain usage_metadata"


def _standard_details(md: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The input and output details of a plain ``usage_metadata`` dict whose keys are all
    standard ones (no service-tier keys); ``None`` for anything else."""
    if type(md) is not dict or not md.keys() <= _PLAIN_TOP:
        return None
    inp = md.get("input_token_details") or _EMPTY
    out = md.get("output_token_details") or _EMPTY
    if type(inp) is not dict or type(out) is not dict:
        return None
    if not (inp.keys() <= _PLAIN_INPUT and out.keys() <= _PLAIN_OUTPUT):
        return None
    return inp, out


def _usual_counts(md: Any) -> dict[str, int] | None:
    """The counts of the usual ``usage_metadata``, or ``None`` when it is not the usual one.

    The usual one is a plain ``dict`` with the input and output counts set, the standard
    detail keys only (no service-tier keys) and every count an exact ``int``. Range and
    subsets are :meth:`Usage.from_counts`'s to check, as for any other.
    """
    details = _standard_details(md)
    if details is None:
        return None
    inp, out = details
    counts = {
        "input_tokens": md.get("input_tokens"),
        "output_tokens": md.get("output_tokens"),
        "cache_read_tokens": inp.get("cache_read", 0),
        "cache_write_tokens": inp.get("cache_creation", 0),
        "input_audio_tokens": inp.get("audio", 0),
        "reasoning_tokens": out.get("reasoning", 0),
        "output_audio_tokens": out.get("audio", 0),
    }
    if "ephemeral_5m_input_tokens" in inp or "ephemeral_1h_input_tokens" in inp:
        counts["cache_write_5m"] = inp.get("ephemeral_5m_input_tokens", 0)
        counts["cache_write_1h_tokens"] = inp.get("ephemeral_1h_input_tokens", 0)
    # One bulk check (a C loop): None, bools, floats... go the general way, which reads
    # None as 0 and fixes and reports the rest.
    if not _INT.issuperset(map(type, counts.values())):
        return None
    if "cache_write_5m" in counts:
        # langchain-anthropic zeroes cache_creation when it gives the TTL split.
        split = counts.pop("cache_write_5m") + counts["cache_write_1h_tokens"]
        counts["cache_write_tokens"] = max(counts["cache_write_tokens"], split)
    return counts  # type: ignore[return-value]  # every value checked an int above


@never_raises("LangChain usage_metadata")
def from_langchain_usage_metadata(payload: Any) -> Usage | None:
    """Usage of a LangChain ``UsageMetadata`` dict, or of an ``AIMessage``/chunk/generation.

    Example::

        >>> from_langchain_usage_metadata({"input_tokens": 10, "output_tokens": 5,
        ...     "total_tokens": 15, "input_token_details": {"priority_cache_read": 4}})
        Usage(input_tokens=10, output_tokens=5, cache_read_tokens=4, ...)
    """
    usual = _usual_counts(payload)
    if usual is not None:  # the usual dict: its counts are already canonical
        return Usage.from_counts(usual, source=_SOURCE)
    md = _metadata(payload)
    if md is None:
        return None
    tally = Tally(_SOURCE)
    inputs = get(md, "input_token_details")
    outputs = get(md, "output_token_details")
    folded_in = _folded(inputs, tally)
    cache_creation = folded_in["cache_creation"]
    write_5m = tally.count(get(inputs, "ephemeral_5m_input_tokens"), "ephemeral_5m")
    write_1h = tally.count(get(inputs, "ephemeral_1h_input_tokens"), "ephemeral_1h")
    return tally.usage(
        input_tokens=tally.count(get(md, "input_tokens"), "input_tokens"),
        output_tokens=tally.count(get(md, "output_tokens"), "output_tokens"),
        cache_read_tokens=folded_in["cache_read"],
        # langchain-anthropic zeroes cache_creation when it reports the TTL split; other
        # producers may keep both: the larger is the true total either way.
        cache_write_tokens=max(cache_creation, write_5m + write_1h),
        cache_write_1h_tokens=write_1h,
        input_audio_tokens=tally.count(get(inputs, "audio"), "audio"),
        reasoning_tokens=_folded(outputs, tally)["reasoning"],
        output_audio_tokens=tally.count(get(outputs, "audio"), "audio"),
    )


def service_tier_from_usage_metadata(payload: Any) -> str | None:
    """The OpenAI service tier implied by ``usage_metadata`` detail keys, e.g. ``"priority"``.

    ``priority_cache_read``, ``flex_reasoning`` or a bare ``priority``/``flex`` key name
    the tier the call was billed at; ``None`` for the default tier. Never raises.
    """
    if _standard_details(payload) is not None:
        return None  # the usual dict: standard detail keys only, no tier named
    try:
        md = _metadata(payload)
        for details in (get(md, "input_token_details"), get(md, "output_token_details")):
            for key, _ in _detail_items(details):
                tier = key
                for suffix in ("_cache_read", "_cache_creation", "_reasoning"):
                    if key.endswith(suffix):
                        tier = key[: -len(suffix)]
                        break
                if tier in KNOWN_TIERS:
                    return tier
    except Exception:  # pragma: no cover - _metadata and _detail_items do not raise
        return None
    return None


@never_raises("LangChain llm_output")
def from_langchain_llm_output(llm_output: Any, *, model: str | None = None) -> Usage | None:
    """Usage of a legacy ``LLMResult.llm_output`` dict (``token_usage`` or ``usage``).

    ``token_usage`` in the Chat Completions shape goes through the OpenAI-compatible
    rules; ``usage`` in the Anthropic shape (raw ``input_tokens`` excluding cache) through
    the Anthropic rules; an already-canonical ``usage`` through the usage_metadata rules.
    """
    from .anthropic import from_anthropic
    from .compatible import from_openai_compatible

    if not is_record(llm_output):
        if llm_output is not None:
            logger.warning(
                "tokentrail: LangChain llm_output is a %s; dropped", type(llm_output).__name__
            )
        return None
    if model is None:
        name = get(llm_output, "model_name") or get(llm_output, "model")
        model = name if isinstance(name, str) else None
    if get(llm_output, "llm_output") is not None:  # an LLMResult
        llm_output = get(llm_output, "llm_output")
    elif get(llm_output, "response_metadata") is not None:  # a message of older integrations
        llm_output = get(llm_output, "response_metadata")
    token_usage = get(llm_output, "token_usage")
    if token_usage is None:
        token_usage = get(llm_output, "usage")
    if token_usage is None:
        return None
    if has_any(token_usage, "prompt_tokens", "completion_tokens", "prompt_cache_hit_tokens"):
        return from_openai_compatible(token_usage, model=model)
    if has_any(token_usage, "cache_creation_input_tokens", "cache_read_input_tokens"):
        return from_anthropic(token_usage)
    if has_any(token_usage, "input_token_details", "output_token_details", "total_tokens"):
        return from_langchain_usage_metadata(token_usage)
    if has_any(token_usage, "input_tokens", "output_tokens"):
        return from_anthropic(token_usage)  # no cache fields: identical either way
    return from_openai_compatible(token_usage, model=model)
