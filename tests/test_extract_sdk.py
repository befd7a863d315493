"""Extraction from real SDK objects: pydantic models built by the provider SDKs, LangChain
messages, LangChain's own usage converters, and SDK clients talking to the loopback wire.
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from anthropic.types import Message, MessageDeltaUsage, RawMessageDeltaEvent, RawMessageStartEvent
from anthropic.types import Usage as AnthropicUsage
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, LLMResult
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import ResponseUsage

from tests.wire import Reply, WireServer
from tokentrail.extract import (
    accumulate_openai_stream,
    extract_usage,
    from_anthropic,
    from_anthropic_stream,
    from_langchain_llm_output,
    from_langchain_usage_metadata,
    from_openai_chat,
    from_openai_responses,
    service_tier_from_usage_metadata,
    service_tier_of,
)
from tokentrail.usage import Usage


def chat_completion(n: int = 1, **usage: Any) -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-2024-08-06",
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": "hi"},
                    "finish_reason": "stop",
                }
                for i in range(n)
            ],
            "usage": usage,
            "service_tier": "priority",
        }
    )


def test_openai_chat_completion_object() -> None:
    completion = chat_completion(
        prompt_tokens=2006,
        completion_tokens=300,
        total_tokens=2306,
        prompt_tokens_details={"cached_tokens": 1920, "audio_tokens": 6},
        completion_tokens_details={"reasoning_tokens": 128, "audio_tokens": 0},
    )
    assert from_openai_chat(completion) == Usage(
        input_tokens=2006,
        cache_read_tokens=1920,
        input_audio_tokens=6,
        output_tokens=300,
        reasoning_tokens=128,
    )
    assert extract_usage(completion) == from_openai_chat(completion)
    assert from_openai_chat(completion.usage) == from_openai_chat(completion)
    assert service_tier_of(completion) == "priority"


def test_openai_n_choices_share_one_usage() -> None:
    one = chat_completion(n=1, prompt_tokens=10, completion_tokens=30, total_tokens=40)
    four = chat_completion(n=4, prompt_tokens=10, completion_tokens=30, total_tokens=40)
    assert extract_usage(four) == extract_usage(one) == Usage(input_tokens=10, output_tokens=30)


def test_openai_stream_chunk_objects() -> None:
    def chunk(usage: dict[str, int] | None, choices: list[Any]) -> ChatCompletionChunk:
        return ChatCompletionChunk.model_validate(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt-4o-mini",
                "choices": choices,
                "usage": usage,
            }
        )

    delta = [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}]
    chunks = [
        chunk(None, delta),
        chunk(None, delta),
        chunk({"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}, []),
    ]
    assert accumulate_openai_stream(chunks) == Usage(input_tokens=9, output_tokens=2)
    assert accumulate_openai_stream(chunks[:2]) is None


def test_openai_responses_usage_object() -> None:
    usage = ResponseUsage(
        input_tokens=500,
        input_tokens_details={"cached_tokens": 100, "cache_write_tokens": 50},
        output_tokens=90,
        output_tokens_details={"reasoning_tokens": 60},
        total_tokens=590,
    )
    assert from_openai_responses(usage) == Usage(
        input_tokens=500,
        cache_read_tokens=100,
        cache_write_tokens=50,
        output_tokens=90,
        reasoning_tokens=60,
    )


def anthropic_usage(**extra: Any) -> AnthropicUsage:
    return AnthropicUsage.model_validate(
        {
            "input_tokens": 21,
            "output_tokens": 393,
            "cache_creation_input_tokens": 3000,
            "cache_read_input_tokens": 12000,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 1000,
                "ephemeral_1h_input_tokens": 2000,
            },
            **extra,
        }
    )


def test_anthropic_message_object_adds_cache_to_input() -> None:
    message = Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "hi"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": anthropic_usage().model_dump(),
        }
    )
    expected = Usage(
        input_tokens=15021,
        cache_read_tokens=12000,
        cache_write_tokens=3000,
        cache_write_1h_tokens=2000,
        output_tokens=393,
    )
    assert from_anthropic(message) == expected
    assert extract_usage(message) == expected


def test_anthropic_agrees_with_langchain_anthropic_converter() -> None:
    """langchain-anthropic's own conversion, read back, gives what the raw usage gives."""
    from langchain_anthropic.chat_models import _create_usage_metadata

    raw = anthropic_usage(output_tokens_details={"thinking_tokens": 300})
    via_langchain = from_langchain_usage_metadata(_create_usage_metadata(raw))
    assert via_langchain == from_anthropic(raw)
    assert via_langchain is not None and via_langchain.cache_write_1h_tokens == 2000


