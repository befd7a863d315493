"""Retired: every ``Cost`` is worked out when the call is priced.

Costs used to be left for DuckDB to work out at ingest (``LazyCost``). Nothing builds
one any more; these names stay only until ``store.spool`` and ``store.ingest`` stop
importing them (their owner removes the ingest-priced row format), then this module goes.
"""

from __future__ import annotations

from typing import Any

from .types import Cost

__all__ = ["RATES_MARK", "LazyCost", "pending_of"]

#: The mark of a spool row priced at ingest (older segments may still hold some).
RATES_MARK = "r1"


class LazyCost(Cost):
    """Never built: no cost is left to work out later."""

    __slots__ = ()


def pending_of(cost: LazyCost) -> Any:
    """Always ``None``: no cost is pending."""
    return None
