"""A text completion is reserved under the operation it is stored under.

LangChain's text-completion LLMs (``on_llm_start``) and LlamaIndex ``complete()`` are
stored with ``operation="text_completion"`` when the user names none. The budget guard
must see that operation at reserve time too: a budget scoped to it refuses the call
before its request leaves (it once reserved such calls under "no operation", so an
operation-scoped budget never stopped them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import INSTRUCT
from tests.wire import Reply, WireServer
from tokentrail import BudgetExceededError, Tracker


@pytest.fixture
def tracker(tmp_path: Any) -> Iterator[Tracker]:
    t = Tracker(tmp_path / "usage.duckdb")
    # Only text completions are limited, to fewer tokens than one call may use.
    t.budget(tokens=50, per="day", scope="operation", key="text_completion")
    try:
        yield t
    finally:
        t.close()


def test_a_langchain_completion_is_refused_by_its_operations_budget(
    tracker: Tracker, wire_server: WireServer, lc_completion: Callable[..., Any]
) -> None:
    wire_server.enqueue(Reply(input_tokens=10, output_tokens=10))
    with pytest.raises(BudgetExceededError):
        lc_completion().invoke("Write a long story.", config={"callbacks": [tracker.langchain()]})
    assert wire_server.requests == []  # refused before the request left


def test_the_users_operation_is_reserved_instead(
    tracker: Tracker,
    wire_server: WireServer,
    lc_completion: Callable[..., Any],
    rows: Callable[..., list[dict[str, Any]]],
) -> None:
    # A named operation is the call's operation for the guard and the row alike: the
    # text_completion budget does not apply, so the request leaves.
    wire_server.enqueue(Reply(input_tokens=10, output_tokens=10))
    handler = tracker.langchain(operation="summarize")
    lc_completion().invoke("x", config={"callbacks": [handler]})
    assert len(wire_server.requests) == 1
    [row] = rows(tracker)
    assert row["operation"] == "summarize"


def test_a_llamaindex_complete_is_refused_by_its_operations_budget(
    tracker: Tracker,
    wire_server: WireServer,
    li_openai: Callable[..., Any],
    llamaindex_left_clean: None,
) -> None:
    wire_server.enqueue(Reply(input_tokens=10, output_tokens=10))
    handle = tracker.llamaindex()
    try:
        with pytest.raises(BudgetExceededError):
            li_openai(model=INSTRUCT).complete("Write a long story.")
    finally:
        handle.detach()
    assert wire_server.requests == []
