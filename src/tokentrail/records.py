"""``UsageRecord``: one model call as it is stored — attribution, usage, cost, timing, status."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Literal

import uuid_utils

from .pricing.types import Cost
from .usage import Usage

__all__ = ["COLUMNS", "MONEY_COLUMNS", "Framework", "Status", "UsageRecord", "new_id"]

Framework = Literal["langchain", "llamaindex", "manual"]
Status = Literal["ok", "error", "cancelled"]

#: The columns of the ``usage`` table, in order (a contract: users write SQL against them).
COLUMNS: tuple[str, ...] = (
    "id",
    "ts",
    "latency_ms",
    "framework",
    "provider",
    "model",
    "priced_model",
    "user_id",
    "session_id",
    "operation",
    "run_id",
    "parent_run_id",
    "trace_id",
    "tags",
    "metadata",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
    "input_cost",
    "cache_read_cost",
    "cache_write_cost",
    "output_cost",
    "reasoning_cost",
    "audio_cost",
    "total_cost",
    "currency",
    "cost_source",
    "catalog_version",
    "estimated",
    "streamed",
    "status",
    "error_type",
    "request_id",
)


#: The money columns (USD, ``DECIMAL``; NULL when the cost is unknown).
MONEY_COLUMNS: tuple[str, ...] = (
    "input_cost",
    "cache_read_cost",
    "cache_write_cost",
    "output_cost",
    "reasoning_cost",
    "audio_cost",
    "total_cost",
)


def new_id() -> str:
    """A unique id that sorts by creation time (a UUIDv7, RFC 9562, as 36 characters)."""
    return str(uuid_utils.uuid7())


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(slots=True)
class UsageRecord:
    """One model call. Prompt and response text are never part of it.

    Integrations fill ``usage`` and attribution; the tracker fills ``cost`` (unless the
    caller already priced it) before the record is stored.
    """

    model: str | None
    provider: str | None
    usage: Usage
    framework: Framework = "manual"
    id: str = field(default_factory=new_id)
    #: When the call started (UTC).
    ts: datetime = field(default_factory=_now)
    latency_ms: float | None = None
    user_id: str | None = None
    session_id: str | None = None
    operation: str | None = None
    run_id: str | None = None
    parent_run_id: str | None = None
    trace_id: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    cost: Cost | None = None
    streamed: bool = False
    status: Status = "ok"
    error_type: str | None = None
    request_id: str | None = None
    #: A cost the provider reported itself (OpenRouter ``usage.cost``); wins over the catalog.
    reported_cost: Decimal | None = None
    #: Price variant to apply (``batch``, ``priority``, ``flex``...); ``None`` = standard.
    price_variant: str | None = None
    #: A framework cache hit: no request was sent, recorded at zero cost.
    cache_hit: bool = False

    @property
    def estimated(self) -> bool:
        """True when the token counts were estimated locally."""
        return self.usage.estimated

    @property
    def total_cost(self) -> Decimal | None:
        """The call's cost in USD, ``None`` when unknown."""
        return None if self.cost is None else self.cost.total

    def to_row(self) -> dict[str, Any]:
        """The record as a ``usage`` table row (column name -> value)."""
        u = self.usage
        c = self.cost
        meta = dict(self.metadata)
        if self.cache_hit:
            meta["cache_hit"] = True
        if self.price_variant:
            meta.setdefault("price_variant", self.price_variant)
        if u.issues:
            meta["usage_issues"] = list(u.issues)
        return {
            "id": self.id,
            "ts": self.ts,
            "latency_ms": self.latency_ms,
            "framework": self.framework,
            "provider": self.provider,
            "model": self.model,
            "priced_model": c.model if c else None,
            "user_id": self.user_id,
            "session_id": self.session_id,
            "operation": self.operation,
            "run_id": self.run_id,
            "parent_run_id": self.parent_run_id,
            "trace_id": self.trace_id,
            "tags": list(self.tags),
            "metadata": json.dumps(meta, default=str, separators=(",", ":")) if meta else None,
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "total_tokens": u.total_tokens,
            "cache_read_tokens": u.cache_read_tokens,
            "cache_write_tokens": u.cache_write_tokens,
            "cache_write_1h_tokens": u.cache_write_1h_tokens,
            "reasoning_tokens": u.reasoning_tokens,
            "input_audio_tokens": u.input_audio_tokens,
            "output_audio_tokens": u.output_audio_tokens,
            "input_cost": c.input_cost if c else None,
            "cache_read_cost": c.cache_read_cost if c else None,
            "cache_write_cost": c.cache_write_cost if c else None,
            "output_cost": c.output_cost if c else None,
            "reasoning_cost": c.reasoning_cost if c else None,
            "audio_cost": c.audio_cost if c else None,
            "total_cost": c.total if c else None,
            "currency": c.currency if c else None,
            "cost_source": c.source if c else None,
            "catalog_version": c.catalog_version if c else None,
            "estimated": u.estimated,
            "streamed": self.streamed,
            "status": self.status,
            "error_type": self.error_type,
            "request_id": self.request_id,
        }
