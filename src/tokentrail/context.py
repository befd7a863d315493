"""Attribution context: ``tracker.track(...)`` blocks and the runs they collect.

A ``track()`` block pushes a :class:`Run` on a context variable, so every call made inside
it — in this thread, in tasks and threads that copy the context — is attributed to it and
counted in its summary. Blocks nest: the innermost block's attribution wins field by field,
tags are merged, and each enclosing run counts the call too.

Integrations take a :class:`CallContext` snapshot when a model call *starts* (the end
event may arrive on another thread) and hand it to ``Tracker.capture`` with the record.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .formatting import money
from .usage import Usage

if TYPE_CHECKING:
    from .records import UsageRecord

__all__ = ["Attribution", "CallContext", "Run", "RunSummary", "active_runs"]


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who and what a call is for. ``None`` fields are unset and inherit from outer levels."""

    user_id: str | None = None
    session_id: str | None = None
    operation: str | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        user_id: str | None = None,
        session_id: str | None = None,
        operation: str | None = None,
        tags: Sequence[str] | str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Attribution:
        """Build from loosely typed arguments (a single tag may be a string)."""
        if isinstance(tags, str):
            tags = (tags,)
        return cls(
            user_id=_opt_str(user_id),
            session_id=_opt_str(session_id),
            operation=_opt_str(operation),
            tags=tuple(str(t) for t in tags or ()),
            metadata=dict(metadata or {}),
        )

    def over(self, outer: Attribution) -> Attribution:
        """This attribution layered over ``outer``: set fields win, tags and metadata merge."""
        tags = outer.tags + tuple(t for t in self.tags if t not in outer.tags)
        return Attribution(
            user_id=self.user_id if self.user_id is not None else outer.user_id,
            session_id=self.session_id if self.session_id is not None else outer.session_id,
            operation=self.operation if self.operation is not None else outer.operation,
            tags=tags,
            metadata={**outer.metadata, **self.metadata} if self.metadata else outer.metadata,
        )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """Totals of the calls made inside one ``track()`` block."""

    calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    reasoning_tokens: int
    total_cost: Decimal
    unpriced_calls: int
    errors: int
    duration_s: float

    @property
    def total_tokens(self) -> int:
        """``input_tokens + output_tokens``."""
        return self.input_tokens + self.output_tokens

    def __str__(self) -> str:
        unpriced = f" (+{self.unpriced_calls} unpriced)" if self.unpriced_calls else ""
        return (
            f"Session summary — duration {self.duration_s:,.1f}s · calls {self.calls:,} · "
            f"tokens {self.total_tokens:,} ({self.input_tokens:,} in / "
            f"{self.output_tokens:,} out) · cost {money(self.total_cost)}{unpriced}"
        )

    def block(self) -> str:
        """The summary as a block of lines, for the end of a script or a job::

        Session complete
          Duration     1.2 s
          Operations   3 calls (1 error)
          Tokens       1,234 (1,000 in / 234 out; 800 cached, 50 reasoning)
          Cost         $0.0004
        """
        errors = f" ({self.errors:,} error{'s' if self.errors != 1 else ''})" if self.errors else ""
        parts = [f"{self.cache_read_tokens:,} cached"] if self.cache_read_tokens else []
        if self.reasoning_tokens:
            parts.append(f"{self.reasoning_tokens:,} reasoning")
        detail = f"; {', '.join(parts)}" if parts else ""
        unpriced = f" (+{self.unpriced_calls:,} calls unpriced)" if self.unpriced_calls else ""
        calls = f"{self.calls:,} call{'s' if self.calls != 1 else ''}"
        return "\n".join(
            [
                "Session complete",
                f"  Duration     {self.duration_s:,.1f} s",
                f"  Operations   {calls}{errors}",
                f"  Tokens       {self.total_tokens:,} ({self.input_tokens:,} in / "
                f"{self.output_tokens:,} out{detail})",
                f"  Cost         {money(self.total_cost)}{unpriced}",
            ]
        )

    def _repr_html_(self) -> str:
        rows = [
            ("Duration", f"{self.duration_s:,.1f} s"),
            ("Calls", f"{self.calls:,}"),
            ("Input tokens", f"{self.input_tokens:,}"),
            ("Output tokens", f"{self.output_tokens:,}"),
            ("Total tokens", f"{self.total_tokens:,}"),
            ("Cost", money(self.total_cost)),
        ]
        if self.unpriced_calls:
            rows.append(("Unpriced calls", f"{self.unpriced_calls:,}"))
        body = "".join(
            f"<tr><th style='text-align:left'>{k}</th><td>{v}</td></tr>" for k, v in rows
        )
        return f"<table><caption>tokentrail run</caption>{body}</table>"


class Run:
    """One ``track()`` block: its attribution and the running totals of its calls."""

    def __init__(self, tracker: object, attribution: Attribution, run_id: str) -> None:
        self.tracker = tracker
        self.attribution = attribution
        self.run_id = run_id
        self.started_at = datetime.now(timezone.utc)
        self._t0 = time.perf_counter()
        self._t1: float | None = None
        self._lock = threading.Lock()
        self._calls = 0
        self._usage = Usage()
        self._cost = Decimal(0)
        self._unpriced = 0
        self._errors = 0

    def add(self, record: UsageRecord) -> None:
        """Count one captured call in this run."""
        with self._lock:
            self._calls += 1
            self._usage = Usage(
                input_tokens=self._usage.input_tokens + record.usage.input_tokens,
                output_tokens=self._usage.output_tokens + record.usage.output_tokens,
                cache_read_tokens=self._usage.cache_read_tokens + record.usage.cache_read_tokens,
                reasoning_tokens=self._usage.reasoning_tokens + record.usage.reasoning_tokens,
            )
            if record.cost is None:
                self._unpriced += 1
            else:
                self._cost += record.cost.total
            if record.status == "error":
                self._errors += 1

    def close(self) -> None:
        """Stop the run's clock."""
        if self._t1 is None:
            self._t1 = time.perf_counter()

    def summary(self) -> RunSummary:
        """The totals so far (final once the block has exited)."""
        end = self._t1 if self._t1 is not None else time.perf_counter()
        with self._lock:
            return RunSummary(
                calls=self._calls,
                input_tokens=self._usage.input_tokens,
                output_tokens=self._usage.output_tokens,
                cache_read_tokens=self._usage.cache_read_tokens,
                reasoning_tokens=self._usage.reasoning_tokens,
                total_cost=self._cost,
                unpriced_calls=self._unpriced,
                errors=self._errors,
                duration_s=end - self._t0,
            )

    def __repr__(self) -> str:
        return f"<tokentrail Run {self.run_id} {self.summary()}>"

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


_RUNS: ContextVar[tuple[Run, ...]] = ContextVar("tokentrail_runs", default=())


def active_runs() -> tuple[Run, ...]:
    """The ``track()`` runs active in the current context, outermost first."""
    return _RUNS.get()


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a call inherits from its surroundings, taken when the call starts.

    ``attribution`` is already merged (call > handler > innermost block > tracker defaults);
    ``runs`` are the active blocks of the capturing tracker that will count the call.
    """

    attribution: Attribution
    runs: tuple[Run, ...] = ()

    def with_default_operation(self, operation: str) -> CallContext:
        """This context with ``operation`` when its attribution names none (the user's wins:
        budgets and reports are keyed on it). Set at the call's start, so the budget
        reservation and the stored row see the same operation."""
        attribution = self.attribution
        if attribution.operation is not None:
            return self
        return CallContext(Attribution(operation=operation).over(attribution), self.runs)
