"""Property tests: every extractor survives arbitrary and malformed payloads.

Payloads are built from the field names the extractors look for, filled with anything:
wrong types, missing keys, negative, huge, NaN, nested garbage, objects instead of dicts,
and structures that contain themselves. Whatever comes in, an extractor returns ``None``
or a ``Usage`` whose subsets never exceed their parents; it never raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokentrail import extract
from tokentrail.extract import DIALECTS, reported_cost, service_tier_of
from tokentrail.usage import MAX_TOKENS, Usage

FIELDS = [
    # envelopes
    "usage", "usage_metadata", "usageMetadata", "message", "response", "metadata", "x_groq",
    "llm_output", "token_usage", "response_metadata", "generations", "type", "object", "model",
    "service_tier", "cost",
    # OpenAI family
    "prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details",
    "completion_tokens_details", "cached_tokens", "cache_write_tokens", "audio_tokens",
    "reasoning_tokens", "prompt_cache_hit_tokens", "prompt_cache_miss_tokens",
    "input_tokens_details", "output_tokens_details",
    # Anthropic / LangChain
    "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
    "cache_creation", "ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens", "thinking_tokens",
    "input_token_details", "output_token_details", "cache_read", "priority_cache_read",
    "flex_reasoning", "reasoning", "audio", "priority",
    # Gemini
    "promptTokenCount", "prompt_token_count", "candidatesTokenCount", "thoughtsTokenCount",
    "thoughts_token_count", "cachedContentTokenCount", "toolUsePromptTokenCount",
    "promptTokensDetails", "candidatesTokensDetails", "modality", "tokenCount",
    # Bedrock / Ollama
    "inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens",
    "cacheDetails", "ttl", "prompt_eval_count", "eval_count",
]  # fmt: skip

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["12", "-3", "1e3", "nan", "AUDIO", "1h", "message_start", "message_delta"]),
    st.builds(Decimal, st.sampled_from(["1.5", "NaN", "-2", "Infinity", "7"])),
)


def _objectify(value: Any, as_object: bool) -> Any:
    # SDK payloads are objects with attributes, not dicts: try both.
    if as_object and isinstance(value, dict) and all(k.isidentifier() for k in value):
        return SimpleNamespace(**value)
    return value


PAYLOADS = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.builds(
            _objectify,
            st.dictionaries(st.sampled_from(FIELDS), children, max_size=6),
            st.booleans(),
        ),
    ),
    max_leaves=25,
)

EXTRACTORS: list[Callable[[Any], Any]] = [
    getattr(extract, name) for name in extract.__all__ if name.startswith(("from_", "accumulate_"))
] + [extract.extract_usage, reported_cost, service_tier_of]

COMMON = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(result: Any) -> None:
    if result is None or isinstance(result, (str, Decimal)):
        return
    assert isinstance(result, Usage)
    counts = [result.input_tokens, result.output_tokens, result.cache_read_tokens,
              result.cache_write_tokens, result.cache_write_1h_tokens, result.input_audio_tokens,
              result.reasoning_tokens, result.output_audio_tokens]  # fmt: skip
    assert all(isinstance(n, int) and 0 <= n <= MAX_TOKENS for n in counts)
    assert result.cache_read_tokens + result.cache_write_tokens <= result.input_tokens
    assert result.cache_write_1h_tokens <= result.cache_write_tokens
    assert result.input_audio_tokens <= result.input_tokens
    assert result.reasoning_tokens + result.output_audio_tokens <= result.output_tokens
    assert result.uncached_input_tokens >= 0 and result.cache_write_5m_tokens >= 0


@COMMON
@given(payload=PAYLOADS)
def test_every_extractor_survives_any_payload(payload: Any) -> None:
    for fn in EXTRACTORS:
        check(fn(payload))


@COMMON
@given(
    payload=PAYLOADS,
    dialect=st.sampled_from(sorted(DIALECTS)),
    model=st.none() | st.text(max_size=12),
)
def test_every_dialect_survives_any_payload(payload: Any, dialect: str, model: str | None) -> None:
    check(extract.extract_usage(payload, dialect=dialect, model=model))


@COMMON
@given(events=st.lists(PAYLOADS, max_size=6))
def test_stream_accumulators_survive_any_event_list(events: list[Any]) -> None:
    for fn in (extract.from_anthropic_stream, extract.accumulate_openai_stream,
               extract.from_gemini_stream, extract.from_ollama_stream, extract.extract_usage):  # fmt: skip
        check(fn(events))
        check(fn(iter(events)))


COUNT = st.one_of(
    st.integers(min_value=-5, max_value=10**7),
    st.floats(allow_nan=True),
    st.none(),
    st.sampled_from(["100", "x", -1]),
)


@COMMON
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            name: COUNT
            for name in (
                "input_tokens",
                "output_tokens",
                "cache_read_input_tokens",
                "cache_creation_input_tokens",
                "prompt_tokens",
                "completion_tokens",
                "promptTokenCount",
                "candidatesTokenCount",
                "thoughtsTokenCount",
                "cachedContentTokenCount",
                "inputTokens",
                "outputTokens",
                "cacheReadInputTokens",
                "cacheWriteInputTokens",
                "prompt_eval_count",
                "eval_count",
            )
        },
    ),
    details=st.dictionaries(
        st.sampled_from(
            ["cached_tokens", "audio_tokens", "reasoning_tokens", "cache_write_tokens"]
        ),
        COUNT,
        max_size=3,
    ),
)
def test_count_shaped_payloads_keep_subsets_within_parents(
    fields: dict[str, Any], details: dict[str, Any]
) -> None:
    payload = dict(fields, prompt_tokens_details=details, completion_tokens_details=details)
    for fn in EXTRACTORS:
        check(fn(payload))
        check(fn({"usage": payload, "usageMetadata": payload}))


def test_self_containing_structures_do_not_raise() -> None:
    loop: dict[str, Any] = {"input_tokens": 5, "output_tokens": 1}
    loop["usage"] = loop
    loop["usage_metadata"] = loop
    loop["input_token_details"] = loop
    loop["cache_creation"] = loop
    loop["promptTokensDetails"] = [loop]
    cycle: list[Any] = []
    cycle.append(cycle)
    loop["cacheDetails"] = cycle
    for payload in (loop, cycle, [loop, loop], SimpleNamespace(usage=loop)):
        for fn in EXTRACTORS:
            check(fn(payload))


def test_nan_and_infinite_counts_become_zero_with_issues() -> None:
    usage = extract.from_openai_chat({"prompt_tokens": math.nan, "completion_tokens": math.inf})
    assert usage is not None and usage.total_tokens == 0 and len(usage.issues) == 2
