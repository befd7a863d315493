"""Amounts in a budget's unit: USD as ``Decimal``, tokens as ``int``."""

from __future__ import annotations

from decimal import Decimal

from ..formatting import money

__all__ = ["Amount", "format_amount", "zero"]

#: An amount in a budget's unit: USD as Decimal, tokens as int.
Amount = Decimal | int


def zero(unit: str) -> Amount:
    """0 in ``unit``."""
    return Decimal(0) if unit == "usd" else 0


def format_amount(value: Amount, unit: str) -> str:
    """``$1.25`` or ``1,000 tokens``."""
    return money(value) if unit == "usd" else f"{value:,} tokens"
