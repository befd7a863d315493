"""Budget alerts: which ``warn_at`` thresholds a settled call crossed, and telling the user.

The level a bucket has reached (the highest fraction already alerted) lives in the shared
ledger, so each threshold fires once per window across every process, lowest first.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

from ..errors import BudgetWarning
from .definition import Budget
from .status import BudgetStatus

__all__ = ["crossed", "emit"]

logger = logging.getLogger("tokentrail")


def crossed(budget: Budget, spent: float, warned: float) -> list[float]:
    """The thresholds of ``budget`` reached at ``spent`` (a fraction of the limit) and above
    the level ``warned`` already alerted, in ascending order."""
    return [t for t in budget.warn_at if warned < t <= spent]


def emit(alerts: Sequence[tuple[Budget, BudgetStatus]]) -> None:
    """Warnings, log records and ``on_warn`` callbacks, in order (call outside any lock)."""
    for budget, status in alerts:
        message = f"⚠️ {status.message}"
        logger.warning("tokentrail: %s", message)
        try:
            warnings.warn(message, BudgetWarning, stacklevel=4)
        except BudgetWarning:
            # ``-W error``: raised here, after the call, it would only be logged by the
            # tracker as a failed settle and skip on_warn; the log record above has it.
            pass
        except Exception:
            logger.exception("tokentrail: could not emit a budget warning")
        if budget.on_warn is not None:
            try:
                budget.on_warn(status)
            except Exception:
                logger.exception("tokentrail: a budget on_warn callback failed")
