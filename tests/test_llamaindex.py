"""LlamaIndex integration: the real ``llama-index-llms-openai`` client over the loopback wire.

Every test reads its rows back from the DuckDB file. Expected dollars are the vendor's
prices for gpt-4o-mini: $0.15 per 1M input tokens, $0.075 per 1M cached input tokens,
$0.60 per 1M output tokens.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index_instrumentation.dispatcher import instrument_tags

from tests.llamaindex_support import installed as _installed
from tests.wire import Reply, WireServer
from tokentrail.estimate import count_message_tokens, count_text_tokens

Rows = Callable[..., list[dict[str, Any]]]
USER_HI = [ChatMessage(role="user", content="hi")]
WIRE_TEXT = Reply().text  # "Hello from the loopback wire."


pytestmark = pytest.mark.usefixtures("llamaindex_left_clean")


@pytest.fixture
def attached(tracker: Any) -> Iterator[Any]:
    """``tracker.llamaindex(user_id="u1", operation="qa")``, detached after the test."""
    handle = tracker.llamaindex(user_id="u1", operation="qa")
    try:
        yield handle
    finally:
        handle.detach()


def _usage_of(row: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return (
        row["input_tokens"],
        row["output_tokens"],
        row["cache_read_tokens"],
        row["cache_write_tokens"],
        row["reasoning_tokens"],
    )


# ---------------------------------------------------------------------- one call
def test_chat_records_raw_usage_with_cached_and_reasoning_tokens(
    tracker: Any, attached: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    wire_server.enqueue(input_tokens=1000, cached_tokens=400, output_tokens=50, reasoning_tokens=10)
    li_openai().chat(USER_HI)

    [row] = rows(tracker)
    assert row["framework"] == "llamaindex"
    assert (row["provider"], row["model"]) == ("openai", "gpt-4o-mini")
    assert (row["user_id"], row["operation"]) == ("u1", "qa")
    assert _usage_of(row) == (1000, 50, 400, 0, 10)
    assert row["total_tokens"] == 1050
    # 600 uncached x $0.15 + 400 cached x $0.075 + 50 out x $0.60, per 1M.
    assert row["input_cost"] == Decimal("0.00009")
    assert row["cache_read_cost"] == Decimal("0.00003")
    assert row["output_cost"] + row["reasoning_cost"] == Decimal("0.00003")
    assert row["total_cost"] == Decimal("0.00015")
    assert row["cost_source"] == "catalog"
    assert (row["status"], row["streamed"], row["estimated"]) == ("ok", False, False)
    assert row["request_id"].startswith("chatcmpl-")
    assert row["run_id"].startswith("OpenAI.chat-")
    assert row["latency_ms"] > 0


def test_complete_on_a_chat_model_is_one_row(
    tracker: Any, attached: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    wire_server.enqueue(input_tokens=200, output_tokens=100)
    li_openai().complete("Say hello")

    [row] = rows(tracker)
    assert wire_server.count("/v1/chat/completions") == 1
    assert _usage_of(row) == (200, 100, 0, 0, 0)
    assert row["total_cost"] == Decimal("0.00009")  # 200 x 0.15 + 100 x 0.60 per 1M


def test_stream_chat_with_include_usage_reads_the_last_chunk(
    tracker: Any, attached: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    llm = li_openai(additional_kwargs={"stream_options": {"include_usage": True}})
    wire_server.enqueue(input_tokens=2000, cached_tokens=1000, output_tokens=300)
    text = "".join(chunk.delta or "" for chunk in llm.stream_chat(USER_HI))

    assert text == WIRE_TEXT
    assert wire_server.bodies()[0]["stream_options"] == {"include_usage": True}
    [row] = rows(tracker)
    assert _usage_of(row) == (2000, 300, 1000, 0, 0)
    assert (row["streamed"], row["estimated"], row["status"]) == (True, False, "ok")
    # 1000 x 0.15 + 1000 x 0.075 + 300 x 0.60, per 1M.
    assert row["total_cost"] == Decimal("0.000405")


def test_stream_without_usage_is_estimated_from_prompt_and_text(
    tracker: Any, attached: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    for _ in li_openai().stream_chat(USER_HI):
        pass

    [row] = rows(tracker)
    prompt = count_message_tokens([{"role": "user", "content": "hi"}], model="gpt-4o-mini")
    output = count_text_tokens(WIRE_TEXT, model="gpt-4o-mini")
    assert (row["input_tokens"], row["output_tokens"]) == (prompt, output)
    assert (row["streamed"], row["estimated"], row["status"]) == (True, True, "ok")
    expected = (Decimal(prompt) * Decimal("0.15") + Decimal(output) * Decimal("0.60")) / 10**6
    assert row["total_cost"] == expected


def test_astream_chat_with_usage(
    tracker: Any, attached: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    llm = li_openai(additional_kwargs={"stream_options": {"include_usage": True}})
    wire_server.enqueue(input_tokens=100, output_tokens=20)

    async def consume() -> str:
        text = ""
        async for chunk in await llm.astream_chat(USER_HI):
            text += chunk.delta or ""
        return text

    assert asyncio.run(consume()) == WIRE_TEXT
    [row] = rows(tracker)
    assert _usage_of(row) == (100, 20, 0, 0, 0)
    assert (row["streamed"], row["estimated"]) == (True, False)
    assert row["total_cost"] == Decimal("0.000027")  # 100 x 0.15 + 20 x 0.60 per 1M


def test_achat_and_acomplete(
    tracker: Any, attached: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    llm = li_openai()
    wire_server.enqueue(input_tokens=10, output_tokens=10)
    wire_server.enqueue(input_tokens=30, output_tokens=5)

    async def both() -> None:
        await llm.achat(USER_HI)
        await llm.acomplete("hello")

    asyncio.run(both())
    got = rows(tracker)
    assert [(r["input_tokens"], r["output_tokens"]) for r in got] == [(10, 10), (30, 5)]
    assert [r["total_cost"] for r in got] == [Decimal("0.0000075"), Decimal("0.0000075")]


def test_abandoned_stream_is_cancelled_with_what_was_seen(
    tracker: Any, attached: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    llm = li_openai(additional_kwargs={"stream_options": {"include_usage": True}})
    wire_server.enqueue(text="one two three four five six", output_tokens=6)
    stream = llm.stream_chat(USER_HI)
    seen = ""
    for chunk in stream:
        seen += chunk.delta or ""
        if seen.startswith("one two"):
            break
    del stream, chunk
    gc.collect()

    [row] = rows(tracker)
    assert (row["status"], row["streamed"], row["estimated"]) == ("cancelled", True, True)
    assert row["error_type"] == "GeneratorExit"
    prompt = count_message_tokens([{"role": "user", "content": "hi"}], model="gpt-4o-mini")
    assert row["input_tokens"] == prompt
    assert row["output_tokens"] == count_text_tokens("one two ", model="gpt-4o-mini")


def test_stream_never_iterated_is_cancelled_without_tokens(
    tracker: Any, attached: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    stream = li_openai().stream_chat(USER_HI)
    del stream
    gc.collect()

    [row] = rows(tracker)
    assert wire_server.request_count == 0  # the OpenAI stream sends its request lazily
    assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("cancelled", 0, 0)


def test_provider_error_is_an_error_row_without_tokens(
    tracker: Any, attached: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    import openai

    wire_server.enqueue(Reply(status=429, request_id="req_rate_limited"))
    with pytest.raises(openai.RateLimitError):
        li_openai().chat(USER_HI)

    [row] = rows(tracker)
    assert (row["status"], row["error_type"]) == ("error", "RateLimitError")
    assert (row["input_tokens"], row["output_tokens"], row["estimated"]) == (0, 0, False)
    assert row["total_cost"] == Decimal(0)
    assert row["request_id"] == "req_rate_limited"


# ---------------------------------------------------------------------- engines
def test_simple_chat_engine_conversation_is_one_row_per_turn(
    tracker: Any, attached: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    from llama_index.core.chat_engine import SimpleChatEngine

    wire_server.enqueue(input_tokens=40, output_tokens=10)
    wire_server.enqueue(input_tokens=70, output_tokens=12)
    engine = SimpleChatEngine.from_defaults(llm=li_openai())
    engine.chat("hello")
    engine.chat("and again")

    got = rows(tracker)
    assert wire_server.count("/v1/chat/completions") == 2
    assert [(r["input_tokens"], r["output_tokens"]) for r in got] == [(40, 10), (70, 12)]
    assert [r["total_cost"] for r in got] == [Decimal("0.000012"), Decimal("0.0000177")]
    assert all(r["parent_run_id"].startswith("SimpleChatEngine.chat-") for r in got)
    # The second turn sent the whole conversation.
    assert len(wire_server.bodies()[1]["messages"]) == 3


def test_query_over_a_vector_index_records_llm_and_embedding_calls(
    tracker: Any, attached: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding

    docs = [
        Document(text="Paris is the capital of France."),
        Document(text="Berlin is the capital of Germany."),
    ]
    index = VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=8))
    wire_server.enqueue(input_tokens=300, output_tokens=20, cached_tokens=100)
    question = "What is the capital of France?"
    index.as_query_engine(llm=li_openai()).query(question)

    got = rows(tracker)
    llm_rows = [r for r in got if r["operation"] != "embedding"]
    embed_rows = [r for r in got if r["operation"] == "embedding"]
    assert wire_server.count("/v1/chat/completions") == 1
    [answer] = llm_rows
    assert _usage_of(answer) == (300, 20, 100, 0, 0)
    # 200 x 0.15 + 100 x 0.075 + 20 x 0.60, per 1M.
    assert answer["total_cost"] == Decimal("0.0000495")
    assert answer["operation"] == "qa"
    assert answer["trace_id"].startswith("RetrieverQueryEngine.query-")
    # One batch embedding both documents at indexing, one query embedding.
    assert len(embed_rows) == 2
    assert all(r["estimated"] and r["output_tokens"] == 0 for r in embed_rows)
    assert embed_rows[1]["input_tokens"] == count_text_tokens(question)
    assert embed_rows[1]["trace_id"] == answer["trace_id"]
    assert all(r["user_id"] == "u1" for r in got)


# ---------------------------------------------------------------------- attach / detach
def test_detach_stops_recording_and_uninstalls_the_handlers(
    tracker: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    llm = li_openai()
    with tracker.llamaindex(user_id="u1") as handle:
        assert _installed()
        llm.chat(USER_HI)
    assert not handle.attached
    assert not _installed()
    llm.chat(USER_HI)
    handle.detach()  # idempotent

    assert wire_server.request_count == 2
    assert len(rows(tracker)) == 1


def test_two_handles_on_one_tracker_record_once_with_the_latest_attribution(
    tracker: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    first = tracker.llamaindex(user_id="first")
    second = tracker.llamaindex(user_id="second")
    try:
        li_openai().chat(USER_HI)
    finally:
        second.detach()
        first.detach()
    [row] = rows(tracker)
    assert row["user_id"] == "second"


# ---------------------------------------------------------------------- tiers and embeddings
def test_a_call_served_on_the_priority_tier_is_priced_at_its_rates(
    tracker: Any, attached: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    wire_server.enqueue(
        Reply(input_tokens=1000, cached_tokens=400, output_tokens=50, service_tier="priority")
    )
    li_openai().chat(USER_HI)

    [row] = rows(tracker)
    assert _usage_of(row) == (1000, 50, 400, 0, 0)
    # gpt-4o-mini priority: $0.25 in, $0.125 cached, $1 out per 1M: 600 x 0.25 + 400 x 0.125
    # + 50 x 1 = 250 per 1M.
    assert row["total_cost"] == Decimal("0.00025")
    assert '"price_variant":"priority"' in row["metadata"]


def test_embedding_batches_through_the_openai_sdk_are_estimated_rows(
    tracker: Any, attached: Any, openai_client: Any, wire_server: WireServer, rows: Rows
) -> None:
    from tests.llamaindex_support import SDKOpenAIEmbedding

    embed = SDKOpenAIEmbedding(
        model_name="text-embedding-3-small",
        client=openai_client,
        api_base=wire_server.openai_base_url,
        embed_batch_size=10,
    )
    texts = ["Paris is the capital of France.", "Berlin is the capital of Germany."]
    embed.get_text_embedding_batch(texts)
    embed.get_query_embedding("capital of France")

    got = rows(tracker)
    assert wire_server.count("/v1/embeddings") == 2
    assert [r["operation"] for r in got] == ["embedding", "embedding"]
    assert {(r["provider"], r["model"]) for r in got} == {("openai", "text-embedding-3-small")}
    # LlamaIndex passes on the texts, not the provider's usage: cl100k_base counts them
    # (7 + 7 tokens in the batch, 3 in the query), at $0.02 per 1M input tokens.
    assert [(r["input_tokens"], r["output_tokens"], r["estimated"]) for r in got] == [
        (14, 0, True),
        (3, 0, True),
    ]
    assert [r["total_cost"] for r in got] == [Decimal("0.00000028"), Decimal("0.00000006")]
    assert all(r["user_id"] == "u1" and r["status"] == "ok" for r in got)


# ---------------------------------------------------------------------- concurrency
def test_concurrent_async_and_threaded_calls_are_one_row_each(
    tracker: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    llm = li_openai()
    wire_server.set_default(input_tokens=100, output_tokens=10, delay=0.02)

    async def gathered() -> None:
        async def one(i: int) -> None:
            with instrument_tags({"user_id": f"async-{i}"}):
                await llm.achat(USER_HI)

        await asyncio.gather(*(one(i) for i in range(8)))

    def threaded(i: int) -> None:
        with instrument_tags({"user_id": f"thread-{i}"}):
            llm.chat(USER_HI)

    with tracker.llamaindex():
        asyncio.run(gathered())
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(threaded, range(8)))

    got = rows(tracker)
    assert wire_server.request_count == 16
    assert sorted(r["user_id"] for r in got) == sorted(
        [f"async-{i}" for i in range(8)] + [f"thread-{i}" for i in range(8)]
    )
    assert len({r["request_id"] for r in got}) == 16
    assert sum(r["total_cost"] for r in got) == 16 * Decimal("0.000021")
