"""Provider and framework payloads -> canonical :class:`~tokentrail.usage.Usage`.

One small pure function per dialect; :func:`extract_usage` picks one from the payload's
shape. Every function accepts SDK objects (pydantic models, protobufs, LangChain
messages) and plain dicts alike, and never raises: a payload without usage gives
``None``, a malformed one ``None`` or a ``Usage`` whose ``issues`` say what was fixed,
with one warning on the ``tokentrail`` logger. Importing this package imports no SDK.

Example::

    >>> from tokentrail.extract import extract_usage
    >>> extract_usage({"usage": {"input_tokens": 100, "cache_read_input_tokens": 900,
    ...                          "output_tokens": 20}, "type": "message"}).input_tokens
    1000
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..usage import Usage
from ._access import get, path
from ._build import logger, never_raises
from ._detect import detect_dialect
from .anthropic import from_anthropic, from_anthropic_stream
from .bedrock import from_bedrock_converse
from .cohere import from_cohere
from .compatible import from_openai_compatible
from .gemini import from_gemini, from_gemini_stream
from .langchain import (
    from_langchain_llm_output,
    from_langchain_usage_metadata,
    service_tier_from_usage_metadata,
)
from .ollama import from_ollama, from_ollama_stream
from .openai import from_openai_chat, from_openai_responses
from .openai_stream import accumulate_openai_stream
from .openrouter import from_openrouter, reported_cost
from .response_info import search_context_variant

__all__ = [
    "DIALECTS",
    "accumulate_openai_stream",
    "detect_dialect",
    "extract_usage",
    "from_anthropic",
    "from_anthropic_stream",
    "from_bedrock_converse",
    "from_cohere",
    "from_gemini",
    "from_gemini_stream",
    "from_langchain_llm_output",
    "from_langchain_usage_metadata",
    "from_ollama",
    "from_ollama_stream",
    "from_openai_chat",
    "from_openai_compatible",
    "from_openai_responses",
    "from_openrouter",
    "reported_cost",
    "service_tier_from_usage_metadata",
    "service_tier_of",
]

_Extractor = Callable[[Any, "str | None"], "Usage | None"]


def _compatible(provider: str) -> _Extractor:
    def extract(payload: Any, model: str | None) -> Usage | None:
        return from_openai_compatible(payload, provider=provider, model=model)

    return extract


#: Dialect name -> extractor(payload, model). Provider ids of the OpenAI-compatible
#: family map to the compatible extractor with that provider's quirks.
DIALECTS: Mapping[str, _Extractor] = {
    "langchain": lambda p, m: from_langchain_usage_metadata(p),
    "langchain_llm_output": lambda p, m: from_langchain_llm_output(p, model=m),
    "openai": lambda p, m: from_openai_chat(p),
    "openai_chat": lambda p, m: from_openai_chat(p),
    "openai_responses": lambda p, m: from_openai_responses(p),
    "openai_stream": lambda p, m: accumulate_openai_stream(p, model=m),
    "openai_compatible": lambda p, m: from_openai_compatible(p, model=m),
    "anthropic": lambda p, m: from_anthropic(p),
    "anthropic_stream": lambda p, m: from_anthropic_stream(p),
    "gemini": lambda p, m: from_gemini(p),
    "google": lambda p, m: from_gemini(p),
    "gemini_stream": lambda p, m: from_gemini_stream(p),
    "bedrock": lambda p, m: from_bedrock_converse(p),
    "bedrock_converse": lambda p, m: from_bedrock_converse(p),
    "cohere": lambda p, m: from_cohere(p),
    "ollama": lambda p, m: from_ollama(p),
    "ollama_stream": lambda p, m: from_ollama_stream(p),
    "openrouter": lambda p, m: from_openrouter(p),
    **{
        provider: _compatible(provider)
        for provider in (
            "azure",
            "groq",
            "together",
            "mistral",
            "deepseek",
            "cerebras",
            "fireworks",
            "vllm",
            "xai",
            "perplexity",
            "lmstudio",
            "llamacpp",
        )
    },
}


@never_raises("payload")
def extract_usage(
    payload: Any, *, dialect: str | None = None, model: str | None = None
) -> Usage | None:
    """Canonical usage of any supported payload; ``None`` when it carries no usage.

    ``dialect`` (a key of :data:`DIALECTS`) skips detection; ``model`` helps in the few
    ambiguous cases (a bare ``input_tokens``/``output_tokens`` record of a ``claude-*``
    model is Anthropic's cache-exclusive count; a ``grok-*`` model reports reasoning
    outside its output). A one-shot iterator of stream chunks is consumed.
    """
    if isinstance(payload, Iterator) and not isinstance(payload, Mapping):
        payload = list(payload)
    if dialect is not None:
        extractor = DIALECTS.get(str(dialect).strip().lower())
        if extractor is not None:
            return extractor(payload, model)
        logger.warning("tokentrail: unknown usage dialect %.40r; detecting it instead", dialect)
    found = detect_dialect(payload, model=model)
    if found is None:
        return None
    return DIALECTS[found](payload, model)


def service_tier_of(payload: Any) -> str | None:
    """The service tier a response was billed at (``"priority"``, ``"flex"``, ``"batch"``...).

    Reads OpenAI's top-level ``service_tier`` (ignoring ``"default"``/``"auto"``),
    Anthropic's ``usage.service_tier`` (ignoring ``"standard"``), LangChain's
    ``response_metadata``/``llm_output`` ``service_tier`` and tiered ``usage_metadata``
    keys; then Perplexity's ``usage.search_context_size`` (``"search_medium"``,
    ``"search_high"``: request-fee variants). ``None`` for the standard tier or when
    unknown. Never raises.
    """
    try:
        candidates = (
            get(payload, "service_tier"),
            path(payload, "usage", "service_tier"),
            path(payload, "response_metadata", "service_tier"),
            path(payload, "llm_output", "service_tier"),
        )
        for value in candidates:
            if isinstance(value, str) and value.strip().lower() not in _STANDARD_TIERS:
                return value.strip().lower()
        found = service_tier_from_usage_metadata(payload)
        return found or search_context_variant(get(payload, "usage"))
    except Exception:  # pragma: no cover - the readers above do not raise
        return None


_STANDARD_TIERS = frozenset({"", "default", "auto", "standard", "standard_only", "on_demand"})
