"""Recognise a payload's dialect from its shape (field names), without importing any SDK."""

from __future__ import annotations

from typing import Any

from ._access import first, get, has_any, is_record, path

__all__ = ["detect_dialect", "langchain_generation_message"]

_GEMINI = (
    "promptTokenCount",
    "prompt_token_count",
    "candidatesTokenCount",
    "candidates_token_count",
    "totalTokenCount",
    "total_token_count",
    "thoughtsTokenCount",
    "thoughts_token_count",
)
_BEDROCK = ("inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens")
_CHAT = ("prompt_tokens", "completion_tokens", "prompt_cache_hit_tokens")
_ANTHROPIC = (
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cache_creation",
    "server_tool_use",
)
_STREAM_TYPES = frozenset({"message_start", "message_delta"})


def langchain_generation_message(payload: Any) -> Any:
    """The first generation's message of an ``LLMResult`` (n>1 generations share one usage)."""
    generations = get(payload, "generations")
    try:
        first_list = generations[0] if generations else None
        generation = first_list[0] if first_list else None
    except Exception:
        return None
    return get(generation, "message")


def _classify_usage(usage: Any, envelope: Any, model: str | None) -> str | None:
    if has_any(usage, "billed_units") or has_any(get(usage, "tokens"), "input_tokens"):
        return "cohere"
    if has_any(usage, *_CHAT):
        return "openrouter" if has_any(usage, "cost") else "openai_compatible"
    if has_any(usage, *_ANTHROPIC) or path(usage, "output_tokens_details", "thinking_tokens"):
        return "anthropic"
    if has_any(usage, "input_token_details", "output_token_details"):
        # OpenAI Realtime names its details like LangChain but with OpenAI's keys.
        realtime = has_any(get(usage, "input_token_details"), "cached_tokens", "text_tokens")
        return "openai_responses" if realtime else "langchain"
    if has_any(usage, "input_tokens_details", "output_tokens_details"):
        return "openai_responses"
    if has_any(usage, *_BEDROCK):
        return "bedrock"
    if has_any(usage, "input_tokens", "output_tokens"):
        if get(envelope, "type") == "message" or (model or "").lower().startswith("claude"):
            return "anthropic"
        if get(envelope, "object") == "response":
            return "openai_responses"
        # Canonical (LangChain) and cache-free Anthropic shapes read the same.
        return "langchain"
    return None


def _detect_stream(events: list[Any]) -> str | None:
    for event in events:
        if get(event, "type") in _STREAM_TYPES:
            return "anthropic_stream"
        if first(event, "usageMetadata", "usage_metadata") is not None and has_any(
            first(event, "usageMetadata", "usage_metadata"), *_GEMINI
        ):
            return "gemini_stream"
        if has_any(event, "prompt_eval_count", "eval_count"):
            return "ollama_stream"
    return "openai_stream"


def _marked_envelope(payload: Any) -> str | None:
    """Dialects recognised by where the usage sits: Groq's ``x_groq``, Cohere's ``meta``
    (embed, rerank, v1) and the ``message-end`` event of a Cohere v2 stream."""
    if path(payload, "x_groq", "usage") is not None:
        return "openai_compatible"
    if path(payload, "meta", "billed_units") is not None:
        return "cohere"
    if get(payload, "type") == "message-end" and path(payload, "delta", "usage") is not None:
        return "cohere"
    return None


def detect_dialect(payload: Any, *, model: str | None = None) -> str | None:
    """The dialect name of ``payload`` (see ``tokentrail.extract.DIALECTS``), or ``None``.

    Lists of events/chunks are recognised as streams (``anthropic_stream``,
    ``gemini_stream``, ``ollama_stream``, ``openai_stream``); lists are consumed, so pass
    a list rather than a one-shot iterator if it is needed afterwards.
    """
    if isinstance(payload, list | tuple):
        return _detect_stream(list(payload)) if payload else None
    if not is_record(payload):
        return None
    metadata = get(payload, "usage_metadata")
    if metadata is not None:
        return "gemini" if has_any(metadata, *_GEMINI) else "langchain"
    if has_any(payload, "usageMetadata", *_GEMINI):
        return "gemini"
    if langchain_generation_message(payload) is not None:
        return "langchain"
    if has_any(payload, "token_usage"):
        return "langchain_llm_output"
    if has_any(payload, "prompt_eval_count", "eval_count"):
        return "ollama"
    if has_any(payload, *_BEDROCK) or path(payload, "metadata", "usage") is not None:
        return "bedrock"
    marked = _marked_envelope(payload)
    if marked is not None:
        return marked
    if get(payload, "type") == "message_start":
        return "anthropic"
    if path(payload, "response", "usage") is not None:
        return "openai_responses"
    usage = get(payload, "usage")
    if usage is not None:
        return _classify_usage(usage, payload, model)
    found = _classify_usage(payload, None, model)
    if found is not None:
        return found
    # A LangChain message whose usage sits only in response_metadata (older integrations).
    response_metadata = get(payload, "response_metadata")
    if has_any(response_metadata, "token_usage", "usage"):
        return "langchain_llm_output"
    return None
