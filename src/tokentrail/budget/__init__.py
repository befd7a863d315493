"""The budget guard: stop a call before it overspends, even under concurrency.

``tracker.budget(usd=5, per="day", scope="user")`` adds a budget; integrations call
``tracker.preflight(PreflightRequest(...))`` at model start, which reserves the call's
worst case against every applicable budget or raises
:class:`~tokentrail.BudgetExceededError`; ``Tracker.capture`` settles the real cost.

Every process on the same database shares one ledger (``<database>.ledger.sqlite``):
reservations and spend are seen by all at once, and a reservation is taken by every
applicable budget or by none.

Modules: ``definition`` (what a budget is), ``windows`` (periods), ``scopes`` (who shares
a bucket), ``matching`` (which budgets apply to a call), ``request`` (the call, its worst
case, its reservation, settings), ``worst_case`` (estimating it), ``ledger`` (the shared
SQLite ledger), ``accounting`` (charges, decisions, settlements, store sync), ``alerts``,
``status``, ``guard`` (reserve/settle/check/status), ``store_spend`` (spend only the store
knows), ``offline`` (the CLI's view), ``persist`` (definitions saved for the CLI), ``fit``
(``fit_messages``).
"""

from __future__ import annotations

from .definition import Budget
from .fit import fit_messages
from .guard import BudgetGuard
from .request import Estimate, GuardConfig, PreflightRequest
from .reservation import Reservation
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
