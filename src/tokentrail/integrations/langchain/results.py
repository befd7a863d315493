"""What a LangChain model end (or error) says, as the call's one ``UsageRecord``.

* Usage from the generation's ``usage_metadata`` (once, even with ``n>1`` choices: every
  choice repeats the request's usage), else the legacy ``llm_output``; the extractors in
  ``tokentrail.extract.langchain`` read both.
* The model the response names wins over the one asked for.
* A LangChain LLM-cache hit (``usage_metadata["total_cost"] == 0``, set by langchain-core
  on cache replays) is a zero-token, zero-cost record marked ``cache_hit``.
* A call without usage is estimated (tiktoken) from the prompt and the text produced or
  streamed, and marked ``estimated``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...extract.langchain import (
    from_langchain_llm_output,
    from_langchain_usage_metadata,
    service_tier_from_usage_metadata,
)
from ...extract.response_info import price_variant
from ...records import Status, UsageRecord
from ...usage import Usage
from .calls import Call
from .messages import as_dicts
from .starts import first_text, text

if TYPE_CHECKING:
    from langchain_core.outputs import LLMResult

__all__ = ["Result", "bare_record", "read_result", "record_of"]

_NOTHING: Mapping[str, Any] = {}
_NO_USAGE = Usage()
_RESULT_MODEL_KEYS = ("model_name", "model")
_REQUEST_ID_KEYS = ("request_id", "id")


@dataclass(slots=True)
class Result:
    """What an ``LLMResult`` says about usage (``text`` only when it has no usage)."""

    usage: Usage | None = None
    model: str | None = None
    request_id: str | None = None
    variant: str | None = None
    cache_hit: bool = False
    text: str | None = None


def read_result(response: LLMResult | None) -> Result:
    """Usage, returned model, request id, price variant and cache-hit flag of a result."""
    if response is None:
        return Result()
    groups = response.generations or []
    # One prompt per model run is the rule (LangChain splits batches into runs).
    generations = groups[0] if len(groups) == 1 else [g for group in groups for g in group]
    message, usage_metadata = _usage_message(generations)
    response_metadata: Mapping[str, Any] = getattr(message, "response_metadata", None) or _NOTHING
    llm_output: Mapping[str, Any] = response.llm_output or _NOTHING
    model = first_text(response_metadata, _RESULT_MODEL_KEYS) or first_text(
        llm_output, _RESULT_MODEL_KEYS
    )
    request_id = first_text(response_metadata, _REQUEST_ID_KEYS)
    variant = _service_tier(usage_metadata, response_metadata)
    if usage_metadata:
        usage = from_langchain_usage_metadata(usage_metadata)
        cache_hit = _is_cache_hit(usage_metadata)
    else:
        usage = from_langchain_llm_output(llm_output) if llm_output else None
        cache_hit = False
    if usage is not None or not generations:
        return Result(usage, model, request_id, variant, cache_hit)
    return Result(usage, model, request_id, variant, cache_hit, _generated_text(generations))


def _usage_message(generations: list[Any]) -> tuple[Any, Any]:
    """The first generation's message that has a ``usage_metadata``, and that metadata."""
    for gen in generations:
        message = getattr(gen, "message", None)
        usage_metadata = getattr(message, "usage_metadata", None)
        if usage_metadata:
            return message, usage_metadata
    return (getattr(generations[0], "message", None) if generations else None), None


def _generated_text(generations: list[Any]) -> str:
    # Every generation of one run is a choice of the same request: their texts add up.
    parts: list[str] = []
    for gen in generations:
        parts.append(getattr(gen, "text", "") or "")
        message = getattr(gen, "message", None)
        for tc in getattr(message, "tool_calls", None) or ():
            parts.append(str(tc.get("name", "")) + json.dumps(tc.get("args", {}), default=str))
    return "".join(parts)


def _is_cache_hit(usage_metadata: Mapping[str, Any]) -> bool:
    # langchain-core replays cached chat generations with usage_metadata["total_cost"] = 0
    # (BaseChatModel._convert_cached_generations); providers never set that key.
    return "total_cost" in usage_metadata and not usage_metadata.get("total_cost")


