"""The tricky rules and the malformed inputs of extraction, one behaviour per test."""

from __future__ import annotations

import enum
import logging
import math
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from tokentrail.extract import (
    detect_dialect,
    extract_usage,
    from_anthropic,
    from_anthropic_stream,
    from_bedrock_converse,
    from_gemini,
    from_langchain_usage_metadata,
    from_ollama_stream,
    from_openai_chat,
    from_openai_compatible,
    from_openrouter,
    reported_cost,
    service_tier_of,
)
from tokentrail.usage import Usage


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="tokentrail")
    return caplog


# --- Anthropic ------------------------------------------------------------------------


def test_anthropic_cache_write_without_ttl_split_is_all_5m() -> None:
    usage = from_anthropic(
        {"input_tokens": 5, "cache_creation_input_tokens": 700, "output_tokens": 1}
    )
    assert usage == Usage(input_tokens=705, cache_write_tokens=700, output_tokens=1)
    assert usage.cache_write_5m_tokens == 700


def test_anthropic_ttl_split_alone_still_counts_as_cache_write() -> None:
    usage = from_anthropic(
        {
            "input_tokens": 5,
            "output_tokens": 1,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 400},
        }
    )
    assert usage == Usage(
        input_tokens=405, cache_write_tokens=400, cache_write_1h_tokens=400, output_tokens=1
    )


def test_anthropic_stream_delta_with_cumulative_input_replaces_not_adds() -> None:
    events = [
        {
            "type": "message_start",
            "message": {
                "usage": {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 100}
            },
        },
        {
            "type": "message_delta",
            "usage": {"output_tokens": 30, "input_tokens": 10, "cache_read_input_tokens": 100},
        },
        {"type": "message_delta", "usage": {"output_tokens": 55}},
    ]
    assert from_anthropic_stream(events) == Usage(
        input_tokens=110, cache_read_tokens=100, output_tokens=55
    )


def test_anthropic_stream_without_usage_events_is_none() -> None:
    assert from_anthropic_stream([{"type": "ping"}, {"type": "message_stop"}]) is None


def test_bare_input_output_record_of_a_claude_model_is_cache_exclusive() -> None:
    payload = {"input_tokens": 10, "output_tokens": 2}
    assert detect_dialect(payload, model="claude-opus-4-1") == "anthropic"
    assert detect_dialect(payload) == "langchain"


# --- OpenAI-compatible quirks -----------------------------------------------------------


def test_reasoning_inside_completion_is_not_added_again() -> None:
    usage = from_openai_compatible(
        {
            "prompt_tokens": 10,
            "completion_tokens": 100,
            "total_tokens": 110,
            "completion_tokens_details": {"reasoning_tokens": 80},
        },
        provider="xai",
    )
    assert usage == Usage(input_tokens=10, output_tokens=100, reasoning_tokens=80)


def test_xai_reasoning_without_total_is_added_by_provider_or_model() -> None:
    raw = {
        "prompt_tokens": 10,
        "completion_tokens": 20,
        "completion_tokens_details": {"reasoning_tokens": 80},
    }
    expected = Usage(input_tokens=10, output_tokens=100, reasoning_tokens=80)
    assert from_openai_compatible(raw, provider="x-ai") == expected
    assert from_openai_compatible(raw, model="grok-3-mini") == expected
    assert extract_usage(raw, dialect="xai") == expected
    # Elsewhere a reasoning count above the output is invalid: clamped and flagged.
    clamped = from_openai_compatible(raw, provider="openai")
    assert clamped is not None and clamped.reasoning_tokens == 20 and clamped.issues


def test_perplexity_top_level_reasoning_tokens() -> None:
    usage = from_openai_compatible(
        {
            "prompt_tokens": 30,
            "completion_tokens": 200,
            "total_tokens": 730,
            "reasoning_tokens": 500,
            "citation_tokens": 900,
            "num_search_queries": 3,
        },
        provider="perplexity",
    )
    assert usage == Usage(
        input_tokens=30, output_tokens=700, reasoning_tokens=500, web_search_requests=3
    )


