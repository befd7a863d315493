"""A finished LlamaIndex call as one :class:`~tokentrail.records.UsageRecord`.

The usage is what the provider reported (see :mod:`.llamaindex_usage`); when it reported
nothing, a call that was served (or streamed part of an answer) is estimated, and a call
that failed before any answer has zero tokens. Embedding batches are always estimated:
LlamaIndex passes on the texts, not the provider's usage.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..records import Status, UsageRecord
from ..usage import Usage
from .llamaindex_calls import Call
from .llamaindex_estimate import estimate_embedding, estimate_prompt, estimate_text, response_text
from .llamaindex_usage import reported

__all__ = ["record_of"]


def record_of(
    call: Call,
    response: Any,
    status: Status,
    exc: BaseException | None,
    chunks: Sequence[str] = (),
) -> UsageRecord:
    """The row of ``call``: ``response`` is its final response (``None`` if it failed)."""
    latency_ms = (time.perf_counter() - call.t0) * 1000.0
    error_type = type(exc).__name__ if exc is not None else None
    if call.kind == "embedding":
        estimated = estimate_embedding(chunks, call.model) if chunks else 0
        return UsageRecord(
            model=call.model,
            provider=call.provider,
            usage=Usage(input_tokens=estimated, estimated=bool(chunks)),
            framework="llamaindex",
            ts=call.ts,
            latency_ms=latency_ms,
            operation="embedding",
            request_model=call.model,
            run_id=call.run_id,
            parent_run_id=call.parent_run_id,
            trace_id=call.trace_id,
            status=status,
            error_type=error_type,
        )
    final = response if response is not None else call.last
    source = call.usage_response if call.usage_response is not None else final
    info, usage = reported(source, final, call.provider, call.model)
    model = info.model or call.model
    if usage is None:
        usage = _unreported(call, final, model, served=status == "ok" or call.last is not None)
    return UsageRecord(
        model=model,
        provider=call.provider,
        usage=usage,
        framework="llamaindex",
        ts=call.ts,
        latency_ms=latency_ms,
        run_id=call.run_id,
        parent_run_id=call.parent_run_id,
        trace_id=call.trace_id,
        streamed=call.streamed,
        status=status,
        error_type=error_type,
        request_id=info.request_id or _error_request_id(exc),
        price_variant=info.price_variant,
        request_model=call.model,
    )


def _unreported(call: Call, final: Any, model: str | None, *, served: bool) -> Usage:
    """The usage of a call whose provider reported none."""
    if not served:
        return Usage()  # failed before any answer: nothing known to be billed
    # Served without reported usage (a stream without include_usage, a local model):
    # estimate what was sent and what came back.
    return Usage(
        input_tokens=estimate_prompt(call.messages, call.prompt, model, call.tools),
        output_tokens=estimate_text(response_text(final), model),
        estimated=True,
    )


def _error_request_id(exc: BaseException | None) -> str | None:
    value = getattr(exc, "request_id", None) if exc is not None else None
    return value if isinstance(value, str) and value else None
