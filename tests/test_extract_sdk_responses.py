"""Readers of provider SDK response objects (``tokentrail.extract.response``).

Each response is the SDK's real class built from the payload the vendor documents (the
OpenAI and Anthropic API references), the way the SDK builds it from the wire; expected
values are worked out by hand from the canonical meaning (cached, audio ⊂ input; reasoning,
audio ⊂ output; Anthropic's raw input excludes its cache reads and writes).
"""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import Message, RawMessageDeltaEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.completion import Completion
from openai.types.create_embedding_response import CreateEmbeddingResponse

from tests.sdk_payloads import anthropic_message, chat_completion
from tests.wire import Reply, WireServer
from tokentrail.extract.anthropic_sdk import from_anthropic_usage, read_anthropic_response
from tokentrail.extract.openai_sdk import from_openai_usage, read_openai_response
from tokentrail.extract.response import read_response
from tokentrail.extract.response_info import NOTHING, ResponseInfo, price_variant
from tokentrail.usage import MAX_TOKENS, Usage

REFERENCE_USAGE = {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}


# ---------------------------------------------------------------------- openai
def test_chat_completion_of_the_api_reference() -> None:
    raw = ChatCompletion.model_validate(chat_completion(REFERENCE_USAGE))
    assert read_openai_response(raw) == ResponseInfo(
        model="gpt-4.1-2025-04-14",
        request_id="chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        price_variant=None,  # "default" is the standard rate
        usage=Usage(input_tokens=19, output_tokens=10),
    )


def test_cached_and_reasoning_tokens_are_parts_of_input_and_output() -> None:
    usage = {
        "prompt_tokens": 2006,
        "completion_tokens": 1450,
        "total_tokens": 3456,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 6},
        "completion_tokens_details": {"reasoning_tokens": 1024, "audio_tokens": 12},
    }
    raw = ChatCompletion.model_validate(chat_completion(usage, model="o3-mini-2025-01-31"))
    info = read_openai_response(raw)
    assert info is not None and info.usage is not None
    assert info.usage == Usage(
        input_tokens=2006,
        cache_read_tokens=1920,
        input_audio_tokens=6,
        output_tokens=1450,
        reasoning_tokens=1024,
        output_audio_tokens=12,
    )
    assert info.usage.total_tokens == 3456
    assert info.usage.uncached_input_tokens == 86


def test_cache_writes_of_a_compatible_server_are_read_from_the_details() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 3,
        "total_tokens": 103,
        "prompt_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 20},
    }
    found = read_openai_response(ChatCompletion.model_validate(chat_completion(usage)))
    assert found is not None and found.usage == Usage(
        input_tokens=100, cache_read_tokens=10, cache_write_tokens=20, output_tokens=3
    )


@pytest.mark.parametrize(
    ("tier", "variant"),
    [("flex", "flex"), ("priority", "priority"), ("default", None), ("auto", None), (None, None)],
)
def test_the_service_tier_billed_is_the_price_variant(
    tier: str | None, variant: str | None
) -> None:
    raw = ChatCompletion.model_validate(chat_completion(REFERENCE_USAGE, service_tier=tier))
    found = read_openai_response(raw)
    assert found is not None and found.price_variant == variant


@pytest.mark.parametrize(
    ("size", "variant"), [("high", "search_high"), ("medium", "search_medium"), ("low", None)]
)
def test_perplexity_search_context_size_in_the_usage_is_the_price_variant(
    size: str, variant: str | None
) -> None:
    """Perplexity through the ``openai`` SDK: the size is an extra key of the SDK's usage."""
    usage = {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200}
    raw = ChatCompletion.model_validate(
        chat_completion({**usage, "search_context_size": size}, model="sonar")
    )
    found = read_openai_response(raw, provider="perplexity")
    assert found is not None and found.price_variant == variant


def test_a_service_tier_in_the_usage_block_is_the_price_variant() -> None:
    """Some compatible servers report the tier inside ``usage`` (an extra key there)."""
    raw = ChatCompletion.model_validate(
        chat_completion({**REFERENCE_USAGE, "service_tier": "flex"}, service_tier=None)
    )
    found = read_openai_response(raw)
    assert found is not None and found.price_variant == "flex"


def test_the_response_tier_wins_over_the_usage_block() -> None:
    raw = ChatCompletion.model_validate(
        chat_completion({**REFERENCE_USAGE, "service_tier": "flex"}, service_tier="priority")
    )
    found = read_openai_response(raw)
    assert found is not None and found.price_variant == "priority"


