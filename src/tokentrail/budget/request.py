"""A call as the guard sees it: the request before it leaves (:class:`PreflightRequest`), its
worst case (:class:`Estimate`), the amounts held for it (:class:`Reservation`), and the
guard-wide settings (:class:`GuardConfig`)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..context import CallContext
from .definition import Amount, Budget

__all__ = ["Estimate", "GuardConfig", "PreflightRequest", "Reservation"]


@dataclass(slots=True)
class PreflightRequest:
    """What the guard needs to know about a call before it is sent.

    ``messages`` (chat) or ``prompt`` (completion text) are counted with the model's
    tokenizer; ``max_tokens`` bounds the reply; ``context`` is the call's
    :class:`~tokentrail.context.CallContext` (taken now when ``None``).
    """

    model: str | None
    provider: str | None
    messages: Sequence[Mapping[str, Any]] | None = None
    prompt: str | None = None
    max_tokens: int | None = None
    tools: Sequence[Any] | None = None
    context: CallContext | None = None
    run_id: str | None = None


@dataclass(frozen=True, slots=True)
class Estimate:
    """A call's worst case: prompt tokens (counted), reply tokens (bound) and price."""

    input_tokens: int
    output_tokens: int
    usd: Decimal | None  # None: the model has no price
    exact: bool  # prompt counted with the model's real tokenizer

    @property
    def tokens(self) -> int:
        """``input_tokens + output_tokens``."""
        return self.input_tokens + self.output_tokens


@dataclass(eq=False, slots=True)
class Reservation:
    """Worst-case amounts held for one call until it settles.

    ``entries`` are ``(budget, bucket, amount)``: what each applicable budget holds.
    """

    id: int
    estimate: Estimate
    entries: list[tuple[Budget, Any, Amount]]
    model: str | None
    provider: str | None
    created: float = field(default_factory=time.monotonic)
    done: bool = False
    #: Given back by ``reservation_ttl``: a late settle still counts what the call used.
    expired: bool = False


@dataclass(slots=True)
class GuardConfig:
    """Guard-wide settings (``tracker.budget(...)`` passes them through as keywords).

    ``default_output_tokens``: reply tokens reserved when a call sets no ``max_tokens``.
    ``heuristic_margin``: factor on prompt counts that come from the heuristic.
    ``reload_every``: seconds between reloads of store spend (several processes).
    ``persist``: write budget definitions next to the database for ``tokentrail budget``.
    ``reservation_ttl``: seconds after which a reservation that was never settled nor
    released is given back (a call whose end event never came, e.g. another callback
    handler refused it after ours reserved); ``0`` keeps reservations forever.
    """

    default_output_tokens: int = 4096
    heuristic_margin: float = 1.15
    reload_every: float = 5.0
    persist: bool = True
    reservation_ttl: float = 3600.0
