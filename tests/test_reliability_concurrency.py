"""Concurrency: many calls at once through both integrations, counted and priced exactly.

32 threads and 500 asyncio tasks drive LangChain (a callback handler on an in-process chat
model, and the real ``ChatOpenAI`` over the loopback wire) and LlamaIndex (instrumentation
on an in-process ``CustomLLM``, and the real ``llama_index.llms.openai.OpenAI``). Every
call's token counts differ, so the database's row count and ``sum(total_cost)`` (DECIMAL,
exact) catch a lost, doubled or mispriced row. With a budget: the guard's reservations
are atomic, so the settled spend never passes the limit however the calls interleave.

CI sizes here; ``tests/soak`` runs the full 10,000 calls per integration.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from tests.concurrency_load import (
    MAX_TOKENS,
    MODEL,
    CountingChat,
    CountingLLM,
    Load,
    assert_exact,
    cost_of,
    drive,
    index_of,
    langchain_load,
    llamaindex_load,
    totals,
    usage_of,
)
from tests.wire import Reply, WireServer
from tokentrail import BudgetExceededError, Tracker
from tokentrail.estimate import count_message_tokens, count_text_tokens

CI_LOAD = Load(threads=32, per_thread=25, tasks=500)  # 1,300 calls per integration


def test_langchain_threads_and_tasks_store_exactly_one_priced_row_per_call(
    tmp_path: Path,
) -> None:
    db = tmp_path / "usage.duckdb"
    out = langchain_load(db, CI_LOAD)
    assert out["errors"] == []
    assert_exact(db, CI_LOAD.total)


def test_llamaindex_threads_and_tasks_store_exactly_one_priced_row_per_call(
    tmp_path: Path,
) -> None:
    db = tmp_path / "usage.duckdb"
    out = llamaindex_load(db, CI_LOAD)
    assert out["errors"] == []
    assert_exact(db, CI_LOAD.total)


# ---------------------------------------------------------------------- real clients
@pytest.fixture
def counting_wire(wire_server: WireServer) -> Iterator[WireServer]:
    """The loopback server answering ``call <i>`` with call ``i``'s usage."""

    def responder(received: Any) -> Reply:
        messages = received.body.get("messages") or [{}]
        inp, out = usage_of(index_of(str(messages[-1].get("content", "0"))))
        return Reply(input_tokens=inp, output_tokens=out, text="ok")

    wire_server.responder = responder
    # The stdlib server listens with a backlog of 5: 100 tasks connecting at once would
    # be refused by the kernel. Listening again on Linux just raises the backlog.
    wire_server._httpd.socket.listen(512)
    yield wire_server


REAL_LOAD = Load(threads=32, per_thread=2, tasks=60)  # 124 HTTP calls per client


def test_real_chat_openai_over_loopback_under_threads_and_tasks(
    tmp_path: Path, counting_wire: WireServer
) -> None:
    from langchain_openai import ChatOpenAI

    db = tmp_path / "usage.duckdb"
    model = ChatOpenAI(
        model=MODEL, base_url=counting_wire.openai_base_url, api_key="test", max_retries=0
    )
    with Tracker(db) as tracker:
        config = {"callbacks": [tracker.langchain()]}
        errors = drive(
            REAL_LOAD,
            lambda i: model.invoke(f"call {i}", config=config),
            lambda i: model.ainvoke(f"call {i}", config=config),
        )
        assert tracker.flush(60)
    assert errors == []
    assert len(counting_wire.requests) == REAL_LOAD.total
    assert_exact(db, REAL_LOAD.total)


def test_real_llamaindex_openai_over_loopback_under_threads_and_tasks(
    tmp_path: Path, counting_wire: WireServer
) -> None:
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai import OpenAI

    db = tmp_path / "usage.duckdb"
    llm = OpenAI(model=MODEL, api_base=counting_wire.openai_base_url, api_key="test", max_retries=0)
    with Tracker(db) as tracker:
        handle = tracker.llamaindex()
        try:
            errors = drive(
                REAL_LOAD,
                lambda i: llm.chat([ChatMessage(role="user", content=f"call {i}")]),
                lambda i: llm.achat([ChatMessage(role="user", content=f"call {i}")]),
            )
        finally:
            handle.detach()
        assert tracker.flush(60)
    assert errors == []
    assert len(counting_wire.requests) == REAL_LOAD.total
    assert_exact(db, REAL_LOAD.total)


# ---------------------------------------------------------------------- budget
LIMIT = Decimal("0.005")  # about 200 worst-case calls of ~25 tokens in, 40 out
BUDGET_LOAD = Load(threads=32, per_thread=12, tasks=500)  # 884 attempts: most are refused


def _budget_outcome(db: Path, tracker: Tracker, errors: list[Any]) -> dict[str, Any]:
    assert tracker.flush(60)
    refused = [e for e in errors if isinstance(e, BudgetExceededError)]
    assert len(refused) == len(errors), f"unexpected errors: {errors[:3]}"
    rows, ids, spent, unpriced = totals(db)
    (status,) = tracker.budget_status()
    return {
        "allowed": BUDGET_LOAD.total - len(refused),
        "refused": len(refused),
        "rows": rows,
        "ids": ids,
        "spent": spent,
        "unpriced": unpriced,
        "guard_spent": status.spent,
        "guard_reserved": status.reserved,
    }


def _assert_no_overshoot(out: dict[str, Any], worst: Decimal) -> None:
    assert out["refused"] > 0, "the budget never bit: the test proves nothing"
    assert out["rows"] == out["ids"] == out["allowed"]  # refused calls are not recorded
    assert out["unpriced"] == 0
    assert out["spent"] <= LIMIT, f"overshoot: {out['spent']} > {LIMIT}"
    assert out["guard_spent"] == out["spent"]  # the guard's ledger agrees with the file
    assert out["guard_reserved"] == 0  # every reservation settled or released
    # Not trivially refusing: after the run less than one worst-case call is left.
    assert LIMIT - out["spent"] < worst * BUDGET_LOAD.threads, out


def test_langchain_budget_never_overshoots_under_threads_and_tasks(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    model = CountingChat(worst_case=True)
    with Tracker(db) as tracker:
        tracker.budget(usd=LIMIT, per="day", scope="global", warn_at=())
        config = {"callbacks": [tracker.langchain()]}
        errors = drive(
            BUDGET_LOAD,
            lambda i: model.invoke([HumanMessage(f"call {i}")], config=config),
            lambda i: model.ainvoke([HumanMessage(f"call {i}")], config=config),
        )
        out = _budget_outcome(db, tracker, errors)
    print(f"\nLangChain budget: {out}")
    payload = [{"role": "user", "content": "call 100"}]
    worst = cost_of(count_message_tokens(payload, model=MODEL), MAX_TOKENS)
    _assert_no_overshoot(out, worst)


def test_llamaindex_budget_never_overshoots_under_threads_and_tasks(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        tracker.budget(usd=LIMIT, per="day", scope="global", warn_at=())
        handle = tracker.llamaindex()
        llm = handle.guard(CountingLLM(worst_case=True))  # the path that can refuse
        try:
            errors = drive(
                BUDGET_LOAD,
                lambda i: llm.complete(f"call {i}"),
                lambda i: llm.acomplete(f"call {i}"),
            )
        finally:
            handle.detach()
        out = _budget_outcome(db, tracker, errors)
    print(f"\nLlamaIndex budget: {out}")
    worst = cost_of(count_text_tokens("call 100", model=MODEL), MAX_TOKENS)
    _assert_no_overshoot(out, worst)