def test_openai_chat_ignores_prediction_token_counts() -> None:
    usage = from_openai_chat(
        {
            "prompt_tokens": 10,
            "completion_tokens": 50,
            "completion_tokens_details": {
                "accepted_prediction_tokens": 20,
                "rejected_prediction_tokens": 5,
            },
        }
    )
    assert usage == Usage(input_tokens=10, output_tokens=50)


# --- Gemini, Bedrock, Ollama ------------------------------------------------------------


class MediaModality(enum.Enum):
    TEXT = "TEXT"
    AUDIO = "AUDIO"


def test_gemini_object_with_enum_modalities() -> None:
    usage_metadata = SimpleNamespace(
        prompt_token_count=100,
        candidates_token_count=20,
        thoughts_token_count=None,
        prompt_tokens_details=[
            SimpleNamespace(modality=MediaModality.TEXT, token_count=60),
            SimpleNamespace(modality=MediaModality.AUDIO, token_count=40),
        ],
    )
    response = SimpleNamespace(usage_metadata=usage_metadata, candidates=[])
    assert from_gemini(response) == Usage(input_tokens=100, input_audio_tokens=40, output_tokens=20)
    assert extract_usage(response) == from_gemini(response)


def test_gemini_live_response_token_count() -> None:
    usage = from_gemini(
        {
            "usageMetadata": {
                "promptTokenCount": 8,
                "responseTokenCount": 30,
                "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 30}],
            }
        }
    )
    assert usage == Usage(input_tokens=8, output_tokens=30, output_audio_tokens=30)


def test_bedrock_cache_details_without_total_write() -> None:
    usage = from_bedrock_converse(
        {
            "usage": {
                "inputTokens": 3,
                "outputTokens": 4,
                "cacheDetails": [
                    {"ttl": "1h", "inputTokens": 100},
                    {"ttl": "5m", "inputTokens": 50},
                ],
            }
        }
    )
    assert usage == Usage(
        input_tokens=153, cache_write_tokens=150, cache_write_1h_tokens=100, output_tokens=4
    )


def test_ollama_stream_counts_are_on_the_done_chunk() -> None:
    chunks = [
        {"message": {"content": "a"}, "done": False},
        {"message": {"content": "b"}, "done": False},
        {"done": True, "prompt_eval_count": 12, "eval_count": 2, "eval_duration": 1},
    ]
    assert from_ollama_stream(chunks) == Usage(input_tokens=12, output_tokens=2)
    assert extract_usage(chunks) == Usage(input_tokens=12, output_tokens=2)


# --- OpenRouter cost and service tiers -----------------------------------------------------


@pytest.mark.parametrize(
    ("cost", "expected"),
    [
        (0.0081, Decimal("0.0081")),
        ("0.25", Decimal("0.25")),
        (0, Decimal(0)),
        (None, None),
        (-1, None),
        (math.nan, None),
        ("free", None),
        (True, None),
    ],
)
def test_openrouter_reported_cost(cost: Any, expected: Decimal | None) -> None:
    assert (
        reported_cost({"usage": {"prompt_tokens": 1, "completion_tokens": 1, "cost": cost}})
        == expected
    )


def test_openrouter_usage_ignores_cost() -> None:
    assert from_openrouter(
        {"usage": {"prompt_tokens": 4, "completion_tokens": 1, "cost": 2}}
    ) == Usage(input_tokens=4, output_tokens=1)


@pytest.mark.parametrize(
    ("payload", "tier"),
    [
        ({"service_tier": "default"}, None),
        ({"service_tier": "flex"}, "flex"),
        ({"usage": {"service_tier": "priority"}}, "priority"),
        ({"usage": {"service_tier": "standard"}}, None),
        ({"response_metadata": {"service_tier": "priority"}}, "priority"),
        (None, None),
        (42, None),
    ],
)
def test_service_tier_of(payload: Any, tier: str | None) -> None:
    assert service_tier_of(payload) == tier


