"""The LlamaIndex integration's fast readers agree with the general ones they shortcut.

``read_raw`` reads model, request id, price variant and usage block of a raw payload in
one pass; ``usage_of`` takes a fast path for the ``openai`` SDK's ``CompletionUsage``.
Both must give what the slower, general readers give, for every payload shape.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, ChatResponse
from openai.types.chat import ChatCompletion

from tokentrail.extract import extract_usage
from tokentrail.integrations import llamaindex_usage as lu
from tokentrail.integrations.llamaindex_recorder import _base_url


def _completion(usage: Any, **top: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "ok"},
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }
    body.update(top)
    return body


VALID: list[Any] = [
    {"prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280},
    {
        "prompt_tokens": 1200,
        "completion_tokens": 80,
        "total_tokens": 1280,
        "prompt_tokens_details": {"cached_tokens": 1000, "audio_tokens": 5},
        "completion_tokens_details": {"reasoning_tokens": 16, "audio_tokens": 4},
    },
    # An extra field of the details (OpenAI-compatible servers report cache writes).
    {
        "prompt_tokens": 100,
        "completion_tokens": 3,
        "total_tokens": 103,
        "prompt_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 20},
    },
    {
        "prompt_tokens": 100,
        "completion_tokens": 3,
        "total_tokens": 103,
        "prompt_tokens_details": None,
    },
    # Valid types, invalid sums: the fast path hands them to the generic reader.
    {
        "prompt_tokens": 10,
        "completion_tokens": 3,
        "total_tokens": 13,
        "prompt_tokens_details": {"cached_tokens": 40},
    },
    {
        "prompt_tokens": 10,
        "completion_tokens": 3,
        "total_tokens": 13,
        "completion_tokens_details": {"reasoning_tokens": 2, "audio_tokens": 2},
    },
]

# Values only a response built without validation carries (the SDK builds its responses
# with construct(), which does not validate).
UNVALIDATED: list[Any] = [
    {"prompt_tokens": None, "completion_tokens": 3},
    {"prompt_tokens": -1, "completion_tokens": 3},
    {"prompt_tokens": True, "completion_tokens": 3},
    {"prompt_tokens": "12", "completion_tokens": 3},
    {"prompt_tokens": 12.0, "completion_tokens": 3},
    {"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": -2}},
    {
        "prompt_tokens": 10,
        "completion_tokens": 3,
        "prompt_tokens_details": {"cached_tokens": False},
    },
]


def _check_fast_path(raw: Any) -> None:
    assert type(raw.usage).__name__ == "CompletionUsage"  # the fast path's input
    response = ChatResponse(message=ChatMessage(role="assistant", content="ok"), raw=raw)
    expected = extract_usage(raw, model="gpt-4o-mini")
    assert lu.usage_of(response, "openai", "gpt-4o-mini") == expected


@pytest.mark.parametrize("usage", VALID)
def test_sdk_fast_path_matches_the_generic_extractor(usage: Any) -> None:
    _check_fast_path(ChatCompletion.model_validate(_completion(usage)))
    _check_fast_path(ChatCompletion.construct(**_completion(usage)))


@pytest.mark.parametrize("usage", UNVALIDATED)
def test_sdk_fast_path_leaves_odd_values_to_the_generic_extractor(usage: Any) -> None:
    _check_fast_path(ChatCompletion.construct(**_completion(usage)))


RAWS: list[Any] = [
    None,
    _completion({"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}),
    _completion(
        {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}, service_tier="priority"
    ),
    _completion(
        {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}, service_tier="default"
    ),
    _completion(
        {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, "service_tier": "batch"},
        service_tier=None,
    ),
    {"id": "", "model": "", "usage": None},
    {"type": "message_start", "message": {"id": "msg_1", "model": "claude-sonnet-4-5"}},
    {"model": 3, "id": 4, "service_tier": 5},
    SimpleNamespace(model="m", id="r", service_tier="FLEX", usage=None),
    SimpleNamespace(),
]


@pytest.mark.parametrize("raw", RAWS)
@pytest.mark.parametrize("as_model", [False, True])
def test_read_raw_matches_the_single_readers(raw: Any, as_model: bool) -> None:
    if as_model and isinstance(raw, dict) and "choices" in raw:
        raw = ChatCompletion.model_validate(raw)
    model, request_id, variant, usage = lu.read_raw(raw)
    assert model == lu.model_of(raw)
    assert request_id == lu.request_id_of(raw)
    assert variant == lu.price_variant_of(raw)
    assert usage is lu._get(raw, "usage")


def test_base_url_of_an_openai_llm_and_of_other_objects() -> None:
    from llama_index.llms.openai import OpenAI

    llm = OpenAI(api_key="sk-test", api_base="http://127.0.0.1:9/v1")
    assert _base_url(llm) == "http://127.0.0.1:9/v1"
    llm.api_base = "http://changed.example/v1"  # read per call, never cached per instance
    assert _base_url(llm) == "http://changed.example/v1"
    assert _base_url(SimpleNamespace(endpoint="https://x.example")) == "https://x.example"
    assert _base_url(SimpleNamespace(base_url="")) is None
    assert _base_url(None) is None
