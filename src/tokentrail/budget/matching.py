"""Which budgets a call counts against, and in which window. Pure functions plus a span memo.

A budget applies when its scope gives the call a key (``tag:`` scopes only match tagged
calls); a per-key override replaces the default budget of its group for that key. Each
applicable budget is paired with the call's window id: the calendar period's start,
``total``, ``rolling``, ``call``, ``s:<session>`` or ``r:<run id>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, tzinfo

from ..context import Attribution, CallContext
from .definition import Budget
from .scopes import NOT_APPLICABLE
from .windows import Window, calendar_span

__all__ = ["Applicable", "Spans", "applicable", "window_id"]

#: (budget, scope key, window id) for one budget a call counts against.
Applicable = tuple[Budget, str | None, str]


class Spans:
    """The calendar windows containing ``now``, memoized (zone arithmetic is not free)."""

    def __init__(self) -> None:
        self._spans: dict[tuple[str, tzinfo], tuple[datetime, datetime, str]] = {}

    def span(self, unit: str, now: datetime, tz: tzinfo) -> tuple[datetime, datetime, str]:
        """(start, end, window id) of the ``unit`` period containing ``now`` in ``tz``."""
        cache_key = (unit, tz)
        cached = self._spans.get(cache_key)
        if cached is not None and cached[0] <= now < cached[1]:
            return cached
        start, end = calendar_span(unit, now, tz)
        span = (start, end, start.isoformat())
        self._spans[cache_key] = span
        return span


def applicable(
    budgets: Iterable[Budget],
    attribution: Attribution,
    model: str | None,
    ctx: CallContext | None,
    now: datetime,
    spans: Spans,
) -> list[Applicable]:
    """(budget, key, window id) for every budget this call counts against."""
    chosen: dict[tuple[str, str, str], list[tuple[Budget, str | None]]] = {}
    overridden: set[tuple[tuple[str, str, str], str | None]] = set()
    for budget in budgets:
        key = budget.scope.key_for(attribution, model)
        if key is NOT_APPLICABLE:
            continue
        assert key is None or isinstance(key, str)
        if budget.key is not None:
            if budget.key != key:
                continue
            overridden.add((budget.group, key))
        chosen.setdefault(budget.group, []).append((budget, key))
    out: list[Applicable] = []
    for group, items in chosen.items():
        for budget, key in items:
            if budget.key is None and (group, key) in overridden:
                continue  # a per-key override replaces the default for this key
            wid = window_id(budget.window, attribution, ctx, now, budget.tz, spans)
            if wid is not None:
                out.append((budget, key, wid))
    return out


def window_id(
    window: Window,
    attribution: Attribution,
    ctx: CallContext | None,
    now: datetime,
    tz: tzinfo,
    spans: Spans,
) -> str | None:
    """The id of the window a call at ``now`` counts in; ``None``: the budget does not apply."""
    kind = window.kind
    if kind == "calendar":
        return spans.span(window.name, now, tz)[2]
    if kind in ("total", "rolling", "call"):
        return kind
    if kind == "session":
        return None if attribution.session_id is None else f"s:{attribution.session_id}"
    # run: the innermost track() block of this call; no block, no run budget.
    if ctx is None or not ctx.runs:
        return None
    return f"r:{ctx.runs[-1].run_id}"
