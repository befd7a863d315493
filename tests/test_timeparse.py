"""Parsing the times people type: durations, named periods, ISO dates and datetimes."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from tokentrail.timeparse import month_end, parse_time, period_start, time_range

NOW = datetime(2026, 11, 23, 15, 30, tzinfo=timezone.utc)  # a Monday


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - timedelta(days=7)),
        ("24h", NOW - timedelta(hours=24)),
        ("30m", NOW - timedelta(minutes=30)),
        ("2w", NOW - timedelta(weeks=2)),
        ("1.5h", NOW - timedelta(minutes=90)),
        ("now", NOW),
        ("today", utc(2026, 11, 23)),
        ("yesterday", utc(2026, 11, 22)),
        ("this-week", utc(2026, 11, 23)),
        ("last-week", utc(2026, 11, 16)),
        ("this-month", utc(2026, 11, 1)),
        ("this month", utc(2026, 11, 1)),
        ("last-month", utc(2026, 10, 1)),
        ("this-year", utc(2026, 1, 1)),
        ("2026-11-01", utc(2026, 11, 1)),
        ("2026-11-01T09:15", utc(2026, 11, 1, 9, 15)),
        ("2026-11-01T09:15:00Z", utc(2026, 11, 1, 9, 15)),
        ("2026-11-01 09:15:00+02:00", utc(2026, 11, 1, 7, 15)),
    ],
)
def test_parse(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW) == expected


def test_named_periods_follow_the_time_zone() -> None:
    # 15:30 UTC is already the 24th in Tokyo (UTC+9): "today" starts at 24th 00:00 JST.
    assert parse_time("today", now=NOW, tz="Asia/Tokyo") == utc(2026, 11, 23, 15)
    assert parse_time("this-month", now=NOW, tz="America/New_York") == utc(2026, 11, 1, 4)


def test_naive_datetimes_and_dates_are_read_in_tz() -> None:
    assert parse_time(datetime(2026, 1, 1, 12), tz="Europe/Paris") == utc(2026, 1, 1, 11)
    assert parse_time(date(2026, 1, 1)) == utc(2026, 1, 1)
    assert parse_time("2026-07-01", tz="Europe/Paris") == utc(2026, 6, 30, 22)
    assert parse_time(None) is None


def test_bad_input_says_which_forms_work() -> None:
    with pytest.raises(ValueError, match='duration \\("30m"'):
        parse_time("last tuesday", now=NOW)
    with pytest.raises(ValueError, match="unknown time zone"):
        parse_time("today", tz="Mars/Olympus")


def test_range_order_is_checked() -> None:
    assert time_range("7d", "now", now=NOW) == (NOW - timedelta(days=7), NOW)
    with pytest.raises(ValueError, match="before since"):
        time_range("2026-11-02", "2026-11-01")


def test_period_starts_and_month_end() -> None:
    assert period_start(NOW, "hour") == utc(2026, 11, 23, 15)
    assert period_start(utc(2026, 11, 29, 23), "week") == utc(2026, 11, 23)
    assert period_start(NOW, "year") == utc(2026, 1, 1)
    assert month_end(NOW) == utc(2026, 12, 1)
    assert month_end(utc(2026, 12, 31, 23)) == utc(2027, 1, 1)
    assert month_end(utc(2026, 11, 30, 23, 30), tz="Asia/Tokyo") == utc(2026, 12, 31, 15)
