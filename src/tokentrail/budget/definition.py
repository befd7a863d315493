"""What a budget is: its limit, unit, window, scope and policies, and how ``add`` arguments parse.

Pure data and parsing, no state: the guard keeps the budgets in force, the ledger their spend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from .amounts import Amount, format_amount
from .scopes import Scope
from .windows import Window

if TYPE_CHECKING:
    from .status import BudgetStatus

__all__ = [
    "Budget",
    "OnError",
    "Unpriced",
    "fallback_price",
    "parse_limit",
    "parse_on_error",
    "parse_unpriced",
]

#: What a USD budget does with a model that has no price.
Unpriced = Literal["refuse", "allow"] | tuple[Decimal, Decimal]
#: What a budget does when its ledger cannot be reached or a call cannot be estimated.
OnError = Literal["closed", "open"]

_MTOK = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Budget:
    """One limit: ``limit`` (USD or tokens) per ``window`` for each key of ``scope``.

    ``key`` set means an override for that one key (e.g. one user); it replaces the
    default budget of the same scope, window and unit for that key. ``on_error``:
    ``"closed"`` refuses calls when the guard cannot decide (ledger unreachable, call
    not estimable), ``"open"`` lets them through with one warning.
    """

    id: int
    unit: Literal["usd", "tokens"]
    limit: Amount
    window: Window
    scope: Scope
    key: str | None
    warn_at: tuple[float, ...]
    on_warn: Callable[[BudgetStatus], Any] | None
    tz: tzinfo
    unpriced: Unpriced
    name: str | None = None
    on_error: OnError = "closed"

    @property
    def group(self) -> tuple[str, str, str]:
        """Budgets in one group override one another per key (and share spend per key)."""
        return (self.scope.name, self.window.name, self.unit)

    def describe(self) -> str:
        """``$5.00 daily per user`` / ``500,000 tokens monthly for user 'u1'``."""
        amount = format_amount(self.limit, self.unit)
        who = f"for {self.scope.kind} {self.key!r}" if self.key else f"per {self.scope.name}"
        if self.scope.kind == "global":
            who = "overall"
        return f"{amount} {self.window.label} {who}"


def parse_limit(raw: Any, unit: str) -> Amount:
    """A limit from user input: a non-negative Decimal (USD) or int (tokens)."""
    if unit == "usd":
        try:
            value = Decimal(str(raw))
        except ArithmeticError:  # not a number at all ("abc")
            value = Decimal("NaN")
        if isinstance(raw, bool) or not value.is_finite() or value < 0:
            raise ValueError(f"usd must be a non-negative amount, got {raw!r}")
        return value
    try:
        value = Decimal(str(raw))
    except ArithmeticError:
        value = Decimal(-1)
    if isinstance(raw, bool) or not value.is_finite() or value != int(value) or value < 0:
        raise ValueError(f"tokens must be a non-negative integer, got {raw!r}")
    return int(value)


def parse_warn_at(values: Iterable[Any] | None) -> tuple[float, ...]:
    """Alert thresholds as sorted fractions of the limit, each in (0, 1]."""
    thresholds = []
    for raw in values or ():
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = float("nan")
        if isinstance(raw, bool) or not 0 < value <= 1:  # NaN fails too
            raise ValueError(
                f"warn_at takes fractions of the limit in (0, 1], such as 0.75; got {raw!r}"
            )
        thresholds.append(value)
    return tuple(sorted(set(thresholds)))


def parse_unpriced(value: Any) -> Unpriced:
    """``"refuse"``, ``"allow"`` or a fallback ``(input, output)`` price per 1M tokens."""
    if value in ("refuse", "allow"):
        return value  # type: ignore[no-any-return]
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return (Decimal(str(value[0])), Decimal(str(value[1])))
    raise ValueError(
        "unpriced must be 'refuse', 'allow' or (input_usd_per_mtok, output_usd_per_mtok)"
    )


def parse_on_error(value: Any) -> OnError:
    """``"closed"`` or ``"open"``."""
    if value in ("closed", "open"):
        return value  # type: ignore[no-any-return]
    raise ValueError(f"on_error must be 'closed' or 'open', got {value!r}")


def fallback_price(
    price: tuple[Decimal, Decimal], input_tokens: int, output_tokens: int
) -> Decimal:
    """The cost of a call at a fallback ``(input, output)`` price per 1M tokens."""
    return (price[0] * input_tokens + price[1] * output_tokens) / _MTOK