def test_anthropic_stream_event_objects() -> None:
    start = RawMessageStartEvent.model_validate(
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-haiku-4-5",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 50,
                    "output_tokens": 1,
                    "cache_read_input_tokens": 4000,
                    "cache_creation_input_tokens": 0,
                },
            },
        }
    )
    delta = RawMessageDeltaEvent(
        type="message_delta",
        delta={"stop_reason": "end_turn", "stop_sequence": None},
        usage=MessageDeltaUsage(output_tokens=120),
    )
    assert from_anthropic_stream([start, delta]) == Usage(
        input_tokens=4050, cache_read_tokens=4000, output_tokens=120
    )


@pytest.mark.parametrize("tier", ["priority", "flex"])
def test_langchain_openai_service_tier_keys_fold_in(tier: str) -> None:
    """langchain-openai renames detail keys per tier; they are still cache read/reasoning."""
    from langchain_openai.chat_models.base import _create_usage_metadata

    raw = {
        "prompt_tokens": 1800,
        "completion_tokens": 700,
        "total_tokens": 2500,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": None},
        "completion_tokens_details": {"reasoning_tokens": 500, "audio_tokens": None},
    }
    metadata = _create_usage_metadata(raw, service_tier=tier)
    assert f"{tier}_cache_read" in metadata["input_token_details"]
    message = AIMessage(content="", usage_metadata=metadata)
    expected = Usage(
        input_tokens=1800, cache_read_tokens=1024, output_tokens=700, reasoning_tokens=500
    )
    assert from_langchain_usage_metadata(message) == expected
    assert from_langchain_usage_metadata(metadata) == expected
    assert from_openai_chat(raw) == expected
    assert service_tier_from_usage_metadata(message) == tier
    assert service_tier_of(message) == tier


def test_langchain_default_tier_is_none() -> None:
    message = AIMessage(
        content="",
        usage_metadata={
            "input_tokens": 3,
            "output_tokens": 1,
            "total_tokens": 4,
            "input_token_details": {"cache_read": 1},
        },
    )
    assert service_tier_from_usage_metadata(message) is None


def test_langchain_chunk_and_llm_result_with_n_generations() -> None:
    metadata = {"input_tokens": 40, "output_tokens": 90, "total_tokens": 130}
    chunk = AIMessageChunk(content="", usage_metadata=metadata)
    assert extract_usage(chunk) == Usage(input_tokens=40, output_tokens=90)
    # langchain-openai copies the one usage onto every choice's message: read it once.
    result = LLMResult(
        generations=[
            [
                ChatGeneration(message=AIMessage(content=str(i), usage_metadata=metadata))
                for i in range(3)
            ]
        ],
        llm_output={
            "token_usage": {"prompt_tokens": 40, "completion_tokens": 90, "total_tokens": 130}
        },
    )
    assert extract_usage(result) == Usage(input_tokens=40, output_tokens=90)
    assert from_langchain_llm_output(result) == Usage(input_tokens=40, output_tokens=90)
    assert from_langchain_llm_output(result.llm_output) == Usage(input_tokens=40, output_tokens=90)


def test_message_without_usage_gives_none() -> None:
    assert extract_usage(AIMessage(content="hi")) is None
    assert from_langchain_usage_metadata(AIMessage(content="hi")) is None


# --- real SDK clients over the loopback wire -------------------------------------------


def test_openai_client_response_over_the_wire(wire_server: WireServer) -> None:
    wire_server.enqueue(
        Reply(input_tokens=300, cached_tokens=256, output_tokens=40, reasoning_tokens=10)
    )
    client = openai.OpenAI(base_url=wire_server.openai_base_url, api_key="test", max_retries=0)
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], n=2
    )
    assert extract_usage(completion) == Usage(
        input_tokens=300, cache_read_tokens=256, output_tokens=40, reasoning_tokens=10
    )


def test_openai_client_stream_over_the_wire(wire_server: WireServer) -> None:
    wire_server.enqueue(Reply(input_tokens=120, output_tokens=9))
    client = openai.OpenAI(base_url=wire_server.openai_base_url, api_key="test", max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    assert extract_usage(stream) == Usage(input_tokens=120, output_tokens=9)


def test_anthropic_client_stream_over_the_wire(wire_server: WireServer) -> None:
    wire_server.enqueue(
        Reply(input_tokens=5000, cached_tokens=3000, cache_write_1h=1500, output_tokens=64)
    )
    client = anthropic.Anthropic(base_url=wire_server.base_url, api_key="test", max_retries=0)
    events = list(
        client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=100,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
        )
    )
    assert from_anthropic_stream(events) == Usage(
        input_tokens=5000,
        cache_read_tokens=3000,
        cache_write_tokens=1500,
        cache_write_1h_tokens=1500,
        output_tokens=64,
    )
    assert extract_usage(events) == from_anthropic_stream(events)
