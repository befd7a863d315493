"""Model-name spellings: the candidate names to look up, most specific first.

Providers and frameworks spell one model many ways: ``openai/gpt-4o``,
``models/gemini-2.5-pro``, ``us.anthropic.claude-sonnet-4-5-20250929-v1:0`` (Bedrock),
``claude-sonnet-4-5@20250929`` (Vertex), ``gpt-5.2-20251211`` (compact date),
``gpt-35-turbo`` (Azure). :func:`name_candidates` turns one spelling into the list of names
to try against the catalog's match rules. The name as given comes first, so a catalog entry
for a dated snapshot (``gpt-4o-2024-05-13``) wins over the undated model.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["name_candidates"]

# Path prefixes that only say who serves the model (LiteLLM, LangChain, Gemini, OpenRouter).
_PREFIXES = frozenset(
    {
        "openai",
        "models",
        "anthropic",
        "google",
        "gemini",
        "vertex_ai",
        "vertex",
        "vertexai",
        "google_vertexai",
        "bedrock",
        "bedrock_converse",
        "converse",
        "azure",
        "azure_ai",
        "azure_openai",
        "xai",
        "x-ai",
        "mistral",
        "mistralai",
        "deepseek",
        "groq",
        "together",
        "together_ai",
        "fireworks",
        "fireworks_ai",
        "cerebras",
        "cohere",
        "cohere_chat",
        "openrouter",
        "perplexity",
        "litellm_proxy",
        "chat",
        "text-completion-openai",
    }
)

_BEDROCK = re.compile(
    r"^(?:(?:us|eu|apac|ap|global|jp|au|ca|us-gov)\.)?"
    r"(?:anthropic|amazon|meta|mistral|cohere|ai21|deepseek|openai|qwen|writer|twelvelabs|moonshot"
    r"|minimax|google|nvidia)\.(?P<name>.+?)(?:-v\d+)?(?::\d+)?$"
)
_BEDROCK_REGION = re.compile(r"^(?:us|eu|apac|ap|global|jp|au|ca|us-gov)\.(?=[a-z0-9]+\.)")
_DASHED_DATE = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_COMPACT_DATE = re.compile(r"-(20\d{2})(\d{2})(\d{2})$")
_SHORT_DATE = re.compile(r"-\d{4}$")  # -0613, -2411: OpenAI and Mistral snapshots


def _strip_prefixes(name: str) -> str:
    # Vertex resource names: projects/p/locations/l/publishers/google/models/gemini-2.5-pro
    if "/models/" in name and name.startswith(("projects/", "publishers/")):
        return name.rsplit("/models/", 1)[1]
    while "/" in name:
        head, _, rest = name.partition("/")
        if head not in _PREFIXES or not rest:
            break
        name = rest
    return name


@lru_cache(maxsize=4096)
def name_candidates(model: str) -> tuple[str, ...]:
    """The names to look up for ``model``, most specific first (all lowercase).

    >>> name_candidates("us.anthropic.claude-sonnet-4-5-20250929-v1:0")[-3:]
    ('claude-sonnet-4-5-20250929', 'claude-sonnet-4-5-2025-09-29', 'claude-sonnet-4-5')
    """
    raw = model.strip().lower()
    out: list[str] = [raw]

    def add(name: str) -> None:
        if name and name not in out:
            out.append(name)

    name = _strip_prefixes(raw)
    add(name)
    if "@" in name:  # Vertex: claude-sonnet-4-5@20250929, gemini-2.0-flash@001
        name = name.split("@", 1)[0]
        add(name)
    region_free = _BEDROCK_REGION.sub("", name)
    add(region_free)
    bedrock = _BEDROCK.match(name)
    if bedrock:
        name = bedrock.group("name")
        add(name)
    if name.startswith("gpt-35"):  # Azure spells gpt-3.5 without the dot
        name = "gpt-3.5" + name[len("gpt-35") :]
        add(name)
    compact = _COMPACT_DATE.search(name)
    if compact:
        add(f"{name[: compact.start()]}-{compact[1]}-{compact[2]}-{compact[3]}")
        name = name[: compact.start()]
        add(name)
    dashed = _DASHED_DATE.search(name)
    if dashed:
        name = name[: dashed.start()]
        add(name)
    if name.endswith("-latest"):
        add(name[: -len("-latest")])
    short = _SHORT_DATE.search(name)
    if short:
        add(name[: short.start()])
    if "/" in name:  # an unknown org prefix, e.g. meta-llama/llama-4-scout
        add(name.rsplit("/", 1)[1])
    return tuple(out)
