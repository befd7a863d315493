"""The exception hierarchy: catch :class:`TokentrailError` for everything tokentrail raises."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from .formatting import money

__all__ = [
    "BudgetExceededError",
    "BudgetWarning",
    "PricingError",
    "StoreError",
    "TokentrailError",
    "UnknownModelError",
]


class TokentrailError(Exception):
    """Base class of every error tokentrail raises."""


class PricingError(TokentrailError):
    """A price catalog or price override is invalid."""


class UnknownModelError(PricingError, LookupError):
    """No price is known for a model (raised only with ``strict=True``)."""

    def __init__(self, model: str, provider: str | None = None) -> None:
        self.model = model
        self.provider = provider
        where = f" (provider {provider!r})" if provider else ""
        super().__init__(
            f"no price known for model {model!r}{where}; add one with "
            "tokentrail.pricing.register(...) or a TOKENTRAIL_PRICING file"
        )


class StoreError(TokentrailError):
    """The usage database cannot be opened, read or written."""


class BudgetExceededError(TokentrailError):
    """A call was refused before it was sent because it could push a budget over its limit.

    Attributes name the budget that refused: ``scope`` (``user``, ``global``, ...), ``key``
    (the user id or other scope value), ``window`` (``day``, ``month``, ...), ``limit``,
    ``spent`` (settled in this window), ``reserved`` (held by calls in flight), ``estimate``
    (this call's worst case), ``unit`` (``usd`` or ``tokens``), ``resets_at`` (when a
    calendar window starts anew, else ``None``) and ``basis`` (how the worst case was
    worked out, e.g. ``812 prompt tokens + 500 reply tokens (max_tokens)``).

    ``cause`` is set when the guard could not decide (its ledger unreachable, the call not
    estimable) and the budget's ``on_error="closed"`` policy refused the call: spend,
    holds and the estimate are then unknown and the message says so instead of a limit.
    """

    def __init__(
        self,
        *,
        scope: str,
        key: str | None,
        window: str,
        limit: Decimal | int,
        spent: Decimal | int,
        reserved: Decimal | int,
        estimate: Decimal | int,
        unit: str = "usd",
        detail: str | None = None,
        resets_at: datetime | None = None,
        basis: str | None = None,
        cause: str | None = None,
        **extra: Any,
    ) -> None:
        self.scope = scope
        self.key = key
        self.window = window
        self.limit = limit
        self.spent = spent
        self.reserved = reserved
        self.estimate = estimate
        self.unit = unit
        self.detail = detail
        self.resets_at = resets_at
        self.basis = basis
        self.cause = cause
        self.extra = extra
        super().__init__(self._message())

    def explain(self, *, basis: str | None = None) -> BudgetExceededError:
        """Add how the worst case was worked out to the message; returns ``self``."""
        self.basis = basis
        self.args = (self._message(),)
        return self

    def _message(self) -> str:
        def fmt(v: Decimal | int) -> str:
            return money(v) if self.unit == "usd" else f"{v:,} tokens"

        who = f"{self.scope} {self.key!r}" if self.key is not None else self.scope
        when = f", resets {self.resets_at:%Y-%m-%d %H:%M %Z}" if self.resets_at else ""
        if self.cause is not None:  # nothing is known of spend: say why it was refused
            return (
                f"budget for {who} ({self.window} window, limit {fmt(self.limit)}) could not "
                f"be checked: {self.cause}. Nothing was sent (on_error='closed'; "
                "on_error='open' lets such calls through with one warning)."
            )
        msg = (
            f"budget exceeded for {who} ({self.window} window{when}): limit {fmt(self.limit)}, "
            f"spent {fmt(self.spent)}, held by calls in flight {fmt(self.reserved)}, "
            f"this call up to {fmt(self.estimate)}"
        )
        if self.basis:
            msg += f" (its worst case: {self.basis})"
        if self.detail:
            return msg + f" — {self.detail}"
        return msg + (
            ". Nothing was sent. Raise the limit, wait for the window to reset, or make the "
            "call smaller (a lower max_tokens lowers its worst case)."
        )


class BudgetWarning(UserWarning):
    """Emitted (``warnings`` category) once per threshold per window as a budget fills up."""
