"""Budget windows: which period a call's spend counts in. Pure functions, no state.

``call`` (each call alone), ``run`` (one ``track()`` block), ``session`` (one session id),
calendar windows ``hour``, ``day``, ``week`` (ISO, Monday first), ``month`` in a time zone,
``total`` (forever), and rolling windows written ``"30m"``, ``"24h"``, ``"7d"``, ``"2w"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["CALENDAR_UNITS", "Window", "WindowKind", "calendar_span", "parse_window", "zone"]

WindowKind = Literal["call", "run", "session", "calendar", "rolling", "total"]
CALENDAR_UNITS = ("hour", "day", "week", "month")

_ALIASES = {
    "request": "call",
    "hourly": "hour",
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "forever": "total",
    "all": "total",
    "lifetime": "total",
}
_ROLLING = re.compile(r"^\s*(\d+)\s*(s|sec|m|min|h|hr|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}
_UNIT_SECONDS["w"] = 7 * 86400
_LABELS = {"hour": "hourly", "day": "daily", "week": "weekly", "month": "monthly"}


@dataclass(frozen=True, slots=True)
class Window:
    """A parsed ``per=`` value."""

    name: str
    kind: WindowKind
    length: timedelta | None = None  # rolling windows

    @property
    def label(self) -> str:
        """Human wording: ``daily``, ``rolling 24h``, ``per-session``..."""
        if self.kind == "calendar":
            return _LABELS[self.name]
        if self.kind == "rolling":
            return f"rolling {self.name}"
        if self.kind == "total":
            return "total"
        return f"per-{self.name}"


def parse_window(per: str | timedelta) -> Window:
    """Parse ``per``: a window name, an alias (``daily``...), a rolling length or a timedelta.

    >>> parse_window("24h").length
    datetime.timedelta(days=1)
    """
    if isinstance(per, timedelta):
        if per <= timedelta(0):
            raise ValueError(f"a rolling window must be positive, got {per!r}")
        return Window(_format_length(per), "rolling", per)
    name = _ALIASES.get(str(per).strip().lower(), str(per).strip().lower())
    if name in CALENDAR_UNITS:
        return Window(name, "calendar")
    if name in ("call", "run", "session"):
        return Window(name, name)  # type: ignore[arg-type]
    if name == "total":
        return Window("total", "total")
    match = _ROLLING.match(name)
    if match:
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        if seconds <= 0:
            raise ValueError(f"a rolling window must be positive, got {per!r}")
        return Window(
            f"{match.group(1)}{match.group(2).lower()}", "rolling", timedelta(seconds=seconds)
        )
    raise ValueError(
        f"unknown budget window {per!r}: use call, run, session, hour, day, week, month, "
        "total, or a rolling length such as '24h', '7d', '30m'"
    )


def _format_length(length: timedelta) -> str:
    seconds = int(length.total_seconds())
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def zone(tz: str | tzinfo | None) -> tzinfo:
    """A ``tzinfo`` from an IANA name (``"Europe/Paris"``), a tzinfo, or ``None`` (UTC)."""
    if tz is None:
        return timezone.utc
    if isinstance(tz, tzinfo):
        return tz
    if str(tz).upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {tz!r}: use an IANA name such as 'Europe/Paris' or 'UTC'"
        ) from exc


def calendar_span(unit: str, now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """The calendar period (start, end) in UTC that contains ``now``, cut in ``tz``.

    Days start at local midnight, weeks on Monday, months on the 1st; a day is 23 or 25
    hours long across a daylight-saving change.
    """
    local = now.astimezone(tz)
    if unit == "hour":
        # Add the hour in UTC: aware arithmetic in the zone is wall-clock, so the first pass
        # of a repeated DST hour would end an hour late and swallow the second pass.
        start = local.replace(minute=0, second=0, microsecond=0).astimezone(timezone.utc)
        return start, start + timedelta(hours=1)
    day = local.date()
    if unit == "day":
        first, nxt = day, day + timedelta(days=1)
    elif unit == "week":
        first = day - timedelta(days=day.weekday())
        nxt = first + timedelta(days=7)
    elif unit == "month":
        first = day.replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"not a calendar unit: {unit!r}")
    # Build local midnights with the zone (not start + 24h) so DST days have the right length.
    start = datetime(first.year, first.month, first.day, tzinfo=tz)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)
