"""The guard end to end: real LangChain / LlamaIndex clients against the loopback server.

The server answers every call with exactly the worst case the guard reserved (prompt
tokens as the guard counts them, ``max_tokens`` generated), so the number of calls that
fit a limit is known in advance and any overshoot would show.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.wire import Received, Reply, WireServer
from tokentrail import BudgetExceededError, BudgetWarning, Tracker
from tokentrail.estimate import count_message_tokens

MAX_TOKENS = 50


def _worst_case_responder(model: str = "gpt-4o-mini") -> Callable[[Received], Reply]:
    def respond(received: Received) -> Reply:
        prompt = count_message_tokens(received.body.get("messages") or [], model)
        out = int(received.body.get("max_tokens") or received.body.get("max_completion_tokens"))
        return Reply(input_tokens=prompt, output_tokens=out, delay=0.01)

    return respond


@pytest.fixture
def server(wire_server: WireServer) -> WireServer:
    wire_server.responder = _worst_case_responder()
    return wire_server


def _per_call(question: str = "Tell me a joke.") -> int:
    return count_message_tokens([{"role": "user", "content": question}], "gpt-4o-mini") + MAX_TOKENS


def _spent(tracker: Tracker, rows: Callable[..., list[dict[str, Any]]]) -> tuple[int, int]:
    data = rows(tracker)
    return len(data), sum(r["total_tokens"] for r in data)


def test_sequential_calls_stop_before_the_limit_and_never_reach_the_server(
    tracker: Tracker, server: WireServer, chat_openai: Any, rows: Any
) -> None:
    per_call = _per_call()
    tracker.budget(tokens=per_call * 5 + per_call // 2, per="day", scope="user")
    llm = chat_openai(max_tokens=MAX_TOKENS, callbacks=[tracker.langchain(user_id="u1")])
    done = 0
    with pytest.raises(BudgetExceededError) as info:
        for _ in range(20):
            llm.invoke("Tell me a joke.")
            done += 1
    assert done == 5
    assert server.request_count == 5  # the refused call never left the process
    assert info.value.spent == per_call * 5 and info.value.estimate == per_call
    assert _spent(tracker, rows) == (5, per_call * 5)


@pytest.mark.parametrize("calls", [60])
def test_batch_with_max_concurrency_never_overshoots(
    tracker: Tracker, server: WireServer, chat_openai: Any, rows: Any, calls: int
) -> None:
    per_call = _per_call()
    limit = per_call * 23 + 7
    tracker.budget(tokens=limit, per="day", scope="global")
    llm = chat_openai(max_tokens=MAX_TOKENS)
    results = llm.batch(
        ["Tell me a joke."] * calls,
        config={"max_concurrency": 12, "callbacks": [tracker.langchain(user_id="u1")]},
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert len(ok) + len(refused) == calls
    assert len(ok) == 23  # exactly what fits: every reservation settled at its worst case
    assert server.max_in_flight > 1  # the calls really overlapped
    recorded, spent = _spent(tracker, rows)
    assert spent <= limit
    assert server.request_count == recorded == len(ok)


async def test_asyncio_gather_never_overshoots(
    tracker: Tracker, server: WireServer, chat_openai: Any, rows: Any
) -> None:
    per_call = _per_call()
    limit = per_call * 17 + 3
    tracker.budget(tokens=limit, per="day", scope="user")
    llm = chat_openai(max_tokens=MAX_TOKENS, callbacks=[tracker.langchain(user_id="u1")])
    # 12 at a time: the loopback server's listen backlog (socketserver's default of 5)
    # drops connections when 60 arrive at once; reservations still race across 12 tasks.
    gate = asyncio.Semaphore(12)

    async def call() -> Any:
        async with gate:
            return await llm.ainvoke("Tell me a joke.")

    results = await asyncio.gather(*(call() for _ in range(60)), return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, BudgetExceededError) for r in errors), errors
    assert len(ok) == 17
    assert server.max_in_flight > 1
    recorded, spent = _spent(tracker, rows)
    assert spent <= limit and server.request_count == recorded == 17


def test_usd_budget_with_parallel_calls(
    tracker: Tracker, server: WireServer, chat_openai: Any, rows: Any
) -> None:
    from tokentrail import cost

    per_call = cost("gpt-4o-mini", input_tokens=_per_call() - MAX_TOKENS, output_tokens=MAX_TOKENS)
    assert per_call is not None
    limit = per_call.total * 9 + per_call.total / 2
    tracker.budget(usd=limit, per="month", scope="global")
    results = chat_openai(max_tokens=MAX_TOKENS).batch(
        ["Tell me a joke."] * 30,
        config={"max_concurrency": 8, "callbacks": [tracker.langchain()]},
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) == 9
    data = rows(tracker)
    assert sum(r["total_cost"] for r in data) <= limit
    assert server.request_count == len(data) == 9


def test_a_new_tracker_on_the_same_database_refuses_at_once(
    tmp_path: Path, server: WireServer, chat_openai: Any
) -> None:
    per_call = _per_call()
    db = tmp_path / "shared.duckdb"
    with Tracker(db) as first:
        first.budget(tokens=per_call * 3, per="day", scope="user")
        llm = chat_openai(max_tokens=MAX_TOKENS, callbacks=[first.langchain(user_id="u1")])
        for _ in range(3):
            llm.invoke("Tell me a joke.")
    assert server.request_count == 3
    with Tracker(db) as second:  # a restart: spend comes back from the database
        second.budget(tokens=per_call * 3, per="day", scope="user")
        llm = chat_openai(max_tokens=MAX_TOKENS, callbacks=[second.langchain(user_id="u1")])
        with pytest.raises(BudgetExceededError) as info:
            llm.invoke("Tell me a joke.")
        assert info.value.spent == per_call * 3
        other = chat_openai(max_tokens=MAX_TOKENS, callbacks=[second.langchain(user_id="u2")])
        other.invoke("Tell me a joke.")
    assert server.request_count == 4


def test_one_users_budget_never_blocks_another(
    tracker: Tracker, server: WireServer, chat_openai: Any
) -> None:
    tracker.budget(tokens=_per_call() * 2, per="day", scope="user")
    alice = chat_openai(max_tokens=MAX_TOKENS, callbacks=[tracker.langchain(user_id="alice")])
    bob = chat_openai(max_tokens=MAX_TOKENS, callbacks=[tracker.langchain(user_id="bob")])
    alice.invoke("Tell me a joke.")
    alice.invoke("Tell me a joke.")
    with pytest.raises(BudgetExceededError) as info:
        alice.invoke("Tell me a joke.")
    assert info.value.key == "alice"
    bob.invoke("Tell me a joke.")
    bob.invoke("Tell me a joke.")
    # track() attribution reaches the guard too
    with tracker.track(user_id="carol"):
        chat_openai(max_tokens=MAX_TOKENS).invoke(
            "Tell me a joke.", config={"callbacks": [tracker.langchain()]}
        )
    assert server.request_count == 5


def test_warnings_fire_once_per_threshold(
    tracker: Tracker, server: WireServer, chat_openai: Any
) -> None:
    per_call = _per_call()
    seen: list[float] = []
    tracker.budget(
        tokens=per_call * 10,
        per="day",
        scope="user",
        warn_at=(0.5, 0.8),
        on_warn=lambda s: seen.append(s.percent),
    )
    llm = chat_openai(max_tokens=MAX_TOKENS, callbacks=[tracker.langchain(user_id="u1")])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(10):
            llm.invoke("Tell me a joke.")
    messages = [str(w.message) for w in caught if issubclass(w.category, BudgetWarning)]
    assert len(messages) == 2
    assert messages[0].startswith("⚠️ 50% of daily limit used for user 'u1' — Tokens: ")
    assert messages[1].startswith("⚠️ 80% of daily limit used")
    assert seen == [50.0, 80.0]


def test_anthropic_calls_are_stopped_too(
    tracker: Tracker, wire_server: WireServer, chat_anthropic: Any
) -> None:
    wire_server.set_default(input_tokens=20, output_tokens=MAX_TOKENS)
    tracker.budget(tokens=200, per="day", scope="global")
    llm = chat_anthropic(max_tokens=MAX_TOKENS, callbacks=[tracker.langchain()])
    sent = 0
    with pytest.raises(BudgetExceededError):
        for _ in range(10):
            llm.invoke("Tell me a joke.")
            sent += 1
    assert wire_server.count("/v1/messages") == sent >= 1
    assert 70 * sent <= 200


def test_llamaindex_calls_are_stopped_too(tracker: Tracker, server: WireServer, rows: Any) -> None:
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai import OpenAI

    from tokentrail.integrations.llamaindex import guard_llm

    per_call = (
        count_message_tokens([{"role": "user", "content": "Tell me a joke."}], "gpt-4o-mini")
        + MAX_TOKENS
    )
    tracker.budget(tokens=per_call * 3 + 5, per="day", scope="user")
    llm = OpenAI(
        model="gpt-4o-mini",
        api_base=server.openai_base_url,
        api_key="test",
        max_retries=0,
        max_tokens=MAX_TOKENS,
    )
    llm = guard_llm(llm, tracker, user_id="u1")
    sent = 0
    with pytest.raises(BudgetExceededError):
        for _ in range(10):
            llm.chat([ChatMessage(role="user", content="Tell me a joke.")])
            sent += 1
    assert sent == 3 and server.request_count == 3
    recorded, spent = _spent(tracker, rows)
    assert recorded == 3 and spent <= per_call * 3 + 5


def test_the_readme_llamaindex_snippet_is_stopped_without_a_guard_step(
    tracker: Tracker, server: WireServer, rows: Any
) -> None:
    """issue 20 (5): a user reached 169% of a limit through the one-line setup."""
    from llama_index.core import Settings
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai import OpenAI

    per_call = (
        count_message_tokens([{"role": "user", "content": "Tell me a joke."}], "gpt-4o-mini")
        + MAX_TOKENS
    )
    tracker.budget(tokens=per_call * 3 + 5, per="day", scope="user")
    before = list(Settings.callback_manager.handlers)
    sent = 0
    with tracker.llamaindex(user_id="u1"):  # the README's words, no .guard(llm)
        llm = OpenAI(
            model="gpt-4o-mini",
            api_base=server.openai_base_url,
            api_key="test",
            max_retries=0,
            max_tokens=MAX_TOKENS,
        )
        with pytest.raises(BudgetExceededError):
            for _ in range(10):
                llm.chat([ChatMessage(role="user", content="Tell me a joke.")])
                sent += 1
    assert sent == 3 and server.request_count == 3
    recorded, spent = _spent(tracker, rows)
    assert recorded == 3 and spent <= per_call * 3 + 5
    assert Settings.callback_manager.handlers == before  # detaching takes the guard away


def test_a_refusal_is_not_logged_by_langchain_as_a_handler_error(
    tracker: Tracker, server: WireServer, chat_openai: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """issue 25: LangChain logged "Error in TokentrailCallbackHandler.on_chat_model_start"
    for a refusal that was on purpose; other handlers' errors are still logged."""
    from langchain_core.callbacks import BaseCallbackHandler

    class Broken(BaseCallbackHandler):
        def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("a bug in someone else's handler")

    tracker.budget(tokens=1, per="day", scope="user")
    llm = chat_openai(max_tokens=MAX_TOKENS)
    with caplog.at_level(logging.WARNING), pytest.raises(BudgetExceededError):
        llm.invoke("Tell me a joke.", config={"callbacks": [Broken(), tracker.langchain()]})
    lines = [r.getMessage() for r in caplog.records]
    assert not [line for line in lines if "TokentrailCallbackHandler" in line]
    assert [line for line in lines if "Error in Broken.on_chat_model_start" in line]
    assert server.request_count == 0
