"""What the guard reports: one budget window's state (:class:`BudgetStatus`) and the answer
to "would this call fit?" (:class:`CheckResult`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import BudgetExceededError
from ..formatting import money
from .amounts import Amount, zero

if TYPE_CHECKING:
    from .request import Estimate

__all__ = ["BudgetStatus", "CheckResult", "check_result", "retry_after"]

_WINDOW_WORDS = {
    "hour": "hourly",
    "day": "daily",
    "week": "weekly",
    "month": "monthly",
    "total": "total",
    "call": "per-call",
    "run": "per-run",
    "session": "per-session",
}


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One budget window's state: what is spent, held by calls in flight, and left."""

    budget_id: int
    scope: str
    key: str | None
    window: str
    unit: str
    limit: Amount
    spent: Amount
    reserved: Amount
    window_start: datetime | None = None
    window_end: datetime | None = None
    name: str | None = None

    @property
    def remaining(self) -> Amount:
        """What can still be spent (never negative)."""
        return max(self.limit - self.spent - self.reserved, zero(self.unit))

    @property
    def percent(self) -> float:
        """Settled spend as a percentage of the limit."""
        return float(self.spent) / float(self.limit) * 100 if self.limit else 100.0

    @property
    def message(self) -> str:
        """``80% of daily limit used — Tokens: 400,000 / 500,000``."""
        label = _WINDOW_WORDS.get(self.window, f"rolling {self.window}")
        what = "Tokens" if self.unit == "tokens" else "Cost"
        who = f" for {self.scope} {self.key!r}" if self.key is not None else ""
        return (
            f"{self.percent:.0f}% of {label} limit used{who} — {what}: "
            f"{_num(self.spent, self.unit)} / {_num(self.limit, self.unit)}"
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping."""
        return {
            "budget_id": self.budget_id,
            "name": self.name,
            "scope": self.scope,
            "key": self.key,
            "window": self.window,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "unit": self.unit,
            "limit": self.limit,
            "spent": self.spent,
            "reserved": self.reserved,
            "remaining": self.remaining,
            "percent": round(self.percent, 2),
        }

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Would a call fit? For web handlers that answer HTTP 429 rather than raise.

    ``remaining`` is the headroom of the tightest budget before this call (in its
    ``unit``), ``retry_after`` the seconds until that budget's window resets (``None`` when
    it never does), ``reason`` why the call would be refused.
    """

    allowed: bool
    remaining: Amount | None
    unit: str | None
    estimate: Estimate | None
    reason: str | None = None
    retry_after: float | None = None
    budget: BudgetStatus | None = None
    statuses: tuple[BudgetStatus, ...] = ()

    def __bool__(self) -> bool:
        return self.allowed


def check_result(
    statuses: Sequence[BudgetStatus],
    error: BudgetExceededError | None,
    estimate: Estimate | None,
    now: datetime,
) -> CheckResult:
    """The answer to "would this call fit?" from what the guard saw and decided."""
    if error is not None:
        ident = (error.scope, error.key, error.window, error.unit)
        tight = next((s for s in statuses if (s.scope, s.key, s.window, s.unit) == ident), None)
        return CheckResult(
            allowed=False,
            remaining=tight.remaining if tight else None,
            unit=error.unit,
            estimate=estimate,
            reason=str(error),
            retry_after=retry_after(tight, now),
            budget=tight,
            statuses=tuple(statuses),
        )
    if not statuses:  # no budget applies, or an open one let it through undecided
        return CheckResult(allowed=True, remaining=None, unit=None, estimate=estimate)
    tight = min(statuses, key=lambda s: s.remaining / s.limit if s.limit else 0)
    return CheckResult(
        allowed=True,
        remaining=tight.remaining,
        unit=tight.unit,
        estimate=estimate,
        budget=tight,
        statuses=tuple(statuses),
    )


def retry_after(status: BudgetStatus | None, now: datetime) -> float | None:
    """Seconds until ``status``'s window resets (``None`` when it never does)."""
    if status is None or status.window_end is None:
        return None
    return max(0.0, (status.window_end - now).total_seconds())


def _num(value: Amount, unit: str) -> str:
    return money(value) if unit == "usd" else f"{int(value):,}"
