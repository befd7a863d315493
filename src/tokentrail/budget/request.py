"""A call as the guard sees it: the request before it leaves (:class:`PreflightRequest`), its
worst case (:class:`Estimate`), and the guard-wide settings (:class:`GuardConfig`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from ..context import CallContext

__all__ = ["Estimate", "GuardConfig", "PreflightRequest"]


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


class Estimate(NamedTuple):
    """A call's worst case: prompt tokens (counted), reply tokens (bound) and price.

    A named tuple (made on every guarded call; a frozen dataclass costs three times as much).
    """

    input_tokens: int
    output_tokens: int
    usd: Decimal | None  # None: the model has no price
    exact: bool  # prompt counted with the model's real tokenizer

    @property
    def tokens(self) -> int:
        """``input_tokens + output_tokens``."""
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class GuardConfig:
    """Guard-wide settings (``tracker.budget(...)`` passes them through as keywords).

    ``default_output_tokens``: reply tokens reserved for a call without ``max_tokens`` when
    the catalog knows neither the model's maximum output nor its context window.
    ``heuristic_margin``: factor on prompt counts that come from the heuristic.
    ``reload_every``: seconds between reads of spend only the store knows (rows written
    by trackers without a budget), done in the background.
    ``persist``: write budget definitions next to the database for ``tokentrail budget``.
    ``reservation_ttl``: seconds after which a reservation never settled nor released is
    given back (a stream never closed, a call whose end event never came); 600 s is the
    default request timeout of the OpenAI and Anthropic SDKs.
    ``ledger_timeout``: the longest a call waits for the shared ledger's lock before the
    budgets' ``on_error`` policy decides. ``store_timeout``: the longest a read of the
    store waits for DuckDB's lock.
    """

    default_output_tokens: int = 4096
    heuristic_margin: float = 1.15
    reload_every: float = 30.0
    persist: bool = True
    reservation_ttl: float = 600.0
    ledger_timeout: float = 1.0
    store_timeout: float = 0.5
