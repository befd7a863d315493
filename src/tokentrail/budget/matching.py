"""Which budgets a call counts against, and in which window. Pure functions plus a memo.

A budget applies when its scope gives the call a key (``tag:`` scopes only match tagged
calls); a per-key override replaces the default budget of its group for that key. Each
applicable budget is paired with the call's window id: the calendar period's start,
``total``, ``rolling``, ``call``, ``s:<session>`` or ``r:<run id>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone, tzinfo

from ..context import Attribution, CallContext
from .definition import Budget
from .scopes import NOT_APPLICABLE
from .windows import Window, calendar_span

__all__ = ["Applicable", "Spans", "applicable", "window_id"]

#: (budget, scope key, window id) for one budget a call counts against.
Applicable = tuple[Budget, str | None, str]


#: A memoized match holds from its windows' latest start to their earliest end.
_ALWAYS = (
    datetime.min.replace(tzinfo=timezone.utc),
    datetime.max.replace(tzinfo=timezone.utc),
)


class Spans:
    """The calendar windows containing ``now``, and what each kind of call matched within
    them, memoized (zone arithmetic and the scope rules are not free on every call)."""

    MAX_MATCHES = 4096

    def __init__(self) -> None:
        self._spans: dict[tuple[str, tzinfo], tuple[datetime, datetime, str]] = {}
        # (attribution fields, model, run id) -> (valid from, valid until, matches)
        self._matches: dict[tuple[object, ...], tuple[datetime, datetime, list[Applicable]]]
        self._matches = {}
        self._budgets: Sequence[Budget] = ()

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
    budgets: Sequence[Budget],
    attribution: Attribution,
    model: str | None,
    ctx: CallContext | None,
    now: datetime,
    spans: Spans,
) -> list[Applicable]:
    """(budget, key, window id) for every budget this call counts against (do not mutate).

    Memoized in ``spans`` per (budget set, attribution, model, run) while every calendar
    window it chose still contains ``now``: adding or removing a budget replaces the set.
    """
    runs = () if ctx is None else ctx.runs
    memo_key = (
        attribution.user_id,
        attribution.session_id,
        attribution.operation,
        attribution.tags,
        model,
        runs[-1].run_id if runs else None,
    )
    if budgets is not spans._budgets:
        spans._matches.clear()
        spans._budgets = budgets
    hit = spans._matches.get(memo_key)
    if hit is not None and hit[0] <= now < hit[1]:
        return hit[2]
    out = _applicable(budgets, attribution, model, ctx, now, spans)
    start, end = _ALWAYS
    for budget, _, _ in out:
        if budget.window.kind == "calendar":
            first, last, _ = spans.span(budget.window.name, now, budget.tz)
            start, end = max(start, first), min(end, last)
    if len(spans._matches) >= Spans.MAX_MATCHES:
        spans._matches.clear()
    spans._matches[memo_key] = (start, end, out)
    return out


def _applicable(
    budgets: Sequence[Budget],
    attribution: Attribution,
    model: str | None,
    ctx: CallContext | None,
    now: datetime,
    spans: Spans,
) -> list[Applicable]:
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
