"""What a call matches is memoized per call shape; the memo must never outlive its window
nor the budget set it was taken from (a new day, a budget added or removed)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tokentrail import BudgetExceededError, Tracker
from tokentrail.budget import BudgetGuard, PreflightRequest
from tokentrail.context import Attribution

MSG = [{"role": "user", "content": "Say hello."}]


def request(t: Tracker, user: str = "u1") -> PreflightRequest:
    ctx = t.call_context(Attribution.of(user_id=user))
    return PreflightRequest(
        model="gpt-4o-mini", provider="openai", messages=MSG, max_tokens=100, context=ctx
    )


def test_a_new_day_is_a_new_window_for_the_same_call(tracker: Tracker) -> None:
    now = [datetime(2031, 1, 15, 23, 59, 59, tzinfo=timezone.utc)]
    guard = BudgetGuard(tracker, clock=lambda: now[0])
    guard.add(tokens=150, per="day", scope="user", persist=False)
    held = guard.reserve(request(tracker))  # 110 tokens held on the 15th
    assert held is not None
    with pytest.raises(BudgetExceededError):
        guard.reserve(request(tracker))  # the same day: 110 + 110 > 150
    now[0] += timedelta(seconds=2)  # 00:00:01 on the 16th: the same call, a new window
    fresh = guard.reserve(request(tracker))
    assert fresh is not None
    [(_, first, _)] = held.entries
    [(_, second, _)] = fresh.entries
    assert "2031-01-15" in first.name and "2031-01-16" in second.name


def test_a_budget_added_after_calls_applies_to_the_next_one(tracker: Tracker) -> None:
    guard = BudgetGuard(tracker)
    guard.add(tokens=10**9, per="day", scope="user", persist=False)
    for _ in range(3):  # the call shape is memoized by now
        guard.release(guard.reserve(request(tracker)))
    tight = guard.add(tokens=50, per="month", scope="global", persist=False)
    with pytest.raises(BudgetExceededError):
        guard.reserve(request(tracker))  # 110 tokens > 50: the new budget counts
    assert not isinstance(tight, tuple)
    guard.remove(tight)
    held = guard.reserve(request(tracker))
    assert held is not None and len(held.entries) == 1  # the removed one no longer does


def test_each_user_keeps_its_own_bucket(tracker: Tracker) -> None:
    guard = BudgetGuard(tracker)
    guard.add(tokens=150, per="day", scope="user", persist=False)
    assert guard.reserve(request(tracker, "u1")) is not None
    assert guard.reserve(request(tracker, "u2")) is not None  # not u1's memo
    with pytest.raises(BudgetExceededError):
        guard.reserve(request(tracker, "u1"))
