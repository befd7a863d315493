"""LlamaIndex integration: attribution, track() blocks, nesting, Anthropic usage, the legacy
callback handler and its budget hook. Real LlamaIndex, real SDK clients over the loopback wire.

``llama-index-llms-anthropic`` 0.12.3 cannot build a request with ``anthropic`` 2.x (it calls
``MessageParam(...)``, now a ``Union``), so Anthropic is driven by a small ``CustomLLM`` that
calls the real ``anthropic`` SDK and returns ``raw=dict(message)`` exactly as that package does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.callbacks import CallbackManager
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index_instrumentation.dispatcher import instrument_tags

from tests.llamaindex_support import installed as _installed
from tests.wire import Reply, WireServer
from tokentrail import BudgetExceededError
from tokentrail.integrations.llamaindex import TokentrailLlamaIndexCallback, guard_llm

Rows = Callable[..., list[dict[str, Any]]]
USER_HI = [ChatMessage(role="user", content="hi")]


pytestmark = pytest.mark.usefixtures("llamaindex_left_clean")


class SDKAnthropic(CustomLLM):
    """Anthropic through the real SDK, answering like ``llama-index-llms-anthropic``."""

    client: Any = None
    model: str = "claude-sonnet-4-5"

    @classmethod
    def class_name(cls) -> str:
        return "Anthropic_LLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model, is_chat_model=True, num_output=256)

    def _params(self, messages: Sequence[ChatMessage]) -> dict[str, Any]:
        return {
            "model": self.model,
            "max_tokens": 256,
            "messages": [{"role": m.role.value, "content": m.content or ""} for m in messages],
        }

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        message = self.client.messages.create(**self._params(messages))
        text = "".join(b.text for b in message.content if b.type == "text")
        return ChatResponse(message=ChatMessage(role="assistant", content=text), raw=dict(message))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        events = self.client.messages.create(stream=True, **self._params(messages))

        def gen() -> ChatResponseGen:
            text = ""
            for event in events:
                if event.type == "content_block_delta":
                    text += event.delta.text
                    delta = event.delta.text
                elif event.type == "message_delta":
                    delta = ""
                else:
                    continue
                yield ChatResponse(
                    message=ChatMessage(role="assistant", content=text),
                    delta=delta,
                    raw=dict(event),
                )

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        # As llama-index-llms-anthropic does: complete() is a chat() underneath.
        response = self.chat([ChatMessage(role="user", content=prompt)])
        return CompletionResponse(text=response.message.content or "", raw=response.raw)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        raise NotImplementedError


class CompletionOnlyOpenAI(CustomLLM):
    """A completion-style LLM: ``chat()`` is CustomLLM's fallback onto ``complete()``."""

    client: Any = None

    @classmethod
    def class_name(cls) -> str:
        return "CompletionOnlyOpenAI"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="gpt-4o-mini")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        completion = self.client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
        )
        return CompletionResponse(text=completion.choices[0].message.content, raw=completion)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        raise NotImplementedError


# ---------------------------------------------------------------------- nesting
def test_chat_falling_back_to_complete_is_counted_once(
    tracker: Any, openai_client: Any, wire_server: WireServer, rows: Rows
) -> None:
    from llama_index.core.callbacks import TokenCountingHandler

    counter = TokenCountingHandler()
    llm = CompletionOnlyOpenAI(client=openai_client, callback_manager=CallbackManager([counter]))
    wire_server.enqueue(input_tokens=500, output_tokens=40)
    with tracker.llamaindex(user_id="u1"):
        llm.chat(USER_HI)

    [row] = rows(tracker)
    assert wire_server.request_count == 1
    assert len(counter.llm_token_counts) == 2  # LlamaIndex's own counter counts it twice
    assert (row["input_tokens"], row["output_tokens"]) == (500, 40)
    assert row["total_cost"] == Decimal("0.000099")  # 500 x 0.15 + 40 x 0.60 per 1M
    assert row["run_id"].startswith("CompletionOnlyOpenAI.complete-")
    assert row["parent_run_id"].startswith("CompletionOnlyOpenAI.chat-")