# --- invalid input never raises, warns once -------------------------------------------------


def test_subset_larger_than_parent_is_clamped_flagged_and_warned_once(
    logged: pytest.LogCaptureFixture,
) -> None:
    usage = from_openai_chat(
        {
            "prompt_tokens": 100,
            "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 150},
        }
    )
    assert usage is not None
    assert usage.cache_read_tokens == 100 and usage.input_tokens == 100
    assert any("exceeds" in issue for issue in usage.issues)
    assert len(logged.records) == 1


def test_bad_counts_are_coerced_and_reported_in_one_warning(
    logged: pytest.LogCaptureFixture,
) -> None:
    usage = from_anthropic(
        {
            "input_tokens": "12",
            "output_tokens": -3,
            "cache_read_input_tokens": math.nan,
            "cache_creation_input_tokens": 2.5,
        }
    )
    assert usage == Usage(
        input_tokens=14, cache_write_tokens=2, output_tokens=0, issues=usage.issues
    )
    assert len(usage.issues) == 3
    assert len(logged.records) == 1


def test_digit_strings_are_accepted_silently(logged: pytest.LogCaptureFixture) -> None:
    assert from_openai_chat({"prompt_tokens": "1200", "completion_tokens": "3"}) == Usage(
        input_tokens=1200, output_tokens=3
    )
    assert logged.records == []


@pytest.mark.parametrize("payload", [None, {}, {"id": "x"}, SimpleNamespace(content="hi")])
def test_payload_without_usage_gives_none_quietly(
    payload: Any, logged: pytest.LogCaptureFixture
) -> None:
    assert extract_usage(payload) is None
    assert logged.records == []


@pytest.mark.parametrize("usage", ["12 tokens", 12, ["prompt_tokens", 3], b"\x00"])
def test_usage_of_the_wrong_type_gives_none_and_one_warning(
    usage: Any, logged: pytest.LogCaptureFixture
) -> None:
    assert from_openai_chat({"usage": usage}) is None
    assert len(logged.records) == 1


class Exploding:
    """An object whose every attribute access raises."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(name)


class ExplodingMapping(dict[str, Any]):
    def get(self, key: str, default: Any = None) -> Any:
        raise RuntimeError(key)


@pytest.mark.parametrize(
    "payload",
    [Exploding(), ExplodingMapping(usage=1), {"usage": Exploding()}],
    ids=["object", "mapping", "nested"],
)
def test_hostile_objects_never_raise(payload: Any) -> None:
    for fn in (
        extract_usage,
        from_openai_chat,
        from_anthropic,
        from_gemini,
        from_bedrock_converse,
        from_langchain_usage_metadata,
        from_anthropic_stream,
        reported_cost,
        service_tier_of,
    ):
        fn(payload)


def test_unknown_dialect_warns_and_detects(logged: pytest.LogCaptureFixture) -> None:
    usage = extract_usage({"prompt_eval_count": 3, "eval_count": 4}, dialect="martian")
    assert usage == Usage(input_tokens=3, output_tokens=4)
    assert len(logged.records) == 1


def test_importing_extract_imports_no_sdk_or_framework() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tokentrail.extract\n"
        "heavy = {'openai', 'anthropic', 'langchain_core', 'llama_index', 'google', 'boto3',"
        " 'pydantic', 'genai_prices', 'pandas'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_openai_chat_reader_accepts_a_responses_payload() -> None:
    payload = {"object": "response", "usage": {"input_tokens": 9, "output_tokens": 4,
                                               "output_tokens_details": {"reasoning_tokens": 3}}}  # fmt: skip
    assert from_openai_chat(payload) == Usage(input_tokens=9, output_tokens=4, reasoning_tokens=3)


def test_lazy_top_level_extract_usage() -> None:
    import tokentrail

    assert tokentrail.extract_usage({"prompt_eval_count": 1, "eval_count": 2}) == Usage(
        input_tokens=1, output_tokens=2
    )
