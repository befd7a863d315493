"""The JSON shapes of the HTTP API (camelCase, as the product plan wrote them).

Money is a decimal string at full precision (``"0.001234500000"`` is never rounded to
cents); times are ISO 8601 in UTC ending in ``Z``. These models document the API in
``/openapi.json``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "BudgetCheck",
    "BudgetCheckRequest",
    "BudgetList",
    "BudgetRow",
    "Filters",
    "Health",
    "History",
    "HistoryRow",
    "Me",
    "ModelRow",
    "OperationRow",
    "Period",
    "PeriodRow",
    "Projection",
    "Stats",
    "UserRow",
]

Money = str


class Camel(BaseModel):
    """Fields are snake_case in Python and camelCase on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Filters(Camel):
    """The filters a response was computed with, after scoping to the caller."""

    since: str | None = None
    until: str | None = None
    user_id: str | None = None
    model: str | None = None
    operation: str | None = None


class Group(Camel):
    """Totals of one group of calls."""

    calls: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost: Money
    share: float = Field(description="Part of the total cost (of tokens when nothing is priced).")
    unpriced_calls: int
    errors: int


class OperationRow(Group):
    """Totals of one operation (``(none)`` for calls without one)."""

    operation: str


class ModelRow(Group):
    """Totals of one model."""

    model: str


class UserRow(Group):
    """Totals of one user (``(none)`` for calls without one)."""

    user_id: str


class Stats(Camel):
    """``GET /api/tokens/stats``: totals and the split by operation, model and user."""

    total_input_tokens: int
    total_output_tokens: int
    total_tokens: int
    total_cost: Money
    calls: int
    unpriced_calls: int
    errors: int
    by_operation: list[OperationRow]
    by_model: list[ModelRow]
    by_user: list[UserRow]
    filters: Filters


class HistoryRow(Camel):
    """One call. Prompt and completion text are never stored, so never served."""

    id: str
    created_at: str
    operation: str | None
    model: str | None
    provider: str | None
    user_id: str | None
    session_id: str | None
    framework: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    reasoning_tokens: int
    total_tokens: int
    cost: Money | None = Field(description="NULL when the model's price is unknown.")
    latency_ms: float | None
    status: str | None
    estimated: bool | None
    tags: list[str]


class History(Camel):
    """``GET /api/tokens/history``: newest first; pass ``nextBefore`` as ``before`` for more."""

    usage: list[HistoryRow]
    next_before: str | None = None
    filters: Filters


class PeriodRow(Camel):
    """One calendar period (start date, UTC); periods without calls are zeros."""

    date: str
    tokens: int
    input_tokens: int
    output_tokens: int
    cost: Money
    calls: int


class Period(Camel):
    """``GET /api/tokens/usage-by-period``."""

    period: Literal["day", "week", "month"]
    data: list[PeriodRow]
    filters: Filters


class Projection(Camel):
    """``GET /api/tokens/projection``: month-end spend from the recent daily run rate."""

    month: str
    month_to_date: Money
    run_rate_per_day: Money
    projected: Money
    days_left: float
    lookback_days: float
    method: str
    filters: Filters


class BudgetRow(Camel):
    """One budget window: spent (settled in the store), limit, remaining, percent."""

    budget_id: int
    name: str | None
    scope: str
    key: str | None
    window: str
    window_start: str | None
    window_end: str | None
    unit: str
    limit: str
    spent: str
    reserved: str
    remaining: str
    percent: float


class BudgetList(Camel):
    """``GET /api/budgets``."""

    budgets: list[BudgetRow]


class BudgetCheckRequest(Camel):
    """``POST /api/budgets/check``: may this user make this request? Reserves nothing."""

    user_id: str | None = None
    model: str | None = None
    provider: str | None = None
    operation: str | None = None
    messages: list[dict[str, Any]] | None = Field(
        default=None, description="Chat messages ({role, content}); counted, never stored."
    )
    prompt_tokens: int | None = Field(default=None, ge=0, description="Instead of messages.")
    max_tokens: int | None = Field(default=None, ge=0)


class BudgetCheck(Camel):
    """The answer: ``allowed``, why not, what is left, and when to retry (seconds)."""

    allowed: bool
    reason: str | None
    remaining: str | None
    unit: str | None
    retry_after: float | None
    estimated_cost: str | None = None
    estimated_tokens: int | None = None


class Health(Camel):
    """``GET /api/health``: the server is up and can read its database."""

    status: Literal["ok"]
    version: str
    auth: Literal["tokens", "loopback-only"]


class Me(Camel):
    """``GET /api/me``: who the token belongs to."""

    user_id: str | None
    admin: bool
