"""Number formats shared by the CLI, notebooks, charts and error messages."""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

__all__ = ["ESTIMATED_CAUSES", "count", "money", "money_digits", "percent", "shown"]

#: Why a call's token counts are estimated, for the notes under reports that mark them.
ESTIMATED_CAUSES = (
    "the provider reported none, so they were counted locally: a LangChain stream "
    'without stream_usage=True, an OpenAI stream without stream_options={"include_usage": '
    "True}, or a LlamaIndex embedding model (their responses carry no usage)"
)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def money(value: Any, digits: int | None = None) -> str:
    """``$1,234.56``; cents-or-less amounts get 4 or 6 decimals; ``—`` when unknown.

    An amount that is not zero but rounds to zero at those decimals is written as an
    upper bound (``<$0.000001``): a tiny cost must not read as free.
    """
    if _missing(value):
        return "—"
    amount = Decimal(str(value))
    size = abs(amount)
    if digits is None:
        digits = 2 if size >= 1 or amount == 0 else 4 if size >= Decimal("0.001") else 6
    if amount != 0 and round(size, digits) == 0:
        bound = f"<${Decimal(1).scaleb(-digits):f}"
        return f"-{bound}" if amount < 0 else bound
    return f"-${-amount:,.{digits}f}" if amount < 0 else f"${amount:,.{digits}f}"


def money_digits(values: Iterable[Any]) -> int:
    """One number of decimals for a column of amounts, so that its figures line up.

    The decimals :func:`money` would give the smallest non-zero amount: a column of
    dollars and tenths of a cent shows every figure to a tenth of a cent.
    """
    sizes = [abs(Decimal(str(v))) for v in values if not _missing(v)]
    smallest = min((s for s in sizes if s != 0), default=Decimal(1))
    return 2 if smallest >= 1 else 4 if smallest >= Decimal("0.001") else 6


def count(value: Any) -> str:
    """An integer with thousands separators; ``—`` when unknown."""
    return "—" if _missing(value) else f"{int(value):,}"


def percent(value: Any, digits: int = 1) -> str:
    """A ratio (0.25) as ``25.0%``; ``—`` when unknown."""
    return "—" if _missing(value) else f"{float(value) * 100:.{digits}f}%"


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for warnings about user input (which
    may be huge, or have a ``__repr__`` that raises)."""
    try:
        text = repr(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
