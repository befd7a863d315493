"""The budget guard: stop a call before it overspends, even under concurrency.

``tracker.budget(usd=5, per="day", scope="user")`` adds a budget; integrations call
``tracker.preflight(PreflightRequest(...))`` at model start, which reserves the call's
worst case against every applicable budget or raises
:class:`~tokentrail.BudgetExceededError`; ``Tracker.capture`` settles the real cost.

Modules: ``windows`` (periods), ``scopes`` (who shares a bucket), ``ledger`` (spend per
bucket, loaded from the store), ``guard`` (reserve/settle/check/status), ``fit``
(``fit_messages``), ``persist`` (definitions saved next to the database for the CLI).
"""

from __future__ import annotations

from .definition import Budget
from .fit import fit_messages
from .guard import BudgetGuard
from .request import Estimate, GuardConfig, PreflightRequest, Reservation
from .scopes import Scope, parse_scope
from .status import BudgetStatus, CheckResult
from .windows import Window, calendar_span, parse_window

__all__ = [
    "Budget",
    "BudgetGuard",
    "BudgetStatus",
    "CheckResult",
    "Estimate",
    "GuardConfig",
    "PreflightRequest",
    "Reservation",
    "Scope",
    "Window",
    "calendar_span",
    "fit_messages",
    "parse_scope",
    "parse_window",
]
