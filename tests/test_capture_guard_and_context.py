"""Capture under a budget and across contexts: DST hour windows, refused batches, track() blocks
left in another context."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from langchain_core.messages import HumanMessage

from tests.wire import Reply, WireServer
from tokentrail import BudgetExceededError
from tokentrail.budget.windows import calendar_span


@pytest.mark.parametrize(
    "now",
    [
        datetime(2025, 11, 2, 5, 30, tzinfo=timezone.utc),  # 01:30 EDT, first pass
        datetime(2025, 11, 2, 6, 30, tzinfo=timezone.utc),  # 01:30 EST, second pass
        datetime(2025, 3, 9, 6, 30, tzinfo=timezone.utc),  # 01:30 EST, before spring forward
        datetime(2025, 3, 9, 7, 30, tzinfo=timezone.utc),  # 03:30 EDT, after it
    ],
)
def test_hourly_window_is_one_hour_across_dst_changes(now: datetime) -> None:
    start, end = calendar_span("hour", now, ZoneInfo("America/New_York"))
    assert start <= now < end
    assert end - start == timedelta(hours=1)


def test_hourly_budget_does_not_span_the_repeated_dst_hour(tracker: Any) -> None:
    from tokentrail.budget import BudgetGuard

    clock = [datetime(2025, 11, 2, 5, 30, tzinfo=timezone.utc)]
    guard = BudgetGuard(tracker, loader=None, clock=lambda: clock[0])
    guard.add(tokens=1000, per="hour", scope="global", tz="America/New_York")
    tracker._guard = guard
    tracker.record(model="gpt-4o-mini", usage={"input_tokens": 900}, ts=clock[0])
    clock[0] = datetime(2025, 11, 2, 6, 30, tzinfo=timezone.utc)  # the next (repeated) hour
    status = guard.status()
    assert [s.spent for s in status] == [0]


def test_refused_batch_releases_the_reservations_of_earlier_prompts(
    tracker: Any, chat_openai: Callable[..., Any], wire_server: WireServer, rows: Any
) -> None:
    # Two message lists in one generate(): the first fits, the second is refused. The
    # request is never sent, so the first prompt's reservation must be given back.
    tracker.budget(tokens=150, per="day")
    handler = tracker.langchain(user_id="u1")
    llm = chat_openai(max_tokens=100)
    with pytest.raises(BudgetExceededError):
        llm.generate([[HumanMessage("hi")], [HumanMessage("ho")]], callbacks=[handler])
    assert wire_server.request_count == 0
    assert [s.reserved for s in tracker.budget_status()] == [0]
    wire_server.enqueue(Reply(text="ok", input_tokens=8, output_tokens=2))
    llm.invoke("hi", config={"callbacks": [handler]})  # fits once nothing is held
    assert [(r["user_id"], r["total_tokens"]) for r in rows(tracker)] == [("u1", 10)]


def test_track_block_exited_in_another_context_does_not_raise(
    tracker: Any, chat_openai: Callable[..., Any], wire_server: WireServer, rows: Any
) -> None:
    # A generator streamed by a server runs each step in a fresh copy of the context
    # (anyio's to_thread does that): the block ends in another context than it began.
    wire_server.set_default(Reply(text="hello", input_tokens=5, output_tokens=1))
    llm = chat_openai()

    def stream() -> Iterator[str]:
        with tracker.track(user_id="u9") as run:
            yield str(llm.invoke("hi").content)
            yield str(run.summary().calls)

    steps = stream()
    out = [contextvars.copy_context().run(next, steps) for _ in range(2)]
    with pytest.raises(StopIteration):
        contextvars.copy_context().run(next, steps)
    assert out == ["hello", "1"]
    assert [r["user_id"] for r in rows(tracker)] == ["u9"]
    # The block is gone from this context too: a later call is not attributed to it.
    llm.invoke("hi", config={"callbacks": [tracker.langchain()]})
    assert [r["user_id"] for r in rows(tracker)] == ["u9", None]