def test_the_last_chunk_of_a_stream_with_include_usage() -> None:
    chunk = ChatCompletionChunk.model_validate(
        {
            "id": "chatcmpl-123",
            "object": "chat.completion.chunk",
            "created": 1694268190,
            "model": "gpt-4o-mini-2024-07-18",
            "system_fingerprint": "fp_44709d6fcb",
            "choices": [],
            "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
        }
    )
    assert read_openai_response(chunk) == ResponseInfo(
        "gpt-4o-mini-2024-07-18", "chatcmpl-123", None, Usage(input_tokens=9, output_tokens=12)
    )


def test_a_chunk_before_the_last_reports_no_usage() -> None:
    chunk = ChatCompletionChunk.model_validate(
        {
            "id": "chatcmpl-123",
            "object": "chat.completion.chunk",
            "created": 1694268190,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}],
            "usage": None,
        }
    )
    found = read_openai_response(chunk)
    assert found is not None and found.usage is None and found.request_id == "chatcmpl-123"


def test_a_legacy_completion_of_the_api_reference() -> None:
    raw = Completion.model_validate(
        {
            "id": "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7",
            "object": "text_completion",
            "created": 1589478378,
            "model": "gpt-3.5-turbo-instruct",
            "system_fingerprint": "fp_44709d6fcb",
            "choices": [
                {
                    "text": "\n\nThis is indeed a test",
                    "index": 0,
                    "logprobs": None,
                    "finish_reason": "length",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
        }
    )
    assert read_openai_response(raw) == ResponseInfo(
        "gpt-3.5-turbo-instruct",
        "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7",
        None,
        Usage(input_tokens=5, output_tokens=7),
    )


def test_an_embeddings_response_of_the_api_reference() -> None:
    raw = CreateEmbeddingResponse.model_validate(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "embedding": [0.0023064255, -0.009327292], "index": 0}
            ],
            "model": "text-embedding-ada-002",
            "usage": {"prompt_tokens": 8, "total_tokens": 8},
        }
    )
    assert read_openai_response(raw) == ResponseInfo(
        "text-embedding-ada-002", None, None, Usage(input_tokens=8)
    )


def test_deepseek_cache_hits_through_the_openai_sdk() -> None:
    # DeepSeek's documented usage: its cache counts are extra keys of the SDK's usage.
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 50,
        "total_tokens": 1050,
        "prompt_cache_hit_tokens": 800,
        "prompt_cache_miss_tokens": 200,
    }
    raw = ChatCompletion.model_validate(chat_completion(usage, model="deepseek-chat"))
    found = read_openai_response(raw, provider="deepseek")
    assert found is not None
    assert found.usage == Usage(input_tokens=1000, cache_read_tokens=800, output_tokens=50)


def test_xai_reasoning_outside_the_completion_is_added_to_the_output() -> None:
    # total = prompt + completion + reasoning: the reasoning was not in completion_tokens.
    usage = {
        "prompt_tokens": 37,
        "completion_tokens": 530,
        "total_tokens": 1391,
        "completion_tokens_details": {"reasoning_tokens": 824},
    }
    raw = ChatCompletion.model_validate(chat_completion(usage, model="grok-3-mini"))
    found = read_openai_response(raw, provider="xai")
    assert found is not None
    assert found.usage == Usage(input_tokens=37, output_tokens=1354, reasoning_tokens=824)


def test_more_cached_than_prompt_tokens_is_clamped_and_flagged() -> None:
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 3,
        "total_tokens": 13,
        "prompt_tokens_details": {"cached_tokens": 40},
    }
    found = read_openai_response(ChatCompletion.model_validate(chat_completion(usage)))
    assert found is not None and found.usage is not None
    assert (found.usage.input_tokens, found.usage.cache_read_tokens) == (10, 10)
    assert found.usage.issues


