"""The exception hierarchy: catch :class:`TokentrailError` for everything tokentrail raises."""

from __future__ import annotations

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
    (this call's worst case) and ``unit`` (``usd`` or ``tokens``).
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
        self.extra = extra

        def fmt(v: Decimal | int) -> str:
            return money(v) if unit == "usd" else f"{v:,} tokens"

        who = f"{scope} {key!r}" if key is not None else scope
        msg = (
            f"budget exceeded for {who} ({window} window): limit {fmt(limit)}, "
            f"spent {fmt(spent)}, reserved {fmt(reserved)}, this call up to {fmt(estimate)}"
        )
        if detail:
            msg += f" — {detail}"
        super().__init__(msg)


class BudgetWarning(UserWarning):
    """Emitted (``warnings`` category) once per threshold per window as a budget fills up."""
