"""LangChain handler: real ChatOpenAI / ChatAnthropic against the loopback wire server.

Expected dollar figures are the vendors' list prices, written out by hand:
gpt-4o-mini $0.15 input / $0.075 cached input / $0.60 output per 1M tokens;
claude-haiku-4-5 $1 input / $0.10 cache read / $1.25 5-minute write / $2 1-hour write /
$5 output per 1M tokens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.wire import Reply, WireServer

M = Decimal("0.000001")  # one token at $1 per 1M


def _gpt4o_mini(inp: int, cached: int, out: int) -> Decimal:
    return (
        (inp - cached) * Decimal("0.15") * M
        + cached * Decimal("0.075") * M
        + out * Decimal("0.60") * M
    )


def test_invoke_openai_row_in_duckdb(
    tracker: Any, wire_server: WireServer, chat_openai: Callable[..., Any], rows: Any
) -> None:
    wire_server.enqueue(
        Reply(input_tokens=1000, cached_tokens=400, output_tokens=200, reasoning_tokens=0)
    )
    handler = tracker.langchain(user_id="u1", session_id="s1", operation="chat", tags=["beta"])
    msg = chat_openai().invoke("hi", config={"callbacks": [handler]})
    assert msg.content == "Hello from the loopback wire."
    [row] = rows(tracker)
    assert row["framework"] == "langchain"
    assert (row["provider"], row["model"]) == ("openai", "gpt-4o-mini")
    assert (row["user_id"], row["session_id"], row["operation"]) == ("u1", "s1", "chat")
    assert row["tags"] == ["beta"]
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (1000, 400, 200)
    assert row["total_tokens"] == 1200
    # 600 x 0.15 + 400 x 0.075 + 200 x 0.60 per 1M = $0.00024
    assert row["total_cost"] == Decimal("0.00024")
    assert row["total_cost"] == _gpt4o_mini(1000, 400, 200)
    assert row["cache_read_cost"] == Decimal("0.00003")
    assert row["status"] == "ok" and row["estimated"] is False and row["streamed"] is False
    assert row["request_id"].startswith("chatcmpl-")
    assert row["latency_ms"] > 0
    assert row["run_id"] == row["trace_id"] and row["parent_run_id"] is None


def test_returned_model_name_wins(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    wire_server.enqueue(Reply(model="gpt-4o-mini-2024-07-18", input_tokens=100, output_tokens=10))
    chat_openai().invoke("hi", config={"callbacks": [tracker.langchain()]})
    [rec] = captured
    assert rec.model == "gpt-4o-mini-2024-07-18"
    assert rec.total_cost == Decimal("0.000021")  # 100 x 0.15 + 10 x 0.60 per 1M


def test_reasoning_tokens_priced_as_output(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    wire_server.enqueue(Reply(input_tokens=50, output_tokens=300, reasoning_tokens=250))
    chat_openai().invoke("think", config={"callbacks": [tracker.langchain()]})
    [rec] = captured
    assert (rec.usage.output_tokens, rec.usage.reasoning_tokens) == (300, 250)
    assert rec.total_cost == Decimal("0.0001875")  # 50 x 0.15 + 300 x 0.60 per 1M


def test_invoke_anthropic_cache_write_split(
    tracker: Any, wire_server: WireServer, chat_anthropic: Callable[..., Any], rows: Any
) -> None:
    wire_server.enqueue(
        Reply(
            input_tokens=2000,
            cached_tokens=1000,
            cache_write_5m=300,
            cache_write_1h=200,
            output_tokens=100,
        )
    )
    chat_anthropic().invoke("hi", config={"callbacks": [tracker.langchain(user_id="u2")]})
    [row] = rows(tracker)
    assert (row["provider"], row["model"]) == ("anthropic", "claude-haiku-4-5")
    assert row["input_tokens"] == 2000  # canonical: raw 500 + reads + writes
    assert (row["cache_read_tokens"], row["cache_write_tokens"], row["cache_write_1h_tokens"]) == (
        1000,
        500,
        200,
    )
    # 500 x $1 + 1000 x $0.10 + 300 x $1.25 + 200 x $2 + 100 x $5 per 1M
    assert row["total_cost"] == Decimal("0.001875")
    assert row["request_id"].startswith("msg_")


def test_stream_with_usage_chunk(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    wire_server.set_default(text="a b c d", input_tokens=80, cached_tokens=0, output_tokens=4)
    llm = chat_openai(stream_usage=True)
    text = "".join(c.content for c in llm.stream("hi", config={"callbacks": [tracker.langchain()]}))
    assert text == "a b c d"
    assert wire_server.bodies()[0]["stream_options"] == {"include_usage": True}
    [rec] = captured
    assert rec.streamed and not rec.estimated
    assert (rec.usage.input_tokens, rec.usage.output_tokens) == (80, 4)
    assert rec.total_cost == Decimal("0.0000144")  # 80 x 0.15 + 4 x 0.60 per 1M


def test_stream_without_usage_is_estimated(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    from tokentrail.estimate import encoding_for

    reply_text = "The quick brown fox jumps over the lazy dog, twice over."
    wire_server.set_default(text=reply_text, input_tokens=999, output_tokens=999)
    prompt = "Tell me about foxes and dogs in one sentence please."
    # ChatOpenAI turns stream_usage off for a custom base_url: no usage chunk arrives.
    chunks = list(chat_openai().stream(prompt, config={"callbacks": [tracker.langchain()]}))
    assert "stream_options" not in wire_server.bodies()[0]
    assert all(not c.usage_metadata for c in chunks)
    [rec] = captured
    assert rec.estimated and rec.streamed and rec.status == "ok"
    enc = encoding_for("gpt-4o-mini")
    assert enc is not None and enc.name == "o200k_base"
    assert rec.usage.output_tokens == len(enc.encode(reply_text))
    prompt_tokens = len(enc.encode(prompt))
    # The prompt's own tokens plus a few tokens of chat framing, never the server's 999.
    assert prompt_tokens < rec.usage.input_tokens <= prompt_tokens + 12
    assert rec.total_cost == _gpt4o_mini(rec.usage.input_tokens, 0, rec.usage.output_tokens)


def test_anthropic_stream_usage_from_message_delta(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_anthropic: Callable[..., Any]
) -> None:
    wire_server.set_default(text="x y z", input_tokens=1500, cached_tokens=1200, output_tokens=40)
    list(chat_anthropic().stream("hi", config={"callbacks": [tracker.langchain()]}))
    [rec] = captured
    assert rec.streamed and not rec.estimated
    assert (rec.usage.input_tokens, rec.usage.cache_read_tokens, rec.usage.output_tokens) == (
        1500,
        1200,
        40,
    )
    # 300 x $1 + 1200 x $0.10 + 40 x $5 per 1M
    assert rec.total_cost == Decimal("0.00062")


def test_batch_one_row_per_input(
    tracker: Any, wire_server: WireServer, chat_openai: Callable[..., Any], rows: Any
) -> None:
    wire_server.set_default(input_tokens=100, output_tokens=10)
    handler = tracker.langchain(operation="batch")
    out = chat_openai().batch(
        ["a", "b", "c", "d", "e"], config={"callbacks": [handler], "max_concurrency": 3}
    )
    assert len(out) == 5
    got = rows(tracker)
    assert len(got) == 5 == wire_server.request_count
    assert len({r["run_id"] for r in got}) == 5
    assert sum(r["total_cost"] for r in got) == Decimal("0.000105")  # 5 x (15 + 6) / 1M


async def test_async_invoke_stream_and_batch(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    wire_server.set_default(input_tokens=200, output_tokens=20)
    handler = tracker.langchain(user_id="async-user")
    llm = chat_openai(stream_usage=True)
    await llm.ainvoke("one", config={"callbacks": [handler]})
    async for _ in llm.astream("two", config={"callbacks": [handler]}):
        pass
    await llm.abatch(["three", "four"], config={"callbacks": [handler]})
    await asyncio.gather(*(llm.ainvoke(f"g{i}", config={"callbacks": [handler]}) for i in range(4)))
    assert len(captured) == 8 == wire_server.request_count
    assert all(r.user_id == "async-user" and not r.estimated for r in captured)
    assert [r.streamed for r in captured].count(True) == 1
    assert sum(r.total_cost for r in captured) == 8 * Decimal("0.000042")


def test_three_step_lcel_chain(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    wire_server.enqueue(Reply(text="draft", input_tokens=300, output_tokens=30))
    wire_server.enqueue(Reply(text="final", input_tokens=400, cached_tokens=200, output_tokens=50))
    llm = chat_openai()
    draft = ChatPromptTemplate.from_template("Write about {topic}") | llm | StrOutputParser()
    review = ChatPromptTemplate.from_template("Improve: {draft}") | llm | StrOutputParser()
    chain = {"draft": draft} | review
    result = chain.invoke(
        {"topic": "owls"}, config={"callbacks": [tracker.langchain(operation="pipeline")]}
    )
    assert result == "final"
    assert len(captured) == 2 == wire_server.request_count
    first, second = captured
    assert first.trace_id == second.trace_id
    assert first.trace_id not in (first.run_id, second.run_id)  # the root chain run
    assert first.parent_run_id is not None and first.parent_run_id != second.parent_run_id
    assert {r.operation for r in captured} == {"pipeline"}
    # 300 x 0.15 + 30 x 0.60, then 200 x 0.15 + 200 x 0.075 + 50 x 0.60 per 1M
    assert first.total_cost + second.total_cost == Decimal("0.000138")
    # Each chain step's tags (seq:step:N) are plumbing, not attribution.
    assert all(not any(t.startswith("seq:") for t in r.tags) for r in captured)


def test_langgraph_two_model_calls(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    wire_server.enqueue(Reply(text="plan", input_tokens=120, output_tokens=12))
    wire_server.enqueue(Reply(text="answer", input_tokens=240, output_tokens=24))
    llm = chat_openai()

    class State(TypedDict):
        question: str
        plan: str
        answer: str

    def planner(state: State) -> dict[str, str]:
        return {"plan": str(llm.invoke(state["question"]).content)}

    def solver(state: State) -> dict[str, str]:
        return {"answer": str(llm.invoke(state["plan"]).content)}

    g = StateGraph(State)
    g.add_node("planner", planner)
    g.add_node("solver", solver)
    g.add_edge(START, "planner")
    g.add_edge("planner", "solver")
    g.add_edge("solver", END)
    app = g.compile()
    out = app.invoke(
        {"question": "why?"},
        config={"callbacks": [tracker.langchain(session_id="thread-1")]},
    )
    assert out["answer"] == "answer"
    assert len(captured) == 2 == wire_server.request_count
    assert [r.metadata.get("langgraph_node") for r in captured] == ["planner", "solver"]
    assert captured[0].trace_id == captured[1].trace_id
    assert {r.session_id for r in captured} == {"thread-1"}
    # (120 + 240) x 0.15 + (12 + 24) x 0.60 per 1M
    assert sum(r.total_cost for r in captured) == Decimal("0.0000756")


def test_n_choices_count_usage_once(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    wire_server.enqueue(Reply(input_tokens=100, output_tokens=60))
    from langchain_core.messages import HumanMessage

    result = chat_openai(n=2).generate([[HumanMessage("hi")]], callbacks=[tracker.langchain()])
    assert len(result.generations[0]) == 2
    [rec] = captured
    assert (rec.usage.input_tokens, rec.usage.output_tokens) == (100, 60)
    assert rec.total_cost == Decimal("0.000051")  # 100 x 0.15 + 60 x 0.60 per 1M


def test_llm_cache_hit_is_zero_cost_row(
    tracker: Any, wire_server: WireServer, chat_openai: Callable[..., Any], rows: Any
) -> None:
    from langchain_core.caches import InMemoryCache
    from langchain_core.globals import set_llm_cache

    wire_server.set_default(input_tokens=500, output_tokens=50)
    set_llm_cache(InMemoryCache())
    try:
        llm = chat_openai()
        handler = tracker.langchain()
        a = llm.invoke("same prompt", config={"callbacks": [handler]})
        b = llm.invoke("same prompt", config={"callbacks": [handler]})
    finally:
        set_llm_cache(None)
    assert a.content == b.content
    assert wire_server.request_count == 1
    first, second = rows(tracker)
    assert first["total_cost"] == Decimal("0.000105") and '"cache_hit"' not in (
        first["metadata"] or ""
    )
    assert second["total_cost"] == 0 and second["total_tokens"] == 0
    assert '"cache_hit":true' in second["metadata"]
    assert '"saved_input_tokens":500' in second["metadata"]


def test_provider_error_row_and_exception(
    tracker: Any, wire_server: WireServer, chat_openai: Callable[..., Any], rows: Any
) -> None:
    import openai

    wire_server.enqueue(Reply(status=429, error_message="Rate limit reached"))
    with pytest.raises(openai.RateLimitError):
        chat_openai().invoke("hi", config={"callbacks": [tracker.langchain(user_id="u3")]})
    [row] = rows(tracker)
    assert row["status"] == "error" and row["error_type"].endswith("RateLimitError")
    assert row["user_id"] == "u3" and row["total_tokens"] == 0 and row["total_cost"] == 0
    assert row["request_id"] is not None


def test_anthropic_error_row(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_anthropic: Callable[..., Any]
) -> None:
    import anthropic

    wire_server.enqueue(Reply(status=529, error_message="Overloaded"))
    with pytest.raises(anthropic.APIStatusError):
        chat_anthropic().invoke("hi", config={"callbacks": [tracker.langchain()]})
    [rec] = captured
    assert rec.status == "error" and "Overloaded" in (rec.error_type or "")
    assert rec.usage.total_tokens == 0


def test_abandoned_stream_is_cancelled_with_what_was_seen(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    from tokentrail.estimate import encoding_for

    words = [f"w{i} " for i in range(40)]
    wire_server.set_default(chunks=words, chunk_delay=0.01, input_tokens=50, output_tokens=40)
    stream = chat_openai(stream_usage=True).stream(
        "go", config={"callbacks": [tracker.langchain()]}
    )
    seen = ""
    for chunk in stream:
        seen += str(chunk.content)
        if seen.count("w") >= 3:
            break
    stream.close()
    [rec] = captured
    assert rec.status == "cancelled" and rec.error_type == "GeneratorExit"
    assert rec.estimated and rec.streamed
    enc = encoding_for("gpt-4o-mini")
    assert enc is not None
    assert rec.usage.output_tokens == len(enc.encode(seen))
    assert 0 < rec.usage.output_tokens < 40


async def test_cancelled_task_is_cancelled(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    wire_server.set_default(delay=2.0)
    task = asyncio.ensure_future(
        chat_openai().ainvoke("slow", config={"callbacks": [tracker.langchain()]})
    )
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    [rec] = captured
    assert rec.status == "cancelled" and rec.error_type == "CancelledError"
    assert rec.estimated and rec.usage.input_tokens > 0 and rec.usage.output_tokens == 0


def test_attribution_from_metadata_and_tags(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    handler = tracker.langchain(user_id="handler-user", operation="op", tags=["h"])
    chat_openai().invoke(
        "hi",
        config={
            "callbacks": [handler],
            "metadata": {"user_id": "meta-user", "session_id": "meta-s", "tenant": "acme"},
            "tags": ["call-tag"],
        },
    )
    [rec] = captured
    assert (rec.user_id, rec.session_id, rec.operation) == ("meta-user", "meta-s", "op")
    assert set(rec.tags) == {"h", "call-tag"}
    assert rec.metadata.get("tenant") == "acme"
    assert not any(k.startswith("ls_") for k in rec.metadata)


def test_handler_attached_twice_records_once(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    wire_server.set_default(input_tokens=100, output_tokens=10)
    handler = tracker.langchain()
    other = tracker.langchain(user_id="second")
    llm = chat_openai(callbacks=[handler], stream_usage=True)
    llm.invoke("a", config={"callbacks": [handler, other]})
    list(llm.stream("b", config={"callbacks": [other, handler]}))
    assert len(captured) == 2 == wire_server.request_count
    assert [r.usage.output_tokens for r in captured] == [10, 10]


def test_track_block_nested_and_exception(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    wire_server.set_default(input_tokens=1000, output_tokens=100)  # $0.00021 a call
    llm = chat_openai()
    with tracker.track(user_id="u1", session_id="s1", operation="outer") as outer:
        llm.invoke("a")
        with tracker.track(operation="inner", tags=["deep"]) as inner:
            llm.invoke("b")
            llm.invoke("c", config={"callbacks": [tracker.langchain(user_id="explicit")]})
        with pytest.raises(RuntimeError), tracker.track(operation="failing") as failing:
            llm.invoke("d")
            raise RuntimeError("boom")
    llm.invoke("outside")  # no block, no handler: not recorded
    assert wire_server.request_count == 5
    assert len(captured) == 4
    a, b, c, d = captured
    assert (a.user_id, a.session_id, a.operation) == ("u1", "s1", "outer")
    assert (b.user_id, b.operation, b.tags) == ("u1", "inner", ("deep",))
    assert (c.user_id, c.operation) == ("explicit", "inner")
    assert d.operation == "failing"
    assert outer.summary().calls == 4 and inner.summary().calls == 2
    assert failing.summary().calls == 1
    assert outer.summary().total_cost == Decimal("0.00084")
    assert inner.summary().total_cost == Decimal("0.00042")
    assert outer.summary().total_tokens == 4400


async def test_track_block_async_and_threads(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    llm = chat_openai()
    with tracker.track(user_id="async-block") as run:
        await asyncio.gather(*(llm.ainvoke(str(i)) for i in range(3)))
        llm.batch(["x", "y"], config={"max_concurrency": 2})
    assert run.summary().calls == 5 == len(captured) == wire_server.request_count
    assert {r.user_id for r in captured} == {"async-block"}


def test_capture_never_raises_into_the_chain(
    tracker: Any,
    captured: list[Any],
    wire_server: WireServer,
    chat_openai: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tokentrail.integrations.langchain.handler as lc
    import tokentrail.integrations.langchain.starts as starts

    def broken(*a: Any, **k: Any) -> Any:
        raise ValueError("internal bug")

    monkeypatch.setattr(lc, "record_of", broken)
    monkeypatch.setattr(starts, "infer_provider", broken)
    monkeypatch.setattr(starts, "_PROVIDERS", {})  # inferred afresh, not from an earlier test
    tracker.subscribe(broken)
    msg = chat_openai().invoke("hi", config={"callbacks": [tracker.langchain()]})
    assert msg.content  # the call went through
    # The start could not be read, so the call is not recorded; nothing leaked out.
    monkeypatch.undo()
    tracker.subscribe(broken)
    monkeypatch.setattr(lc, "record_of", broken)
    chat_openai().invoke("hi", config={"callbacks": [tracker.langchain()]})
    [rec] = captured
    assert rec.model == "gpt-4o-mini" and rec.status == "ok"  # a bare row, still stored


def test_budget_refusal_propagates_before_the_request(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    from tokentrail import BudgetExceededError

    wire_server.set_default(input_tokens=1000, output_tokens=100)  # $0.00021 spent a call
    tracker.budget(usd="0.001", per="day", scope="global")
    llm = chat_openai(max_tokens=1000)  # worst case a call: ~$0.0006 reserved
    handler = tracker.langchain()
    llm.invoke("a", config={"callbacks": [handler]})
    llm.invoke("b", config={"callbacks": [handler]})
    with pytest.raises(BudgetExceededError):
        llm.invoke("c", config={"callbacks": [handler]})
    assert wire_server.request_count == 2 and len(captured) == 2
    with tracker.track(), pytest.raises(BudgetExceededError):
        llm.invoke("d")  # the track() handler guards too
    assert wire_server.request_count == 2


async def test_budget_refusal_propagates_async(
    tracker: Any, wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    from tokentrail import BudgetExceededError

    tracker.budget(usd="0.0001", per="day", scope="user")
    llm = chat_openai(max_tokens=1000)
    with pytest.raises(BudgetExceededError):
        await llm.ainvoke("a", config={"callbacks": [tracker.langchain(user_id="u1")]})
    with pytest.raises(BudgetExceededError):
        async for _ in llm.astream("b", config={"callbacks": [tracker.langchain(user_id="u1")]}):
            pass
    assert wire_server.request_count == 0


def test_tool_calling_agent_two_calls_one_trace(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    import warnings

    from langchain_core.tools import tool

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent

    @tool
    def lookup(city: str) -> str:
        """Weather for a city."""
        return f"sunny in {city}"

    wire_server.enqueue(
        Reply(
            tool_calls=[{"name": "lookup", "arguments": {"city": "Oslo"}}],
            input_tokens=150,
            output_tokens=15,
        )
    )
    wire_server.enqueue(Reply(text="It is sunny.", input_tokens=200, output_tokens=5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agent = create_react_agent(chat_openai(), [lookup])
    out = agent.invoke(
        {"messages": [("user", "weather in Oslo?")]},
        config={"callbacks": [tracker.langchain(operation="agent")]},
    )
    assert out["messages"][-1].content == "It is sunny."
    assert "tools" in wire_server.bodies()[0]
    assert len(captured) == 2 == wire_server.request_count
    assert captured[0].trace_id == captured[1].trace_id
    # (150 + 200) x 0.15 + (15 + 5) x 0.60 per 1M
    assert sum(r.total_cost for r in captured) == Decimal("0.0000645")


def test_text_llm_without_usage_is_estimated(tracker: Any, captured: list[Any]) -> None:
    from langchain_core.language_models.fake import FakeListLLM

    llm = FakeListLLM(responses=["forty two"])
    assert llm.invoke("What is the answer?", config={"callbacks": [tracker.langchain()]}) == (
        "forty two"
    )
    [rec] = captured
    assert rec.estimated and rec.status == "ok"
    assert rec.usage.output_tokens >= 2 and rec.usage.input_tokens >= 5


async def test_long_lived_task_keeps_no_callbacks(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    task = asyncio.current_task()
    assert task is not None
    before = len(getattr(task, "_callbacks", None) or [])
    llm = chat_openai()
    for i in range(5):
        await llm.ainvoke(str(i), config={"callbacks": [tracker.langchain()]})
    assert len(captured) == 5
    # Each call watched the task for cancellation and stopped watching when it ended.
    assert len(getattr(task, "_callbacks", None) or []) == before


def test_priority_service_tier_priced_as_priority(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    wire_server.enqueue(Reply(service_tier="priority", input_tokens=1000, output_tokens=100))
    chat_openai().invoke("hi", config={"callbacks": [tracker.langchain()]})
    [rec] = captured
    assert rec.price_variant == "priority"
    # gpt-4o-mini priority: $0.25 input / $1.00 output per 1M
    assert rec.total_cost == Decimal("0.00035")


def test_provider_from_base_url_beats_client_class(tracker: Any, captured: list[Any]) -> None:
    import uuid

    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.outputs import ChatGeneration, LLMResult
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        model="llama-3.3-70b-versatile", base_url="https://api.groq.com/openai/v1", api_key="x"
    )
    handler = tracker.langchain()
    run_id = uuid.uuid4()
    handler.on_chat_model_start(
        llm._serialized,
        [[HumanMessage("hi")]],
        run_id=run_id,
        invocation_params=llm._get_invocation_params(),
        metadata=llm._get_ls_params(),
    )
    usage = {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
    message = AIMessage("ok", usage_metadata=usage)  # type: ignore[arg-type]
    handler.on_llm_end(LLMResult(generations=[[ChatGeneration(message=message)]]), run_id=run_id)
    [rec] = captured
    assert (rec.provider, rec.model) == ("groq", "llama-3.3-70b-versatile")


async def test_abandoned_async_stream_is_cancelled(
    tracker: Any, captured: list[Any], wire_server: WireServer, chat_openai: Callable[..., Any]
) -> None:
    wire_server.set_default(chunks=[f"w{i} " for i in range(40)], chunk_delay=0.01)
    stream = chat_openai().astream("go", config={"callbacks": [tracker.langchain()]})
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    await asyncio.sleep(0)
    [rec] = captured
    assert rec.status == "cancelled" and rec.estimated
    assert rec.usage.input_tokens > 0 and rec.usage.output_tokens < 40


def test_usage_kept_when_response_has_no_model_name(tracker: Any, captured: list[Any]) -> None:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class Bare(BaseChatModel):
        model: str = "gpt-4o-mini"

        @property
        def _llm_type(self) -> str:
            return "bare"

        def _generate(self, messages: Any, stop: Any = None, **kwargs: Any) -> ChatResult:
            usage = {"input_tokens": 2000, "output_tokens": 500, "total_tokens": 2500}
            msg = AIMessage("ok", usage_metadata=usage)  # type: ignore[arg-type]
            return ChatResult(generations=[ChatGeneration(message=msg)])

    Bare().invoke("hi", config={"callbacks": [tracker.langchain()]})
    [rec] = captured
    assert rec.model == "gpt-4o-mini" and rec.usage.total_tokens == 2500
    assert rec.total_cost == Decimal("0.0006")  # 2000 x 0.15 + 500 x 0.60 per 1M
