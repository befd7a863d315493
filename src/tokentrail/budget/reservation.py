"""What is held for one call in flight: :class:`Reservation`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .amounts import Amount
from .definition import Budget
from .request import Estimate

__all__ = ["Reservation"]


@dataclass(eq=False, slots=True)
class Reservation:
    """Worst-case amounts held for one call until it settles.

    ``entries`` are ``(budget, ledger slot, amount)``: what each applicable budget holds.
    A reservation never settled nor released expires in the ledger after
    ``GuardConfig.reservation_ttl``; a late settle still counts what the call used.
    """

    id: int
    estimate: Estimate
    entries: list[tuple[Budget, Any, Amount]]
    model: str | None
    provider: str | None
    created: float = field(default_factory=time.monotonic)
    done: bool = False
    #: The reservation's id in the shared ledger (unique across processes).
    ledger_id: str | None = None
