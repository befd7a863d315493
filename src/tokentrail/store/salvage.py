"""A record reduced to values that always encode, for one whose row cannot be written.

A record whose fields hold objects without a usable ``str()`` would otherwise be lost;
its counts, attribution and status are still worth keeping. The stored row says so with
``"encode_error": true`` in its metadata.
"""

from __future__ import annotations

from typing import Any

from ..records import UsageRecord
from ..usage import COUNT_FIELDS, Usage

__all__ = ["salvaged"]


def salvaged(record: UsageRecord) -> UsageRecord:
    """A copy of ``record`` holding only text, counts and status."""
    counts = Usage.from_counts(
        {name: getattr(record.usage, name, 0) for name in COUNT_FIELDS},
        estimated=bool(getattr(record.usage, "estimated", False)),
        source="salvaged record",
    )
    return UsageRecord(
        model=_safe_text(record.model),
        provider=_safe_text(record.provider),
        usage=counts,
        framework=record.framework if record.framework in ("langchain", "llamaindex") else "manual",
        id=_safe_text(record.id) or "",
        user_id=_safe_text(record.user_id),
        session_id=_safe_text(record.session_id),
        operation=_safe_text(record.operation),
        metadata={"encode_error": True},
        status=record.status if record.status in ("ok", "error", "cancelled") else "ok",
    )


def _safe_text(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"