def test_anthropic_complete_over_chat_is_one_row_with_cache_usage(
    tracker: Any, anthropic_client: Any, wire_server: WireServer, rows: Rows
) -> None:
    llm = SDKAnthropic(client=anthropic_client)
    wire_server.enqueue(
        input_tokens=10_000, cached_tokens=8_000, cache_write_5m=1_000, output_tokens=500
    )
    with tracker.llamaindex(user_id="u1"):
        llm.complete("Summarise the contract")

    [row] = rows(tracker)
    assert wire_server.count("/v1/messages") == 1
    assert (row["provider"], row["model"]) == ("anthropic", "claude-sonnet-4-5")
    # Anthropic's raw input_tokens (1,000) excludes the cache: the row counts all 10,000.
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"]) == (
        10_000,
        8_000,
        1_000,
    )
    assert row["output_tokens"] == 500
    # $3 in, $0.30 cache read, $3.75 cache write (5 min), $15 out, per 1M.
    assert row["input_cost"] == Decimal("0.003")
    assert row["cache_read_cost"] == Decimal("0.0024")
    assert row["cache_write_cost"] == Decimal("0.00375")
    assert row["output_cost"] == Decimal("0.0075")
    assert row["total_cost"] == Decimal("0.01665")
    assert row["request_id"].startswith("msg_")


def test_anthropic_stream_takes_cache_usage_from_the_message_delta(
    tracker: Any, anthropic_client: Any, wire_server: WireServer, rows: Rows
) -> None:
    llm = SDKAnthropic(client=anthropic_client)
    wire_server.enqueue(input_tokens=3_000, cached_tokens=2_000, output_tokens=100)
    with tracker.llamaindex():
        text = "".join(r.delta or "" for r in llm.stream_chat(USER_HI))

    assert text == Reply().text
    [row] = rows(tracker)
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (
        3_000,
        2_000,
        100,
    )
    assert (row["streamed"], row["estimated"]) == (True, False)
    # 1,000 x $3 + 2,000 x $0.30 + 100 x $15, per 1M.
    assert row["total_cost"] == Decimal("0.0051")


