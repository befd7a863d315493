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
    "openai-codex": "openai",
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
    "google-ai-studio": "google",
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

# API host domains -> stable id. A host matches a domain when it IS the domain or ends with
# "." + domain (so "box.ai" is not "x.ai"). Bedrock hosts are matched separately.
_HOSTS: tuple[tuple[str, str], ...] = (
    ("azure.com", "azure"),
    ("azure-api.net", "azure"),
    ("openai.com", "openai"),
    ("anthropic.com", "anthropic"),
    ("googleapis.com", "google"),
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

_BEDROCK_HOST = re.compile(r"(^|\.)bedrock[a-z0-9-]*\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")

# Default local ports -> stable id (only consulted for loopback hosts).
_LOCAL_PORTS: dict[int, str] = {11434: "ollama", 1234: "lmstudio", 8080: "llamacpp"}
# Ports specific enough to name the server on any host (e.g. "http://ollama:11434").
_ANY_HOST_PORTS: dict[int, str] = {11434: "ollama"}

# Model-name patterns -> stable id, first match wins.
_MODEL_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), provider)
    for p, provider in (
        (
            r"^(us|eu|apac|global|jp|au|ca|us-gov)\."
            r"(anthropic|amazon|meta|mistral|cohere|deepseek|writer|twelvelabs)\.",
            "bedrock",
        ),
        (
            r"^(anthropic|amazon|meta|cohere|ai21|mistral|deepseek|openai|qwen|writer|stability|"
            r"twelvelabs|moonshot|minimax)\.[a-z0-9].*(-v\d+(:\d+)?|:\d+)$",
            "bedrock",
        ),
        (r"^amazon\.(nova|titan)", "bedrock"),
        (
            r"^(gpt-|chatgpt-|o\d(-|$)|text-embedding-(3|ada)|davinci|babbage|codex-|computer-use|"
            r"omni-moderation|whisper|tts-|dall-e|sora)",
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


def normalize_provider(name: str | None) -> str | None:
    """Map a provider spelling (``x-ai``, ``vertex_ai``, ``azure_openai``...) to its stable id.

    Unknown names are returned lowercased so that nothing is lost; ``None`` (or an empty
    name, or anything that is not a string) gives ``None``. Never raises.
    """
    if not isinstance(name, str):
        return None
    return _normalize(name)


@lru_cache(maxsize=512)
def _normalize(name: str) -> str | None:
    key = name.strip().lower()
    if not key:
        return None
    for candidate in (key, key.replace(" ", ""), key.replace("-", "_"), key.replace("_", "-")):
        found = _ALIASES.get(candidate)
        if found:
            return found
    return key


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


def provider_from_model(model: str) -> str | None:
    """Guess the provider from a model name alone (``claude-…`` → ``anthropic``).

    Understands provider prefixes (``openai/gpt-4o``, ``models/gemini-2.5-pro``,
    ``accounts/fireworks/models/…``), fine-tune ids (``ft:gpt-4o-mini:org::id``) and
    Bedrock model ids (``us.anthropic.claude-…-v1:0``). ``None`` when unknown; never raises.
    """
    if not isinstance(model, str):
        return None
    return _provider_from_model(model)


@lru_cache(maxsize=1024)
def _provider_from_model(model: str) -> str | None:
    name = model.strip().lower()
    if name.startswith("accounts/fireworks/"):
        return "fireworks"
    if name.startswith("ft:"):
        name = name[3:]
    if "/" in name:
        prefix, _, rest = name.partition("/")
        if prefix in _ALIASES:
            return _ALIASES[prefix]
        name = rest
    for pattern, provider in _MODEL_PATTERNS:
        if pattern.search(name):
            return provider
    return None


def _provider_from_url(base_url: object) -> str | None:
    if not isinstance(base_url, str):
        return None
    return _provider_from_url_text(base_url.strip())


@lru_cache(maxsize=256)
def _provider_from_url_text(base_url: str) -> str | None:
    try:
        parsed = urlparse(base_url if "//" in base_url else f"http://{base_url}")
        host = (parsed.hostname or "").lower().rstrip(".")
        port = parsed.port
    except ValueError:
        return None
    if _BEDROCK_HOST.search(host):
        return "bedrock"
    for domain, provider in _HOSTS:
        if host == domain or host.endswith("." + domain):
            return provider
    if port in _ANY_HOST_PORTS:
        return _ANY_HOST_PORTS[port]
    if host in {"localhost", "127.0.0.1", "::1", "0.0.0.0"} and port in _LOCAL_PORTS:
        return _LOCAL_PORTS[port]
    return None


# Words in client class names (ChatBedrockConverse, GoogleGenAI, AzureChatOpenAI...), most
# specific first: "AzureChatOpenAI" is Azure, "ChatAnthropicVertex" is Anthropic's model.
_CLASS_WORDS: tuple[tuple[str, str], ...] = (
    ("azure", "azure"),
    ("bedrock", "bedrock"),
    ("anthropic", "anthropic"),
    ("vertex", "google"),
    ("gemini", "google"),
    ("google", "google"),
    ("mistral", "mistral"),
    ("ollama", "ollama"),
    ("groq", "groq"),
    ("deepseek", "deepseek"),
    ("together", "together"),
    ("fireworks", "fireworks"),
    ("cerebras", "cerebras"),
    ("cohere", "cohere"),
    ("openrouter", "openrouter"),
    ("perplexity", "perplexity"),
    ("lmstudio", "lmstudio"),
    ("llamacpp", "llamacpp"),
    ("vllm", "vllm"),
    ("openai", "openai"),
)


def _provider_from_class(class_name: object) -> str | None:
    if not isinstance(class_name, str):
        return None
    name = class_name.strip().lower()
    for prefix in ("chat", "llm", ""):
        if name.startswith(prefix):
            found = _ALIASES.get(name[len(prefix) :])
            if found:
                return found
    for word, provider in _CLASS_WORDS:
        if word in name:
            return provider
    return None
