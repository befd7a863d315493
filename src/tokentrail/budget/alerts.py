"""Budget alerts: which ``warn_at`` thresholds a settled call crossed, and telling the user.

The level a bucket has reached (the highest fraction already alerted) lives in the shared
ledger, so each threshold fires once per window across every process, lowest first.
"""

from __future__ import annotations

import logging
import sys
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
    """Tell the user, once per alert: ``on_warn`` first, then one ``BudgetWarning``.

    The warning points at the user's own line (the first frame outside tokentrail and the
    frameworks), so it reads as theirs and Python's once-per-place filter works; it is not
    also logged. Under ``-W error`` the warning becomes one log line: the call it belongs
    to has already finished, and raising now would only break it after the fact.
    Call outside any lock.
    """
    for budget, status in alerts:
        if budget.on_warn is not None:
            try:
                budget.on_warn(status)
            except Exception:
                logger.exception("tokentrail: a budget on_warn callback failed")
        message = f"⚠️ {status.message}"
        try:
            warnings.warn(message, BudgetWarning, stacklevel=_user_stacklevel())
        except BudgetWarning:
            logger.warning("tokentrail: %s", message)
        except Exception:
            logger.exception("tokentrail: could not emit a budget warning")


#: Modules whose frames are not the user's line: tokentrail and what calls it.
_NOT_USER = ("tokentrail", "langchain", "langchain_core", "llama_index", "openai", "anthropic")


def _user_stacklevel() -> int:
    """The ``stacklevel`` of the first caller frame outside tokentrail and the frameworks."""
    frame = sys._getframe(2)  # emit()'s caller: stacklevel 2 as warnings.warn counts
    level = 2
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.split(".")[0] not in _NOT_USER and not module.startswith(
            ("asyncio", "concurrent")
        ):
            return level
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return 1
