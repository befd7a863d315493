"""What the LlamaIndex integration reads at a call's start and end.

At the start: the model and the provider, from the event's ``model_dict`` and the LLM's
endpoint (an OpenAI client pointed at DeepSeek is DeepSeek). At the end: the usage the raw
provider response reports, else the counts LlamaIndex copied into the response.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ConfigDict
from pydantic.dataclasses import dataclass as pydantic_dataclass

from tests.sdk_payloads import chat_completion
from tokentrail.integrations.llamaindex_identify import base_url, identify, model_name
from tokentrail.integrations.llamaindex_usage import copied_usage, has_usage, reported
from tokentrail.usage import Usage


# ---------------------------------------------------------------------- model and provider
@pytest.mark.parametrize(
    ("model_dict", "expected"),
    [
        ({"model": "gpt-4o-mini", "class_name": "openai_llm"}, "gpt-4o-mini"),
        ({"model_name": "claude-sonnet-4-5", "model": "other"}, "claude-sonnet-4-5"),
        ({"model_name": "", "model": "gpt-4o"}, "gpt-4o"),
        ({"model_name": "unknown"}, None),
        ({"model_name": 3}, None),
        ({}, None),
    ],
)
def test_model_name_of_the_model_dict(model_dict: dict[str, Any], expected: str | None) -> None:
    assert model_name(model_dict) == expected


def test_the_provider_follows_the_llm_endpoint_at_every_call() -> None:
    from llama_index.llms.openai import OpenAI

    llm = OpenAI(api_key="sk-test", model="gpt-4o-mini", api_base="https://api.openai.com/v1")
    assert identify(llm, {"model": "gpt-4o-mini"}) == ("gpt-4o-mini", "openai")
    llm.api_base = "https://api.deepseek.com/v1"
    assert identify(llm, {"model": "deepseek-chat"}) == ("deepseek-chat", "deepseek")


def test_the_provider_of_a_call_without_an_llm_comes_from_the_model() -> None:
    assert identify(None, {"model_name": "claude-sonnet-4-5", "class_name": "Anthropic_LLM"}) == (
        "claude-sonnet-4-5",
        "anthropic",
    )


def test_base_url_of_an_openai_llm_and_of_other_objects() -> None:
    from llama_index.llms.openai import OpenAI

    llm = OpenAI(api_key="sk-test", api_base="http://127.0.0.1:9/v1")
    assert base_url(llm) == "http://127.0.0.1:9/v1"
    llm.api_base = "http://changed.example/v1"  # read per call, never cached per instance
    assert base_url(llm) == "http://changed.example/v1"
    assert base_url(SimpleNamespace(endpoint="https://x.example")) == "https://x.example"
    assert base_url(SimpleNamespace(base_url="")) is None
    assert base_url(object()) is None
    assert base_url(None) is None


class _Endpoints(BaseModel):
    """A pydantic client declaring two endpoint fields and accepting extra keys."""

    model_config = ConfigDict(extra="allow")

    endpoint: str | None = None
    base_url: str | None = None


def test_base_url_of_a_pydantic_client_follows_the_names_order() -> None:
    assert base_url(_Endpoints(endpoint="https://e.example")) == "https://e.example"
    both = _Endpoints(endpoint="https://e.example", base_url="https://b.example")
    assert base_url(both) == "https://b.example"  # base_url comes before endpoint
    assert base_url(_Endpoints(base_url="")) is None


def test_base_url_in_the_extra_keys_of_a_pydantic_client() -> None:
    client = _Endpoints(endpoint="https://e.example", api_base="https://extra.example")
    assert base_url(client) == "https://extra.example"  # api_base first, even as an extra
    assert base_url(_Endpoints(azure_endpoint="https://az.example")) == "https://az.example"


@pydantic_dataclass(slots=True)
class _SlottedClient:
    endpoint: str = "https://slot.example"


def test_base_url_of_a_pydantic_dataclass_client() -> None:
    assert base_url(_SlottedClient()) == "https://slot.example"


# ---------------------------------------------------------------------- usage at the end
USAGE = {"prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280}


def _chat(raw: Any = None, **extra: Any) -> ChatResponse:
    return ChatResponse(message=ChatMessage(role="assistant", content="ok"), raw=raw, **extra)


def test_the_raw_response_wins_over_the_copied_counts() -> None:
    raw = ChatCompletion.model_validate(
        chat_completion({**USAGE, "prompt_tokens_details": {"cached_tokens": 1000}})
    )
    response = _chat(raw, additional_kwargs={"prompt_tokens": 1, "completion_tokens": 2})
    info, usage = reported(response, response, "openai", "gpt-4.1")
    assert usage == Usage(input_tokens=1200, cache_read_tokens=1000, output_tokens=80)
    assert (info.model, info.request_id) == ("gpt-4.1-2025-04-14", raw.id)


def test_the_copied_counts_when_the_raw_response_has_no_usage() -> None:
    response = _chat(None, additional_kwargs={"prompt_tokens": 30, "completion_tokens": 5})
    _info, usage = reported(response, response, "openai", "gpt-4o-mini")
    assert usage == Usage(input_tokens=30, output_tokens=5)


def test_a_completion_response_is_read_like_a_chat_response() -> None:
    raw = ChatCompletion.model_validate(chat_completion(USAGE))
    response = CompletionResponse(text="ok", raw=raw)
    assert reported(response, response, "openai", None)[1] == Usage(
        input_tokens=1200, output_tokens=80
    )


def test_the_usage_llamaindex_puts_on_an_anthropic_stream_message() -> None:
    message = ChatMessage(
        role="assistant",
        content="ok",
        additional_kwargs={"usage": {"input_tokens": 12, "output_tokens": 4}},
    )
    assert copied_usage(ChatResponse(message=message)) == Usage(input_tokens=12, output_tokens=4)


def test_no_usage_anywhere_is_none() -> None:
    response = _chat(None)
    assert reported(response, response, "openai", "gpt-4o-mini")[1] is None
    assert reported(None, None, None, None)[1] is None


def test_which_stream_chunks_carry_usage() -> None:
    with_usage = ChatCompletion.model_validate(chat_completion(USAGE))
    without = ChatCompletion.model_validate(chat_completion(None))
    assert has_usage(with_usage) and has_usage({"usage": {"input_tokens": 1}})
    assert has_usage({"usage_metadata": {"promptTokenCount": 1}})
    assert not has_usage(without) and not has_usage({"type": "ping"}) and not has_usage(None)
