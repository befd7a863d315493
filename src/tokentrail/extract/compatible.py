"""The OpenAI-compatible family: Groq, Together, Mistral, DeepSeek, Cerebras, vLLM, xAI...

They answer in the Chat Completions shape (see :mod:`.openai`) with a few departures,
each handled only on evidence in the payload:

* DeepSeek reports its prompt cache as top-level ``prompt_cache_hit_tokens`` /
  ``prompt_cache_miss_tokens``: hit -> ``cache_read_tokens``; when ``prompt_tokens`` is
  missing, input = hit + miss.
* Counts some servers put at the top of ``usage`` instead of in the ``*_details``
  records: ``cached_tokens`` (Together), ``cache_read_input_tokens`` (Databricks),
  ``cached_prompt_text_tokens`` (xAI native), ``reasoning_tokens`` (Perplexity,
  Databricks). Used only when the nested value is absent.
* xAI (and Perplexity) report reasoning tokens *outside* ``completion_tokens``. When
  ``total_tokens == prompt + completion + reasoning``, or the reasoning exceeds the
  completion, the reasoning tokens are added to the output; without a total, they are
  added for providers known to do this (``xai``, ``perplexity``, from ``provider`` or the
  model name). Perplexity bills reasoning as its own step, left out of ``total_tokens``
  too: for Perplexity it is always added (priced at the catalog's ``reasoning`` rate).
* Perplexity sonar-deep-research bills ``citation_tokens`` as input tokens (same rate):
  they are added to the input for that model.
* Perplexity's ``num_search_queries`` -> ``web_search_requests`` (billed per search at the
  catalog's ``web_search`` price: sonar-deep-research $5 per 1K).
* Groq streams put the final usage under ``x_groq.usage``.

Dropped on purpose: ``total_tokens`` (recomputed), Groq/Mistral timings and
``prompt_audio_seconds``, Perplexity ``citation_tokens`` of other models (not billed).
"""

from __future__ import annotations

from typing import Any

from ..providers import normalize_provider, provider_from_model
from ..usage import Usage
from ._access import first, get, path
from ._build import Tally, never_raises
from .openai import openai_chat_counts, usage_object

__all__ = ["REASONING_OUTSIDE_OUTPUT", "from_openai_compatible"]

#: Providers whose ``completion_tokens`` exclude ``reasoning_tokens``.
REASONING_OUTSIDE_OUTPUT = frozenset({"xai", "perplexity"})

_MARKERS = ("prompt_tokens", "completion_tokens", "prompt_cache_hit_tokens")


@never_raises("OpenAI-compatible")
def from_openai_compatible(
    payload: Any, *, provider: str | None = None, model: str | None = None
) -> Usage | None:
    """Usage of a Chat Completions response from an OpenAI-compatible server.

    ``provider`` (a provider id or spelling) and ``model`` only decide the xAI/Perplexity
    reasoning rule when ``total_tokens`` is missing; everything else is read from the
    payload's own fields.
    """
    usage = usage_object(payload, _MARKERS, "OpenAI-compatible")
    if usage is None:
        usage = path(payload, "x_groq", "usage")
        if usage is None:
            return None
    if model is None:
        model_value = get(payload, "model")
        model = model_value if isinstance(model_value, str) else None
    tally = Tally("OpenAI-compatible")
    counts = openai_chat_counts(usage, tally)
    _apply_deepseek_cache(usage, counts, tally)
    _apply_top_level_fallbacks(usage, counts, tally)
    _apply_reasoning_outside_output(usage, counts, tally, provider, model)
    searches = get(usage, "num_search_queries")
    if searches is not None:
        counts["web_search_requests"] = tally.count(searches, "num_search_queries")
    return tally.usage(**counts)


def _apply_deepseek_cache(usage: Any, counts: dict[str, int], tally: Tally) -> None:
    hit = tally.maybe(get(usage, "prompt_cache_hit_tokens"), "prompt_cache_hit_tokens")
    miss = tally.maybe(get(usage, "prompt_cache_miss_tokens"), "prompt_cache_miss_tokens")
    if hit is None and miss is None:
        return
    counts["cache_read_tokens"] = max(counts["cache_read_tokens"], hit or 0)
    if get(usage, "prompt_tokens") is None:
        counts["input_tokens"] = (hit or 0) + (miss or 0)


def _apply_top_level_fallbacks(usage: Any, counts: dict[str, int], tally: Tally) -> None:
    if path(usage, "prompt_tokens_details", "cached_tokens") is None:
        cached = first(
            usage, "cached_tokens", "cache_read_input_tokens", "cached_prompt_text_tokens"
        )
        if cached is not None:
            counts["cache_read_tokens"] = max(
                counts["cache_read_tokens"], tally.count(cached, "cached_tokens")
            )
    if path(usage, "completion_tokens_details", "reasoning_tokens") is None:
        reasoning = get(usage, "reasoning_tokens")
        if reasoning is not None:
            counts["reasoning_tokens"] = tally.count(reasoning, "reasoning_tokens")


def _apply_reasoning_outside_output(
    usage: Any,
    counts: dict[str, int],
    tally: Tally,
    provider: str | None,
    model: str | None,
) -> None:
    reasoning = counts["reasoning_tokens"]
    if reasoning <= 0:
        return
    prompt, completion = counts["input_tokens"], counts["output_tokens"]
    known = normalize_provider(provider) if provider else None
    if known is None and model:
        known = provider_from_model(model)
    if known == "perplexity":
        # Billed as its own step, outside the completion and the total (docs.perplexity.ai
        # pricing: sonar-deep-research reasoning $3/1M); citation tokens are input.
        counts["output_tokens"] = completion + reasoning
        if model and "deep-research" in model:
            counts["input_tokens"] = prompt + tally.count(
                get(usage, "citation_tokens"), "citation_tokens"
            )
        return
    total = get(usage, "total_tokens")
    if total is not None:
        reported = tally.count(total, "total_tokens")
        added_up = reported == prompt + completion + reasoning and reported != prompt + completion
        # More reasoning than completion cannot be a part of it, whatever the total says
        # (unless the provider is known to count it inside: then the payload is clamped).
        beyond = reasoning > completion and known in (None, *REASONING_OUTSIDE_OUTPUT)
        if added_up or beyond:
            counts["output_tokens"] = completion + reasoning
        return
    if known in REASONING_OUTSIDE_OUTPUT:
        counts["output_tokens"] = completion + reasoning