def _service_tier(usage_metadata: Any, response_metadata: Mapping[str, Any]) -> str | None:
    """The price variant a call was billed at (``flex``, ``priority``, ``batch``), if any."""
    # Tier-named detail keys (priority_cache_read, flex...) say it first, else the response.
    tier = service_tier_from_usage_metadata(usage_metadata) if usage_metadata else None
    if tier is None:
        tier = response_metadata.get("service_tier")
        if tier is None:
            return None  # the usual case
    return price_variant(tier)


def record_of(
    call: Call, response: LLMResult | None, status: Status, error: BaseException | None
) -> UsageRecord:
    """The one record of a finished call (``response`` is ``None`` when none came)."""
    latency_ms = (time.perf_counter() - call.t0) * 1000.0
    result = read_result(response)
    model = result.model or call.model
    metadata = call.metadata
    usage = result.usage
    if result.cache_hit:
        if usage is not None and not usage.is_empty:
            # No request was sent: keep what the cached answer had cost, for savings.
            metadata = {
                **metadata,
                "saved_input_tokens": usage.input_tokens,
                "saved_output_tokens": usage.output_tokens,
            }
        usage = _NO_USAGE
    elif usage is None:
        produced = result.text if result.text is not None else "".join(call.texts or ())
        # An error with nothing streamed was most likely not billed; a cancelled call
        # most likely reached the provider (estimated as a lower bound).
        if status != "error" or produced:
            usage = _estimate(call, model, produced)
    return UsageRecord(
        model=model,
        provider=call.provider,
        usage=usage if usage is not None else _NO_USAGE,
        framework="langchain",
        ts=call.ts,
        latency_ms=latency_ms,
        run_id=call.run_id,
        parent_run_id=call.parent_run_id,
        trace_id=call.trace_id,
        metadata=metadata,
        streamed=bool(call.texts),
        status=status,
        request_id=result.request_id or _error_request_id(error),
        price_variant=result.variant,
        cache_hit=result.cache_hit,
        request_model=call.model,
    )


def bare_record(call: Call, status: Status) -> UsageRecord:
    """The record of a call whose result could not be read: what its start said."""
    return UsageRecord(
        model=call.model,
        provider=call.provider,
        usage=_NO_USAGE,
        framework="langchain",
        ts=call.ts,
        latency_ms=(time.perf_counter() - call.t0) * 1000.0,
        run_id=call.run_id,
        parent_run_id=call.parent_run_id,
        trace_id=call.trace_id,
        metadata=call.metadata,
        streamed=bool(call.texts),
        status=status,
        request_model=call.model,
    )


logger = logging.getLogger("tokentrail")

# Models already warned about a stream without usage (once per model per process).
_WARNED_STREAMS: set[str | None] = set()
_WARN_LOCK = threading.Lock()


def _warn_stream_without_usage(model: str | None) -> None:
    with _WARN_LOCK:
        if model in _WARNED_STREAMS or len(_WARNED_STREAMS) > 1000:
            return
        _WARNED_STREAMS.add(model)
    logger.warning(
        "tokentrail: a streamed call of %r reported no token usage, so its counts are "
        "estimated (estimated=True in the table). Ask for the real counts: "
        'ChatOpenAI(..., stream_usage=True), or model_kwargs={"stream_options": '
        '{"include_usage": True}} for other OpenAI-compatible chat models.',
        model,
    )


def _estimate(call: Call, model: str | None, output_text: str) -> Usage:
    """Estimate a call the provider reported no usage for (prompt + what was generated)."""
    from ...estimate import count_message_tokens, count_text_tokens

    if call.texts:
        _warn_stream_without_usage(model)

    messages = call.messages if call.messages is not None else []
    prompt = count_message_tokens(as_dicts(messages, call.chat), model=model)
    completion = count_text_tokens(output_text, model=model) if output_text else 0
    return Usage.from_counts(
        input_tokens=prompt, output_tokens=completion, estimated=True, source="estimate"
    )


def _error_request_id(error: BaseException | None) -> str | None:
    if error is None:
        return None
    return text(getattr(error, "request_id", None))
