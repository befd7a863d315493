"""The loopback server speaks the providers' formats well enough for their real SDKs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.wire import Reply, WireServer


def test_openai_json_usage_details_and_n(wire_server: WireServer, openai_client: Any) -> None:
    wire_server.enqueue(
        Reply(input_tokens=100, cached_tokens=40, output_tokens=30, reasoning_tokens=10)
    )
    r = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], n=2
    )
    assert len(r.choices) == 2
    assert r.usage.prompt_tokens == 100
    assert r.usage.prompt_tokens_details.cached_tokens == 40
    assert r.usage.completion_tokens_details.reasoning_tokens == 10
    assert r.usage.total_tokens == 130
    assert wire_server.request_count == 1
    assert wire_server.requests[0].body["n"] == 2


def test_openai_stream_usage_chunk_only_when_asked(
    wire_server: WireServer, openai_client: Any
) -> None:
    wire_server.set_default(text="one two three", input_tokens=9, output_tokens=3)
    msgs = [{"role": "user", "content": "hi"}]
    chunks = list(
        openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=msgs, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3
    assert all(c.usage is None for c in chunks[:-1])
    plain = list(
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True)
    )
    assert all(c.usage is None for c in plain) and all(c.choices for c in plain)


def test_openai_error_json_not_retried(wire_server: WireServer) -> None:
    import openai

    client = openai.OpenAI(base_url=wire_server.openai_base_url, api_key="test")  # default retries
    wire_server.enqueue(Reply(status=429, error_message="slow down"))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.code == "rate_limit_exceeded"
    assert "slow down" in str(info.value)
    assert wire_server.request_count == 1


def test_openai_embeddings_base64_and_float(wire_server: WireServer, openai_client: Any) -> None:
    wire_server.set_default(input_tokens=6)
    r = openai_client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(r.data) == 2 and len(r.data[1].embedding) == 8
    assert r.usage.prompt_tokens == 6
    assert wire_server.bodies()[0]["encoding_format"] == "base64"
    f = openai_client.embeddings.create(
        model="text-embedding-3-small", input="a", encoding_format="float"
    )
    assert f.data[0].embedding == pytest.approx(r.data[0].embedding, rel=1e-6)


def test_openai_responses_json_and_stream(wire_server: WireServer, openai_client: Any) -> None:
    wire_server.set_default(text="hi there", input_tokens=20, cached_tokens=5, output_tokens=4)
    r = openai_client.responses.create(model="gpt-4o-mini", input="hello")
    assert r.output_text == "hi there"
    assert r.usage.input_tokens_details.cached_tokens == 5
    events = list(openai_client.responses.create(model="gpt-4o-mini", input="hello", stream=True))
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage.output_tokens == 4
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "hi there"


def test_anthropic_json_and_error(wire_server: WireServer, anthropic_client: Any) -> None:
    import anthropic

    wire_server.enqueue(
        Reply(
            input_tokens=1000,
            cached_tokens=600,
            cache_write_5m=100,
            cache_write_1h=200,
            output_tokens=50,
        )
    )
    m = anthropic_client.messages.create(
        model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    )
    assert m.usage.input_tokens == 100  # raw: excludes cache reads and writes
    assert m.usage.cache_read_input_tokens == 600
    assert m.usage.cache_creation_input_tokens == 300
    assert m.usage.cache_creation.ephemeral_1h_input_tokens == 200
    wire_server.enqueue(Reply(status=529))
    with pytest.raises(anthropic.APIStatusError) as info:
        anthropic_client.messages.create(
            model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 529
    assert info.value.body["error"]["type"] == "overloaded_error"


def test_anthropic_stream_events(wire_server: WireServer, anthropic_client: Any) -> None:
    wire_server.set_default(text="a b c", input_tokens=30, cached_tokens=10, output_tokens=3)
    with anthropic_client.messages.stream(
        model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "a b c"
    assert final.usage.output_tokens == 3 and final.usage.input_tokens == 20
    assert final.usage.cache_read_input_tokens == 10


def test_langchain_clients_parse_usage(
    wire_server: WireServer, chat_openai: Any, chat_anthropic: Any
) -> None:
    wire_server.enqueue(
        Reply(input_tokens=50, cached_tokens=20, output_tokens=8, reasoning_tokens=2)
    )
    msg = chat_openai().invoke("hi")
    assert msg.usage_metadata["input_tokens"] == 50
    assert msg.usage_metadata["input_token_details"]["cache_read"] == 20
    assert msg.usage_metadata["output_token_details"]["reasoning"] == 2
    wire_server.enqueue(
        Reply(input_tokens=70, cached_tokens=20, cache_write_1h=30, output_tokens=9)
    )
    amsg = chat_anthropic().invoke("hi")
    assert amsg.usage_metadata["input_tokens"] == 70
    assert amsg.usage_metadata["input_token_details"]["ephemeral_1h_input_tokens"] == 30
    wire_server.set_default(input_tokens=70, cached_tokens=20, output_tokens=9)
    chunks = list(chat_anthropic().stream("hi"))
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert total.usage_metadata["input_tokens"] == 70
    assert total.usage_metadata["output_tokens"] == 9
    ochunks = list(chat_openai(stream_usage=True).stream("hi"))
    assert sum((c.usage_metadata or {}).get("output_tokens", 0) for c in ochunks) == 9


def test_llamaindex_openai_parses(wire_server: WireServer) -> None:
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai import OpenAI

    wire_server.set_default(text="pong", input_tokens=11, output_tokens=1)
    llm = OpenAI(
        model="gpt-4o-mini", api_base=wire_server.openai_base_url, api_key="test", max_retries=0
    )
    r = llm.chat([ChatMessage(role="user", content="ping")])
    assert r.message.content == "pong"
    assert r.raw.usage.prompt_tokens == 11
    assert (
        "".join(c.delta or "" for c in llm.stream_chat([ChatMessage(role="user", content="x")]))
        == "pong"
    )


def test_delay_and_concurrency_counter(wire_server: WireServer, openai_client: Any) -> None:
    import threading

    wire_server.set_default(delay=0.2)
    threads = [
        threading.Thread(
            target=openai_client.chat.completions.create,
            kwargs={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wire_server.request_count == 3
    assert wire_server.max_in_flight >= 2
