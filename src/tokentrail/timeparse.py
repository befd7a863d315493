"""Turn what people type for a time ("7d", "24h", "this-month", "2026-11-01") into datetimes.

Every function returns timezone-aware datetimes (UTC) so they compare with the ``ts``
column of the ``usage`` table. A named period (``today``, ``this-week``, ``last-month``...)
stands for the instant its period *starts*, in the time zone ``tz``: ``since="last-month",
until="this-month"`` is last month.

Example::

    >>> from datetime import datetime, timezone
    >>> now = datetime(2026, 11, 23, 15, 30, tzinfo=timezone.utc)
    >>> parse_time("7d", now=now).isoformat()
    '2026-11-16T15:30:00+00:00'
    >>> parse_time("this-month", now=now).isoformat()
    '2026-11-01T00:00:00+00:00'
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "PERIODS",
    "TimeLike",
    "get_zone",
    "month_end",
    "parse_time",
    "period_start",
    "time_range",
]

TimeLike = str | datetime | date | None

#: Calendar periods understood by :func:`period_start` (and ``over_time``).
PERIODS: tuple[str, ...] = ("hour", "day", "week", "month", "year")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$")
_UNITS: dict[str, timedelta] = {
    "s": timedelta(seconds=1),
    "sec": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "min": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "hr": timedelta(hours=1),
    "d": timedelta(days=1),
    "day": timedelta(days=1),
    "days": timedelta(days=1),
    "w": timedelta(weeks=1),
    "wk": timedelta(weeks=1),
    "week": timedelta(weeks=1),
    "weeks": timedelta(weeks=1),
}

_HELP = (
    'use a duration ("30m", "24h", "7d", "2w"), a named period ("now", "today", '
    '"yesterday", "this-week", "last-week", "this-month", "last-month", "this-year"), '
    'an ISO date ("2026-11-01") or an ISO datetime ("2026-11-01T09:00", "...Z", "...+02:00")'
)


def get_zone(tz: str | tzinfo | None) -> tzinfo:
    """A ``tzinfo`` for an IANA name (``"Europe/Paris"``), a tzinfo, or ``None`` (UTC)."""
    if tz is None:
        return timezone.utc
    if isinstance(tz, tzinfo):
        return tz
    if tz.upper() in ("UTC", "Z", "GMT"):
        return timezone.utc
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {tz!r}: use an IANA name like 'Europe/Paris'"
        ) from None


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def period_start(moment: datetime, period: str, tz: str | tzinfo | None = None) -> datetime:
    """The start of the calendar ``period`` containing ``moment``, in ``tz``, as UTC.

    Weeks start on Monday (ISO 8601).
    """
    zone = get_zone(tz)
    local = _aware(moment, zone).astimezone(zone)
    if period == "hour":
        start = local.replace(minute=0, second=0, microsecond=0)
    elif period == "day":
        start = datetime.combine(local.date(), time(), zone)
    elif period == "week":
        start = datetime.combine(local.date() - timedelta(days=local.weekday()), time(), zone)
    elif period == "month":
        start = datetime.combine(local.date().replace(day=1), time(), zone)
    elif period == "year":
        start = datetime.combine(date(local.year, 1, 1), time(), zone)
    else:
        raise ValueError(f"unknown period {period!r}: use one of {', '.join(PERIODS)}")
    return start.astimezone(timezone.utc)


def _shift(start_utc: datetime, period: str, n: int, zone: tzinfo) -> datetime:
    """``start_utc`` (a period start) moved by ``n`` periods, respecting local calendars."""
    local = start_utc.astimezone(zone)
    if period == "hour":
        return start_utc + timedelta(hours=n)
    if period in ("day", "week"):
        days = n if period == "day" else 7 * n
        moved = datetime.combine(local.date() + timedelta(days=days), time(), zone)
    elif period == "month":
        months = local.year * 12 + local.month - 1 + n
        moved = datetime.combine(date(months // 12, months % 12 + 1, 1), time(), zone)
    else:  # year
        moved = datetime.combine(date(local.year + n, 1, 1), time(), zone)
    return moved.astimezone(timezone.utc)


def month_end(moment: datetime, tz: str | tzinfo | None = None) -> datetime:
    """The first instant of the month after the one containing ``moment`` (in ``tz``), UTC."""
    zone = get_zone(tz)
    return _shift(period_start(moment, "month", zone), "month", 1, zone)


_NAMED: dict[str, tuple[str, int]] = {
    "today": ("day", 0),
    "yesterday": ("day", -1),
    "this-hour": ("hour", 0),
    "last-hour": ("hour", -1),
    "this-week": ("week", 0),
    "last-week": ("week", -1),
    "this-month": ("month", 0),
    "last-month": ("month", -1),
    "this-year": ("year", 0),
    "last-year": ("year", -1),
}


def _aware(moment: datetime, zone: tzinfo) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def parse_time(
    value: TimeLike,
    *,
    now: datetime | None = None,
    tz: str | tzinfo | None = None,
) -> datetime | None:
    """Parse a point in time; ``None`` stays ``None``. Returns an aware UTC datetime.

    Durations count back from ``now`` (``"7d"`` = seven days ago); naive datetimes and dates
    are read in ``tz`` (default UTC). Raises ``ValueError`` saying which forms are accepted.
    """
    if value is None:
        return None
    zone = get_zone(tz)
    current = _aware(now, zone) if now is not None else _utc_now()
    if isinstance(value, datetime):
        return _aware(value, zone).astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(), zone).astimezone(timezone.utc)
    if not isinstance(value, str):
        raise ValueError(f"cannot read {value!r} as a time: {_HELP}")
    text = value.strip().lower().replace("_", "-").replace(" ", "-")
    if text == "now":
        return current.astimezone(timezone.utc)
    named = _NAMED.get(text)
    if named is not None:
        period, n = named
        return _shift(period_start(current, period, zone), period, n, zone)
    match = _DURATION.match(text)
    if match is not None and match.group(2) in _UNITS:
        amount = float(match.group(1))
        return (current - amount * _UNITS[match.group(2)]).astimezone(timezone.utc)
    return parse_iso(value, zone)


def parse_iso(text: str, zone: tzinfo = timezone.utc) -> datetime:
    """ISO 8601 text (``2026-12-05``, ``2026-12-05T10:00:00Z``, with an offset or naive,
    read in ``zone``) as an aware UTC datetime; ``ValueError`` for anything else."""
    text = text.strip()
    candidate = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        if len(candidate) == 10:
            return datetime.combine(date.fromisoformat(candidate), time(), zone).astimezone(
                timezone.utc
            )
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        raise ValueError(f"cannot read {text!r} as a time: {_HELP}") from None
    return _aware(parsed, zone).astimezone(timezone.utc)


def time_range(
    since: TimeLike = None,
    until: TimeLike = None,
    *,
    now: datetime | None = None,
    tz: str | tzinfo | None = None,
) -> tuple[datetime | None, datetime | None]:
    """Parse ``since`` (inclusive) and ``until`` (exclusive) together; checks their order."""
    start = parse_time(since, now=now, tz=tz)
    end = parse_time(until, now=now, tz=tz)
    if start is not None and end is not None and end < start:
        raise ValueError(f"until ({end.isoformat()}) is before since ({start.isoformat()})")
    return start, end