# ---------------------------------------------------------------------- track() blocks
def test_track_block_records_calls_inside_it_without_attach(
    tracker: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    llm = li_openai()
    wire_server.enqueue(input_tokens=100, output_tokens=10)
    with tracker.track(user_id="u2", operation="report") as run:
        assert _installed()
        llm.chat(USER_HI)
    assert not _installed()
    llm.chat(USER_HI)  # outside any block: not recorded

    [row] = rows(tracker)
    assert wire_server.request_count == 2
    assert (row["user_id"], row["operation"]) == ("u2", "report")
    summary = run.summary()
    assert (summary.calls, summary.input_tokens, summary.output_tokens) == (1, 100, 10)
    assert summary.total_cost == row["total_cost"] == Decimal("0.000021")


def test_track_block_ignores_calls_outside_its_context(
    tracker: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    llm = li_openai()
    # A plain thread does not inherit the block's context: its call is not the block's.
    with tracker.track(user_id="u2"):
        worker = threading.Thread(target=lambda: llm.chat(USER_HI))
        worker.start()
        worker.join()
        llm.chat(USER_HI)

    assert wire_server.request_count == 2
    assert len(rows(tracker)) == 1


def test_track_inside_attach_records_once_with_both_attributions(
    tracker: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    with tracker.llamaindex(user_id="u1"), tracker.track(session_id="s1", tags=["t"]) as run:
        li_openai().chat(USER_HI)

    [row] = rows(tracker)
    assert (row["user_id"], row["session_id"], list(row["tags"])) == ("u1", "s1", ["t"])
    assert run.summary().calls == 1


def test_the_handles_arguments_win_over_the_blocks_and_the_call_tags_over_both(
    tracker: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    llm = li_openai()
    with tracker.llamaindex(user_id="u1", operation="op"):
        with tracker.track(user_id="u2", operation="block", session_id="s2") as run:
            llm.chat(USER_HI)
            with instrument_tags({"user_id": "u3"}):
                llm.chat(USER_HI)

    first, tagged = rows(tracker)
    assert (first["user_id"], first["operation"], first["session_id"]) == ("u1", "op", "s2")
    assert (tagged["user_id"], tagged["operation"], tagged["session_id"]) == ("u3", "op", "s2")
    assert run.summary().calls == 2  # the block counts both


def test_stream_started_in_a_block_and_consumed_after_it_is_recorded(
    tracker: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    llm = li_openai(additional_kwargs={"stream_options": {"include_usage": True}})
    wire_server.enqueue(input_tokens=50, output_tokens=8)
    with tracker.track(operation="late"):
        stream = llm.stream_chat(USER_HI)
    for _ in stream:
        pass
    del stream

    [row] = rows(tracker)
    assert (row["operation"], row["input_tokens"], row["output_tokens"]) == ("late", 50, 8)
    assert not _installed()


# ---------------------------------------------------------------------- instrument_tags
def test_instrument_tags_attribute_the_call(
    tracker: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    llm = li_openai()
    with tracker.llamaindex(user_id="u1", tags=["app"]):
        with instrument_tags({"user_id": "u9", "session_id": "s9", "tags": ["beta"], "team": "x"}):
            llm.chat(USER_HI)
        llm.chat(USER_HI)

    tagged, plain = rows(tracker)
    assert (tagged["user_id"], tagged["session_id"]) == ("u9", "s9")
    assert list(tagged["tags"]) == ["app", "beta"]
    assert '"team":"x"' in tagged["metadata"]
    assert (plain["user_id"], plain["session_id"], list(plain["tags"])) == ("u1", None, ["app"])


# ---------------------------------------------------------------------- legacy callbacks
def test_callback_handler_alone_records_calls_and_streams(
    tracker: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    llm = guard_llm(
        li_openai(additional_kwargs={"stream_options": {"include_usage": True}}),
        tracker,
        user_id="cb",
    )
    wire_server.enqueue(input_tokens=100, output_tokens=10)
    wire_server.enqueue(input_tokens=200, output_tokens=20)
    llm.chat(USER_HI)
    for _ in llm.stream_chat(USER_HI):
        pass
    del llm

    got = rows(tracker)
    assert [(r["input_tokens"], r["output_tokens"], r["streamed"]) for r in got] == [
        (100, 10, False),
        (200, 20, True),
    ]
    assert {r["user_id"] for r in got} == {"cb"}


def test_callback_and_instrumentation_together_record_once(
    tracker: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    from llama_index.core.embeddings import MockEmbedding

    with tracker.llamaindex(user_id="u1") as handle:
        llm = handle.guard(li_openai())
        embed = MockEmbedding(embed_dim=4)
        embed.callback_manager = CallbackManager([handle.callback_handler()])
        llm.chat(USER_HI)
        embed.get_query_embedding("hello")
    del llm, embed

    got = rows(tracker)
    assert wire_server.request_count == 1
    assert [r["operation"] for r in got] == [None, "embedding"]


def test_settings_callback_manager_records_llms_created_after_it(
    tracker: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    from llama_index.core import Settings

    Settings.callback_manager = CallbackManager([TokentrailLlamaIndexCallback(tracker)])
    try:
        llm = li_openai()
        llm.chat(USER_HI)
    finally:
        Settings._callback_manager = None
    del llm
    assert len(rows(tracker)) == 1


def test_callback_records_provider_errors(
    tracker: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    import openai

    llm = guard_llm(li_openai(), tracker)
    wire_server.enqueue(Reply(status=500))
    with pytest.raises(openai.InternalServerError):
        llm.chat(USER_HI)
    del llm
    [row] = rows(tracker)
    assert (row["status"], row["error_type"], row["input_tokens"]) == (
        "error",
        "InternalServerError",
        0,
    )


# ---------------------------------------------------------------------- budget hooks
def _spend_the_budget(tracker: Any) -> None:
    tracker.budget(usd="0.0001", per="day", scope="global")
    tracker.record(model="gpt-4o-mini", usage={"input_tokens": 1_000, "output_tokens": 0})


def test_callback_refuses_an_over_budget_call_before_the_request(
    tracker: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    _spend_the_budget(tracker)
    llm = guard_llm(li_openai(), tracker)
    with pytest.raises(BudgetExceededError):
        llm.chat(USER_HI)
    del llm
    assert wire_server.request_count == 0
    assert len(rows(tracker)) == 1  # only the manual record


def test_callback_raises_the_refusal_taken_by_the_instrumentation(
    tracker: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    _spend_the_budget(tracker)
    with tracker.llamaindex() as handle:
        llm = handle.guard(li_openai())
        with pytest.raises(BudgetExceededError):
            llm.complete("hello")
    del llm
    assert wire_server.request_count == 0
    assert len(rows(tracker)) == 1


def test_an_llm_with_its_own_manager_cannot_be_stopped_by_the_instrumentation_and_says_so(
    tracker: Any,
    li_openai: Callable[..., Any],
    wire_server: WireServer,
    rows: Rows,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from llama_index.core.callbacks import CallbackManager, LlamaDebugHandler

    _spend_the_budget(tracker)
    llm = li_openai()
    # Its own handler list: the guard tracker.llamaindex() puts in Settings never reaches it.
    llm.callback_manager = CallbackManager([LlamaDebugHandler(print_trace_on_end=False)])
    with caplog.at_level(logging.WARNING, "tokentrail"), tracker.llamaindex():
        llm.chat(USER_HI)
    assert wire_server.request_count == 1
    assert len(rows(tracker)) == 2
    warning = next(
        r.getMessage() for r in caplog.records if "could not be stopped" in r.getMessage()
    )
    assert "handle.guard(llm)" in warning


def test_the_one_line_setup_stops_an_llm_made_inside_it(
    tracker: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    _spend_the_budget(tracker)
    with tracker.llamaindex():
        llm = li_openai()
        with pytest.raises(BudgetExceededError):
            llm.chat(USER_HI)
    del llm
    assert wire_server.request_count == 0
    assert len(rows(tracker)) == 1  # only the call that spent the budget


def test_a_call_another_trackers_guard_refuses_gives_back_the_reservation(
    tracker: Any,
    li_openai: Callable[..., Any],
    wire_server: WireServer,
    rows: Rows,
    tmp_path: Any,
) -> None:
    from tokentrail import Tracker

    tracker.budget(usd=5, per="day", scope="global")
    other = Tracker(tmp_path / "other.duckdb")
    try:
        _spend_the_budget(other)
        with tracker.llamaindex():
            llm = guard_llm(li_openai(), other)
            with pytest.raises(BudgetExceededError):
                llm.chat(USER_HI)
            [status] = tracker.budget_status()
        del llm
    finally:
        other.close()
    # This tracker reserved the call at its start; it was never sent, so nothing is held.
    assert (status.spent, status.reserved) == (0, 0)
    assert wire_server.request_count == 0
    assert rows(tracker) == []


def test_a_recorder_error_is_logged_and_the_call_goes_on(
    tracker: Any,
    li_openai: Callable[..., Any],
    wire_server: WireServer,
    rows: Rows,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tokentrail.integrations.llamaindex_recorder import Recorder

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(Recorder, "start_llm", broken)
    with caplog.at_level(logging.ERROR, "tokentrail"), tracker.llamaindex():
        response = li_openai().chat(USER_HI)
    assert response.message.content == Reply().text
    assert "could not handle LlamaIndex LLMChatStartEvent" in caplog.text
    assert rows(tracker) == []  # never started, so never recorded


# ---------------------------------------------------------------------- agents
def _multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def _run_agent(llm: Any) -> str:
    import asyncio

    from llama_index.core.agent.workflow import FunctionAgent

    agent = FunctionAgent(tools=[_multiply], llm=llm)

    async def main() -> str:
        return str(await agent.run("What is 6 x 7?"))

    return asyncio.run(main())


def test_agent_calling_a_tool_is_one_row_per_llm_call(
    tracker: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    call = {"name": "_multiply", "arguments": {"a": 6, "b": 7}}
    wire_server.enqueue(Reply(tool_calls=[call], input_tokens=150, output_tokens=20))
    wire_server.enqueue(Reply(text="42", input_tokens=200, output_tokens=5))
    llm = li_openai(additional_kwargs={"stream_options": {"include_usage": True}})
    with tracker.llamaindex(user_id="agent"):
        assert _run_agent(llm) == "42"

    got = rows(tracker)
    assert wire_server.count("/v1/chat/completions") == 2
    assert [(r["input_tokens"], r["output_tokens"], r["estimated"]) for r in got] == [
        (150, 20, False),
        (200, 5, False),
    ]
    assert [r["total_cost"] for r in got] == [Decimal("0.0000345"), Decimal("0.000033")]


def test_agent_stream_without_usage_estimates_tools_and_tool_calls(
    tracker: Any, li_openai: Callable[..., Any], wire_server: WireServer, rows: Rows
) -> None:
    import json

    from tokentrail.estimate import count_message_tokens, count_text_tokens

    call = {"name": "_multiply", "arguments": {"a": 6, "b": 7}}
    wire_server.enqueue(Reply(tool_calls=[call]))
    wire_server.enqueue(Reply(text="42"))
    with tracker.llamaindex():
        _run_agent(li_openai())

    first = rows(tracker)[0]
    body = wire_server.bodies()[0]
    messages = [{"role": m["role"], "content": m["content"]} for m in body["messages"]]
    prompt = count_message_tokens(messages, "gpt-4o-mini", tools=body["tools"])
    assert prompt > count_message_tokens(messages, "gpt-4o-mini")  # the tool schema counts
    assert (first["input_tokens"], first["estimated"]) == (prompt, True)
    expected_output = count_text_tokens("_multiply" + json.dumps(call["arguments"]), "gpt-4o-mini")
    assert first["output_tokens"] == expected_output
