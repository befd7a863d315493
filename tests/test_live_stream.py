"""``tracker.live()`` moves *during* a streamed call (issue 25), not only at its end.

Real streaming calls over SSE from the loopback wire server: ``langchain-openai``
(``ChatOpenAI.stream`` and the text-completion ``OpenAI.stream``) and
``llama-index-llms-openai`` (``stream_chat``). While the consumer is still reading chunks the
counter already shows the output tokens streamed so far (estimated with tiktoken: the wire
sends one word a chunk, with its leading space as OpenAI streams tokens: one token each);
when the
stream ends the call's record replaces the estimate by the exact usage the provider sent
(OpenAI's final ``include_usage`` chunk, https://platform.openai.com/docs/api-reference/chat-streaming).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.wire import Reply, WireServer

WORDS = "one two three four five six seven eight nine ten"
# The exact usage the final chunk reports: deliberately not the estimate.
EXACT_IN, EXACT_OUT = 100, 25


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _reply(**kwargs: Any) -> Reply:
    words = WORDS.split(" ")
    pieces = [words[0], *(" " + w for w in words[1:])]
    return Reply(
        text=WORDS, chunks=pieces, input_tokens=EXACT_IN, output_tokens=EXACT_OUT, **kwargs
    )


def _follow(chunks: Iterator[Any], counter: Any) -> list[tuple[int, int]]:
    """(finished calls, tokens shown) after each chunk the consumer receives."""
    return [(counter.calls, counter.total_tokens) for _ in chunks]


def _check_rises_then_exact(
    seen: list[tuple[int, int]], counter: Any, final: int = EXACT_IN + EXACT_OUT
) -> None:
    during = [tokens for calls, tokens in seen if calls == 0]
    # While streaming (no call finished yet) the counter rose one token a word...
    # (chunks without text, the role chunk first and the finish chunk last, add nothing)
    assert during == sorted(during) and sorted(set(during) - {0}) == list(range(1, 11))
    # ...and the end replaced the estimate by the call's own usage.
    assert (counter.calls, counter.tokens) == (1, final)
    assert counter.streaming_tokens == 0
    assert counter.total_tokens == final


def test_langchain_chat_stream_moves_the_counter_before_it_ends(
    tracker: Any, chat_openai: Callable[..., Any], wire_server: WireServer
) -> None:
    wire_server.enqueue(_reply())
    llm = chat_openai(model="gpt-4o-mini", stream_usage=True)
    with tracker.live(mode="off") as counter:
        chunks = llm.stream("count to ten", config={"callbacks": [tracker.langchain()]})
        seen = _follow(chunks, counter)
    _check_rises_then_exact(seen, counter)


def test_langchain_completion_stream_moves_the_counter_before_it_ends(
    tracker: Any, wire_server: WireServer, rows: Any
) -> None:
    from langchain_openai import OpenAI

    wire_server.enqueue(_reply())
    llm = OpenAI(
        model="gpt-3.5-turbo-instruct",
        base_url=wire_server.openai_base_url,
        api_key="test",
        max_retries=0,
        model_kwargs={"stream_options": {"include_usage": True}},
    )
    with tracker.live(mode="off") as counter:
        seen = _follow(llm.stream("count", config={"callbacks": [tracker.langchain()]}), counter)
    # langchain-openai's text-completion stream drops the usage chunk: the record is
    # estimated (prompt + the ten streamed tokens), and that is what the counter ends on.
    [row] = rows(tracker)
    assert row["estimated"] is True and row["output_tokens"] == 10
    _check_rises_then_exact(seen, counter, row["total_tokens"])


def test_llamaindex_stream_moves_the_counter_before_it_ends(
    tracker: Any,
    li_openai: Callable[..., Any],
    wire_server: WireServer,
    llamaindex_left_clean: None,
) -> None:
    from llama_index.core.base.llms.types import ChatMessage

    # llama-index-llms-openai does not ask for the usage chunk: the server sends it anyway
    # (as an OpenAI-compatible server may), so the end has exact counts to replace with.
    wire_server.enqueue(_reply(stream_usage=True))
    handle = tracker.llamaindex()
    try:
        with tracker.live(mode="off") as counter:
            stream = li_openai().stream_chat([ChatMessage(role="user", content="count")])
            seen = _follow(stream, counter)
    finally:
        handle.detach()
    _check_rises_then_exact(seen, counter)


async def test_async_streams_move_the_counter_too(
    tracker: Any,
    chat_openai: Callable[..., Any],
    li_openai: Callable[..., Any],
    wire_server: WireServer,
    llamaindex_left_clean: None,
) -> None:
    from llama_index.core.base.llms.types import ChatMessage

    wire_server.enqueue(_reply())
    llm = chat_openai(model="gpt-4o-mini", stream_usage=True)
    with tracker.live(mode="off") as counter:
        seen = [
            (counter.calls, counter.total_tokens)
            async for _ in llm.astream("count", config={"callbacks": [tracker.langchain()]})
        ]
    _check_rises_then_exact(seen, counter)

    wire_server.enqueue(_reply(stream_usage=True))
    handle = tracker.llamaindex()
    try:
        with tracker.live(mode="off") as counter:
            stream = await li_openai().astream_chat([ChatMessage(role="user", content="count")])
            seen = [(counter.calls, counter.total_tokens) async for _ in stream]
    finally:
        handle.detach()
    _check_rises_then_exact(seen, counter)


def test_terminal_line_shows_the_stream_growing_then_the_exact_total(
    tracker: Any, chat_openai: Callable[..., Any], wire_server: WireServer
) -> None:
    wire_server.enqueue(_reply())
    out = _Tty()
    llm = chat_openai(model="gpt-4o-mini", stream_usage=True)
    with tracker.live(stream=out, interval=0):
        for _ in llm.stream("count", config={"callbacks": [tracker.langchain()]}):
            pass
    lines = out.getvalue().split("\r")
    assert "Tokens: 5 ↑ | Cost: $0.00\x1b[K" in lines  # five words in, nothing finished
    # gpt-4o-mini: 100 x $0.15 + 25 x $0.60 per 1M = $0.00003 (https://openai.com/api/pricing)
    assert lines[-1] == "Tokens: 125 | Cost: $0.0000\x1b[K\n"


def test_nothing_is_reported_while_no_counter_watches(
    tracker: Any, chat_openai: Callable[..., Any], wire_server: WireServer, monkeypatch: Any
) -> None:
    reported: list[str] = []
    monkeypatch.setattr(tracker, "streamed", lambda run_id, text, model: reported.append(text))
    assert tracker.watching_streams is False
    wire_server.enqueue(_reply())
    llm = chat_openai(model="gpt-4o-mini", stream_usage=True)
    for _ in llm.stream("count", config={"callbacks": [tracker.langchain()]}):
        pass
    assert reported == []
    counter = tracker.live(mode="off")
    assert tracker.watching_streams is True
    counter.stop()
    assert tracker.watching_streams is False


def test_a_failing_stream_listener_never_reaches_the_call(
    tracker: Any, chat_openai: Callable[..., Any], wire_server: WireServer, caplog: Any
) -> None:
    def broken(run_id: str, text: str, model: str | None) -> None:
        raise RuntimeError("listener bug")

    tracker.subscribe(lambda record: None, broken)
    wire_server.enqueue(_reply())
    llm = chat_openai(model="gpt-4o-mini", stream_usage=True)
    pieces = [c.content for c in llm.stream("count", config={"callbacks": [tracker.langchain()]})]
    assert "".join(str(p) for p in pieces) == WORDS
    assert "a stream listener failed" in caplog.text


@pytest.fixture
def tracker(tmp_path: Any) -> Iterator[Any]:
    from tokentrail import Tracker

    t = Tracker(tmp_path / "usage.duckdb")
    try:
        yield t
    finally:
        t.close()
