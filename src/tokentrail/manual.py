"""``tracker.record(...)``: a call made outside the frameworks, as a ``UsageRecord``.

The arguments come from user code and may be anything: each is converted (or dropped,
with a warning) so that the record can always be stored. Nothing here raises.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from .extract import extract_usage
from .extract.response_info import search_context_variant
from .formatting import shown
from .pricing.types import Cost
from .providers import infer_provider, normalize_provider
from .records import Status, UsageRecord
from .timeparse import parse_iso
from .usage import COUNT_FIELDS, Usage

__all__ = ["UNREADABLE_USAGE", "manual_record", "set_attribution"]

logger = logging.getLogger("tokentrail")

#: The issue on a record whose ``usage`` argument could not be read: the tracker leaves
#: its cost unknown (zero counts priced would claim the call cost $0).
UNREADABLE_USAGE = "record() usage unreadable"


def manual_record(
    model: Any,
    usage: Any,
    provider: Any,
    estimated: bool,
    *,
    latency_ms: Any = None,
    status: Status = "ok",
    error_type: Any = None,
    request_id: Any = None,
    ts: datetime | str | None = None,
    streamed: bool = False,
    cost: Any = None,
    reported_cost: Any = None,
    price_variant: Any = None,
    run_id: Any = None,
    parent_run_id: Any = None,
    trace_id: Any = None,
) -> UsageRecord:
    """The record of one manual call (see ``Tracker.record`` for the arguments).

    ``usage`` is a :class:`~tokentrail.Usage`, a mapping of its field names (bad values
    are fixed and flagged) or any payload :func:`~tokentrail.extract.extract_usage` reads
    (an OpenAI or Anthropic SDK usage object or its ``model_dump()``, a LangChain
    ``usage_metadata`` dict); one it cannot read gives the issue :data:`UNREADABLE_USAGE`.
    The provider is inferred from the model name when not given.
    Arguments that cannot be used give a record with what could be kept and an issue.
    """
    try:
        name = model if model is None or type(model) is str else str(model)
        rec = UsageRecord(
            model=name,
            provider=_provider_of(provider, name),
            usage=_usage_of(usage, estimated, name),
        )
        rec.latency_ms = _to_float(latency_ms)
        rec.status = status if status in ("error", "cancelled") else "ok"
        rec.error_type = _opt_str(error_type)
        rec.request_id = _opt_str(request_id)
        rec.streamed = bool(streamed)
        rec.cost = _valid_cost(cost)
        rec.reported_cost = _to_decimal(reported_cost)
        # Perplexity's usage names the search context size its request fee depends on.
        rec.price_variant = _opt_str(price_variant) or search_context_variant(usage)
        rec.run_id = _opt_str(run_id)
        rec.parent_run_id = _opt_str(parent_run_id)
        rec.trace_id = _opt_str(trace_id)
        if ts is not None:
            rec.ts = _to_time(ts, rec.ts)
    except Exception as exc:
        logger.warning("tokentrail: record() got unusable arguments (%s); storing what it can", exc)
        rec = UsageRecord(
            model=_safe_str(model),
            provider=_safe_str(provider),
            usage=Usage(issues=(f"record() arguments unusable: {type(exc).__name__}",)),
        )
    return rec


def set_attribution(
    rec: UsageRecord,
    user_id: Any,
    session_id: Any,
    operation: Any,
    tags: Sequence[str] | str | None,
    metadata: Mapping[str, Any] | None,
) -> None:
    """Set the attribution given explicitly (unusable values are ignored, with a warning)."""
    try:
        if user_id is not None:
            rec.user_id = str(user_id)
        if session_id is not None:
            rec.session_id = str(session_id)
        if operation is not None:
            rec.operation = str(operation)
        if tags:
            rec.tags = (tags,) if isinstance(tags, str) else tuple(str(t) for t in tags)
        if metadata:
            rec.metadata = dict(metadata)
    except Exception as exc:
        logger.warning("tokentrail: record() got unusable attribution (%s); ignored", exc)


# (provider argument, model) -> provider id: calls repeat a few models.
_PROVIDER_MEMO: dict[tuple[Any, Any], str | None] = {}
_MEMO_SIZE = 4096


_OWN_KEYS = frozenset((*COUNT_FIELDS, "total_tokens"))


def _usage_of(usage: Any, estimated: bool, model: str | None) -> Usage:
    if isinstance(usage, Usage):
        return usage if not estimated else usage.replace(estimated=True)
    if usage is None or (isinstance(usage, Mapping) and _OWN_KEYS.issuperset(usage)):
        # Our own field names: input_tokens counts every prompt token, cached or not.
        return Usage.from_counts(usage, estimated=estimated, source="record()")
    found = extract_usage(usage, model=model)
    if found is None:
        logger.warning(
            "tokentrail: record(usage=...) of model %r: cannot read token counts from a %s; "
            "its cost is left unknown (pass a tokentrail.Usage or a dict of its field names)",
            model,
            type(usage).__name__,
        )
        return Usage(issues=(UNREADABLE_USAGE,))
    return found.replace(estimated=True) if estimated else found


def _provider_of(provider: Any, model: str | None) -> str | None:
    key = (provider, model)
    try:
        return _PROVIDER_MEMO[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable provider argument
        return normalize_provider(provider) or infer_provider(model=model)
    found = normalize_provider(provider) or infer_provider(model=model)
    if type(provider) in (str, type(None)):
        if len(_PROVIDER_MEMO) >= _MEMO_SIZE:
            _PROVIDER_MEMO.clear()
        _PROVIDER_MEMO[key] = found
    return found


def _to_float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        logger.warning("tokentrail: latency %s is not a number; ignored", shown(value))
        return None
    return result if result == result and result not in (float("inf"), float("-inf")) else None


def _to_time(value: Any, now: datetime) -> datetime:
    """When the call started: a datetime (naive = UTC) or ISO 8601 text, else ``now``."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return parse_iso(value)
        except ValueError:
            pass
    logger.warning(
        "tokentrail: record(ts=%s) is not a datetime or ISO 8601 text; the call is stored "
        "at the time record() was called",
        shown(value),
    )
    return now


def _valid_cost(cost: Any) -> Cost | None:
    # Anything but a Cost cannot be stored (the store would drop the record): price it.
    if cost is None:
        return None
    if isinstance(cost, Cost):
        return cost
    logger.warning("tokentrail: record(cost=...) is not a Cost; the call is priced instead")
    return None


def _opt_str(value: Any) -> str | None:
    # Stored as text: a value that cannot become one would make the store drop the record.
    return value if value is None or type(value) is str else _safe_str(value)


def _safe_str(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return str(value)
    except Exception:
        return None


def _to_decimal(value: Decimal | float | str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        result = Decimal(str(value))
    except (ArithmeticError, ValueError, TypeError):
        result = None
    if result is None or not result.is_finite() or result < 0:
        logger.warning(
            "tokentrail: record(reported_cost=%s) is not an amount >= 0; ignored, the call "
            "is priced from the catalog",
            shown(value),
        )
        return None
    return result