@pytest.mark.parametrize(
    ("prompt", "expected", "flagged"),
    [
        (-1, 0, True),
        (True, 0, True),
        (2**60, MAX_TOKENS, True),
        (12.5, 12, True),
        # Accepted as they are (digits, an integral float) without a problem to report.
        ("12", 12, False),
        (12.0, 12, False),
    ],
)
def test_counts_the_sdk_did_not_validate_are_coerced(
    prompt: Any, expected: int, flagged: bool
) -> None:
    # The SDK builds responses with construct(), which does not validate the counts.
    raw = ChatCompletion.construct(**chat_completion({"prompt_tokens": 1, "completion_tokens": 3}))
    assert raw.usage is not None
    raw.usage.__dict__["prompt_tokens"] = prompt
    found = read_openai_response(raw)
    assert found is not None and found.usage is not None
    assert (found.usage.input_tokens, found.usage.output_tokens) == (expected, 3)
    assert bool(found.usage.issues) is flagged


def test_a_response_built_without_some_fields_reads_what_it_has() -> None:
    raw = ChatCompletion.construct(id="chatcmpl-1", usage=None)
    assert read_openai_response(raw) == ResponseInfo(None, "chatcmpl-1", None, None)


def test_other_objects_are_not_openai_responses() -> None:
    as_json = chat_completion(REFERENCE_USAGE)
    assert read_openai_response(as_json) is None
    assert read_openai_response(None) is None
    assert read_openai_response(Message.model_validate(anthropic_message())) is None


_count = st.integers(min_value=0, max_value=5_000)


@settings(max_examples=200, deadline=None)
@given(
    prompt=_count,
    completion=_count,
    cached=_count,
    written=_count,
    audio_in=_count,
    reasoning=_count,
    audio_out=_count,
)
def test_sdk_usage_follows_the_subset_rule(
    prompt: int,
    completion: int,
    cached: int,
    written: int,
    audio_in: int,
    reasoning: int,
    audio_out: int,
) -> None:
    """Counts that fit are kept as reported; parts larger than their whole are clamped."""
    usage = ChatCompletion.model_validate(
        chat_completion(
            {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {
                    "cached_tokens": cached,
                    "cache_write_tokens": written,
                    "audio_tokens": audio_in,
                },
                "completion_tokens_details": {
                    "reasoning_tokens": reasoning,
                    "audio_tokens": audio_out,
                },
            }
        )
    ).usage
    got = from_openai_usage(usage, provider="openai")
    assert got is not None
    assert (got.input_tokens, got.output_tokens) == (prompt, completion)
    # The input's parts are disjoint (audio is the uncached audio): one rule for all three.
    fits = cached + written + audio_in <= prompt and reasoning + audio_out <= completion
    if fits:
        assert got == Usage(
            input_tokens=prompt,
            output_tokens=completion,
            cache_read_tokens=cached,
            cache_write_tokens=written,
            input_audio_tokens=audio_in,
            reasoning_tokens=reasoning,
            output_audio_tokens=audio_out,
        )
    else:
        assert got.issues
    assert (
        got.cache_read_tokens + got.cache_write_tokens + got.input_audio_tokens <= got.input_tokens
    )
    assert got.reasoning_tokens + got.output_audio_tokens <= got.output_tokens


# ---------------------------------------------------------------------- anthropic
def test_anthropic_message_of_the_api_reference() -> None:
    message = Message.model_validate(anthropic_message())
    expected = ResponseInfo(
        "claude-sonnet-4-5-20250929",
        "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        None,
        Usage(input_tokens=2095, output_tokens=503),
    )
    assert read_anthropic_response(message) == expected
    # llama-index-llms-anthropic hands over dict(message): the same facts.
    assert read_anthropic_response(dict(message)) == expected


def test_anthropic_input_adds_the_cache_reads_and_writes() -> None:
    message = Message.model_validate(
        anthropic_message(
            input_tokens=21,
            cache_creation_input_tokens=1_000,
            cache_read_input_tokens=8_000,
            cache_creation={"ephemeral_5m_input_tokens": 600, "ephemeral_1h_input_tokens": 400},
            output_tokens=393,
            service_tier="priority",
        )
    )
    info = read_anthropic_response(dict(message))
    assert info is not None
    assert info.usage == Usage(
        input_tokens=9_021,
        cache_read_tokens=8_000,
        cache_write_tokens=1_000,
        cache_write_1h_tokens=400,
        output_tokens=393,
    )
    assert info.price_variant == "priority"


