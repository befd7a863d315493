"""Budget windows and scopes: pure rules (time zones, day boundaries, rolling lengths)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tokentrail.budget import calendar_span, parse_scope, parse_window
from tokentrail.budget.scopes import NOT_APPLICABLE
from tokentrail.context import Attribution

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")


def test_day_in_utc() -> None:
    start, end = calendar_span("day", datetime(2026, 11, 23, 15, 30, tzinfo=UTC), UTC)
    assert (start, end) == (datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC))


def test_day_boundary_follows_time_zone() -> None:
    # 23:30 UTC on the 23rd is already 00:30 on the 24th in Paris (UTC+1 in November).
    now = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    start, end = calendar_span("day", now, PARIS)
    assert start == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)
    assert end == datetime(2026, 11, 24, 23, 0, tzinfo=UTC)
    assert calendar_span("day", now - timedelta(hours=1), PARIS)[0] == datetime(
        2026, 11, 22, 23, 0, tzinfo=UTC
    )


def test_dst_day_is_23_hours_long() -> None:
    start, end = calendar_span("day", datetime(2026, 3, 29, 12, tzinfo=UTC), PARIS)
    assert end - start == timedelta(hours=23)


def test_week_starts_monday_and_month_on_the_first() -> None:
    now = datetime(2026, 11, 26, 9, tzinfo=UTC)  # a Thursday
    start, end = calendar_span("week", now, UTC)
    assert start == datetime(2026, 11, 23, tzinfo=UTC) and start.weekday() == 0
    assert end - start == timedelta(days=7)
    start, end = calendar_span("month", datetime(2026, 12, 31, 23, tzinfo=UTC), UTC)
    assert (start, end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert calendar_span("month", datetime(2026, 2, 10, tzinfo=UTC), UTC)[1] == datetime(
        2026, 3, 1, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("per", "kind", "length"),
    [
        ("day", "calendar", None),
        ("daily", "calendar", None),
        ("month", "calendar", None),
        ("total", "total", None),
        ("session", "session", None),
        ("run", "run", None),
        ("call", "call", None),
        ("24h", "rolling", timedelta(hours=24)),
        ("7d", "rolling", timedelta(days=7)),
        ("30m", "rolling", timedelta(minutes=30)),
        (timedelta(hours=2), "rolling", timedelta(hours=2)),
    ],
)
def test_parse_window(per: str | timedelta, kind: str, length: timedelta | None) -> None:
    window = parse_window(per)
    assert window.kind == kind and window.length == length


@pytest.mark.parametrize("bad", ["fortnight", "0h", "-1d", ""])
def test_bad_windows_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_window(bad)


def test_scopes_pick_their_key() -> None:
    a = Attribution.of(user_id="u1", session_id="s1", operation="chat", tags=["beta"])
    assert parse_scope("global").key_for(a, "gpt-4o") is None
    assert parse_scope("user").key_for(a, "gpt-4o") == "u1"
    assert parse_scope("session").key_for(a, "gpt-4o") == "s1"
    assert parse_scope("operation").key_for(a, "gpt-4o") == "chat"
    assert parse_scope("model").key_for(a, "gpt-4o") == "gpt-4o"
    assert parse_scope("tag:beta").key_for(a, None) == "beta"
    assert parse_scope("tag:prod").key_for(a, None) is NOT_APPLICABLE
    with pytest.raises(ValueError):
        parse_scope("team")
    with pytest.raises(ValueError):
        parse_scope("tag:")


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"usd": "abc"}, "usd must be a non-negative amount"),
        ({"usd": True}, "usd must be a non-negative amount"),
        ({"usd": 1, "warn_at": [1.5]}, "warn_at takes fractions"),
        ({"usd": 1, "warn_at": [75]}, "such as 0.75"),
        ({"usd": 1, "warn_at": ["soon"]}, "warn_at takes fractions"),
        ({"usd": 1, "tz": "Mars/Base"}, "unknown time zone 'Mars/Base'"),
    ],
)
def test_bad_budget_arguments_say_what_is_wrong(
    tmp_path: Path, arguments: dict[str, Any], says: str
) -> None:
    # A threshold of 1.5 or 75 (a percent) used to vanish without a word: no alert ever.
    from tokentrail import Tracker

    with Tracker(tmp_path / "usage.duckdb") as tracker:
        with pytest.raises(ValueError, match=says):
            tracker.budget(**arguments)
        assert tracker.budget_status() == []


def test_warn_at_thresholds_are_sorted_once_each(tmp_path: Path) -> None:
    from tokentrail import Tracker

    with Tracker(tmp_path / "usage.duckdb") as tracker:
        budget = tracker.budget(usd=1, warn_at=[0.9, 0.5, 0.9, 1])
        assert budget.warn_at == (0.5, 0.9, 1.0)
