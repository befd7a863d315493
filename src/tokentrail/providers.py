"""Stable provider ids and how to infer them from what frameworks report.

A provider id is one lowercase word used in the ``usage`` table and the price catalog:
``openai``, ``anthropic``, ``google``, ``bedrock``, ``azure``, ``mistral``, ``xai``,
``deepseek``, ``groq``, ``together``, ``fireworks``, ``cerebras``, ``cohere``,
``openrouter``, ``ollama``, ``llamacpp``, ``vllm``, ``lmstudio``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlparse

__all__ = ["LOCAL_PROVIDERS", "PROVIDERS", "infer_provider", "normalize_provider"]

PROVIDERS: tuple[str, ...] = (
    "openai",
    "anthropic",
    "google",
    "bedrock",
    "azure",
    "mistral",
    "xai",
    "deepseek",
    "groq",
    "together",
    "fireworks",
    "cerebras",
    "cohere",
    "openrouter",
    "perplexity",
    "ollama",
    "llamacpp",
    "vllm",
    "lmstudio",
)

#: Providers that run on the user's own hardware: priced at 0 by rule.
LOCAL_PROVIDERS: frozenset[str] = frozenset({"ollama", "llamacpp", "vllm", "lmstudio"})

# Spellings people and frameworks use -> stable id.
_ALIASES: dict[str, str] = {
    "openai": "openai",
    "openai-chat": "openai",
    "openai_chat": "openai",
    "chatopenai": "openai",
    "anthropic": "anthropic",
    "anthropic-chat": "anthropic",
    "chatanthropic": "anthropic",
    "claude": "anthropic",
    "google": "google",
    "gemini": "google",
    "google-genai": "google",
    "google_genai": "google",
    "googlegenai": "google",
    "google-gla": "google",
    "google-vertex": "google",
    "google_vertexai": "google",
    "google-vertexai": "google",
    "vertex": "google",
    "vertexai": "google",
    "vertex_ai": "google",
    "vertex-ai": "google",
    "bedrock": "bedrock",
    "amazon_bedrock": "bedrock",
    "amazon-bedrock": "bedrock",
    "aws": "bedrock",
    "aws-bedrock": "bedrock",
    "aws_bedrock": "bedrock",
    "bedrock_converse": "bedrock",
    "bedrock-converse": "bedrock",
    "azure": "azure",
    "azure_openai": "azure",
    "azure-openai": "azure",
    "azureopenai": "azure",
    "azure_ai": "azure",
    "mistral": "mistral",
    "mistralai": "mistral",
    "mistral_ai": "mistral",
    "xai": "xai",
    "x-ai": "xai",
    "x_ai": "xai",
    "grok": "xai",
    "deepseek": "deepseek",
    "groq": "groq",
    "together": "together",
    "together_ai": "together",
    "togetherai": "together",
    "together-ai": "together",
    "fireworks": "fireworks",
    "fireworks_ai": "fireworks",
    "fireworks-ai": "fireworks",
    "cerebras": "cerebras",
    "cohere": "cohere",
    "openrouter": "openrouter",
    "perplexity": "perplexity",
    "ollama": "ollama",
    "chatollama": "ollama",
    "llamacpp": "llamacpp",
    "llama.cpp": "llamacpp",
    "llama_cpp": "llamacpp",
    "llama-cpp": "llamacpp",
    "vllm": "vllm",
    "lmstudio": "lmstudio",
    "lm_studio": "lmstudio",
    "lm-studio": "lmstudio",
}

# Host fragments of the providers' API endpoints -> stable id.
_HOSTS: tuple[tuple[str, str], ...] = (
    ("openai.azure.com", "azure"),
    ("azure.com", "azure"),
    ("api.openai.com", "openai"),
    ("anthropic.com", "anthropic"),
    ("generativelanguage.googleapis.com", "google"),
    ("aiplatform.googleapis.com", "google"),
    ("bedrock", "bedrock"),
    ("mistral.ai", "mistral"),
    ("x.ai", "xai"),
    ("deepseek.com", "deepseek"),
    ("groq.com", "groq"),
    ("together.xyz", "together"),
    ("together.ai", "together"),
    ("fireworks.ai", "fireworks"),
    ("cerebras.ai", "cerebras"),
    ("cohere.com", "cohere"),
    ("cohere.ai", "cohere"),
    ("openrouter.ai", "openrouter"),
    ("perplexity.ai", "perplexity"),
)

# Default local ports -> stable id (only consulted for loopback hosts).
_LOCAL_PORTS: dict[int, str] = {11434: "ollama", 1234: "lmstudio", 8080: "llamacpp"}

# Model-name patterns -> stable id, first match wins.
_MODEL_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), provider)
    for p, provider in (
        (r"^(us|eu|apac|global|jp|au)\.(anthropic|amazon|meta|mistral|cohere)\.", "bedrock"),
        (r"^(anthropic|amazon|meta|cohere|ai21|mistral)\..+(-v\d+(:\d+)?)$", "bedrock"),
        (r"^amazon\.(nova|titan)", "bedrock"),
        (
            r"^(gpt-|chatgpt-|o\d(-|$)|text-embedding-|davinci|babbage|codex-|computer-use)",
            "openai",
        ),
        (r"^claude", "anthropic"),
        (r"^(gemini|gemma|learnlm|text-embedding-00|gemini-embedding)", "google"),
        (
            r"^(mistral|mixtral|codestral|ministral|pixtral|magistral|devstral|open-mistral)",
            "mistral",
        ),
        (r"^grok", "xai"),
        (r"^deepseek", "deepseek"),
        (r"^(command|embed-(english|multilingual)|c4ai-aya|aya-)", "cohere"),
        (r"^(sonar|pplx-)", "perplexity"),
    )
)


@lru_cache(maxsize=512)
def normalize_provider(name: str | None) -> str | None:
    """Map a provider spelling (``x-ai``, ``vertex_ai``, ``azure_openai``...) to its stable id.

    Unknown names are returned lowercased so that nothing is lost; ``None`` stays ``None``.
    """
    if name is None:
        return None
    key = str(name).strip().lower()
    if not key:
        return None
    return _ALIASES.get(key, _ALIASES.get(key.replace(" ", ""), key))


def infer_provider(
    *,
    ls_provider: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    class_name: str | None = None,
) -> str | None:
    """The stable provider id for a call, from the best evidence available.

    Order: the base URL (a custom endpoint says more than the client class: ``ChatOpenAI``
    pointed at Groq is Groq), then the framework's own provider name (LangChain's
    ``ls_provider``), then the client class name, then the model name.
    """
    if base_url:
        found = _provider_from_url(base_url)
        if found:
            return found
    if ls_provider:
        found = normalize_provider(ls_provider)
        if found:
            return found
    if class_name:
        found = _provider_from_class(class_name)
        if found:
            return found
    if model:
        return provider_from_model(model)
    return None


@lru_cache(maxsize=1024)
def provider_from_model(model: str) -> str | None:
    """Guess the provider from a model name alone (``claude-…`` → ``anthropic``)."""
    name = model.strip().lower()
    if "/" in name:
        prefix, _, rest = name.partition("/")
        if prefix in _ALIASES:
            return _ALIASES[prefix]
        name = rest
    for pattern, provider in _MODEL_PATTERNS:
        if pattern.search(name):
            return provider
    return None


@lru_cache(maxsize=256)
def _provider_from_url(base_url: str) -> str | None:
    try:
        parsed = urlparse(base_url if "//" in base_url else f"http://{base_url}")
        host = (parsed.hostname or "").lower()
        port = parsed.port
    except ValueError:
        return None
    for fragment, provider in _HOSTS:
        if fragment in host:
            return provider
    if host in {"localhost", "127.0.0.1", "::1", "0.0.0.0"} and port in _LOCAL_PORTS:
        return _LOCAL_PORTS[port]
    return None


def _provider_from_class(class_name: str) -> str | None:
    name = class_name.lower()
    for prefix in ("chat", "llm", ""):
        if name.startswith(prefix):
            found = _ALIASES.get(name[len(prefix) :])
            if found:
                return found
    for key in ("azure", "anthropic", "bedrock", "vertex", "gemini", "mistral", "ollama", "groq"):
        if key in name:
            return normalize_provider(key)
    if "openai" in name:
        return "openai"
    return None