def test_anthropic_ttl_split_larger_than_the_writes_wins() -> None:
    usage = Message.model_validate(
        anthropic_message(
            input_tokens=10,
            cache_creation_input_tokens=100,
            cache_creation={"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 50},
            output_tokens=1,
        )
    ).usage
    got = from_anthropic_usage(usage)
    assert got is not None
    assert (got.input_tokens, got.cache_write_tokens, got.cache_write_1h_tokens) == (160, 150, 50)


def test_anthropic_message_delta_of_a_stream() -> None:
    event = RawMessageDeltaEvent.model_validate(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {
                "input_tokens": 1_000,
                "cache_read_input_tokens": 2_000,
                "cache_creation_input_tokens": 0,
                "output_tokens": 15,
            },
        }
    )
    expected = ResponseInfo(
        None, None, None, Usage(input_tokens=3_000, cache_read_tokens=2_000, output_tokens=15)
    )
    assert read_anthropic_response(event) == expected
    assert read_anthropic_response(dict(event)) == expected


def test_anthropic_counts_the_sdk_did_not_validate_are_flagged() -> None:
    message = Message.construct(**anthropic_message())
    message.usage.__dict__["input_tokens"] = -5
    info = read_anthropic_response(message)
    assert info is not None and info.usage is not None
    assert (info.usage.input_tokens, info.usage.output_tokens) == (0, 503)
    assert info.usage.issues


def test_other_objects_are_not_anthropic_responses() -> None:
    assert read_anthropic_response(anthropic_message()) is None  # JSON: the generic reader's
    assert read_anthropic_response({"type": "content_block_delta"}) is None
    assert read_anthropic_response(None) is None


# ---------------------------------------------------------------------- any response
def test_read_response_picks_the_reader_of_each_shape() -> None:
    completion = ChatCompletion.model_validate(chat_completion(REFERENCE_USAGE))
    message = Message.model_validate(anthropic_message())
    assert read_response(completion).usage == Usage(input_tokens=19, output_tokens=10)
    assert read_response(dict(message)).usage == Usage(input_tokens=2095, output_tokens=503)
    # Decoded JSON goes to the generic reader, which recognises the dialect by its keys.
    as_json = read_response(chat_completion(REFERENCE_USAGE, service_tier="flex"))
    assert as_json == ResponseInfo(
        "gpt-4.1-2025-04-14",
        "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "flex",
        Usage(input_tokens=19, output_tokens=10),
    )
    assert read_response(anthropic_message()).usage == Usage(input_tokens=2095, output_tokens=503)


def test_read_response_of_nothing_or_of_no_usage() -> None:
    assert read_response(None) == NOTHING
    # A usage block of zeros is what servers send on every chunk: no usage reported.
    assert read_response({"id": "x", "usage": {"prompt_tokens": 0, "completion_tokens": 0}}) == (
        ResponseInfo(None, "x", None, None)
    )
    assert read_response("not a response") == NOTHING


def test_price_variant_names() -> None:
    assert [price_variant(t) for t in ("Flex", "PRIORITY", "batch", "scale", "standard", 3)] == [
        "flex",
        "priority",
        "batch",
        None,
        None,
        None,
    ]


# ---------------------------------------------------------------------- from the wire
def test_what_the_openai_client_returns_over_the_wire(
    openai_client: Any, wire_server: WireServer
) -> None:
    wire_server.enqueue(
        Reply(
            input_tokens=1000,
            cached_tokens=400,
            output_tokens=50,
            reasoning_tokens=10,
            service_tier="flex",
            request_id="req_1",
        )
    )
    completion = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    info = read_response(completion, provider="openai")
    assert info.usage == Usage(
        input_tokens=1000, cache_read_tokens=400, output_tokens=50, reasoning_tokens=10
    )
    assert (info.model, info.price_variant) == ("gpt-4o-mini", "flex")
    assert info.request_id is not None and info.request_id.startswith("chatcmpl-")


def test_what_the_anthropic_client_returns_over_the_wire(
    anthropic_client: Any, wire_server: WireServer
) -> None:
    wire_server.enqueue(
        input_tokens=10_000, cached_tokens=8_000, cache_write_1h=1_000, output_tokens=500
    )
    message = anthropic_client.messages.create(
        model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    info = read_response(dict(message), provider="anthropic")
    assert info.usage == Usage(
        input_tokens=10_000,
        cache_read_tokens=8_000,
        cache_write_tokens=1_000,
        cache_write_1h_tokens=1_000,
        output_tokens=500,
    )
    assert info.model == "claude-sonnet-4-5"
    assert info.request_id is not None and info.request_id.startswith("msg_")
