"""Cache savings: what cached input tokens would have cost at the full input price, minus
what they did cost.

The full price comes from the price catalog (``tokentrail.pricing``) for each priced model;
it is taken from a small request (1,000 uncached input tokens) so that long-context tiers
never apply to the aggregate. Rows priced by the provider itself (``cost_source =
'provider'``) carry no cache breakdown and are left out.
"""

from __future__ import annotations

import functools
import logging
from decimal import Decimal
from typing import Any

__all__ = ["cache_savings_rows", "full_input_price"]

logger = logging.getLogger("tokentrail")

_PROBE_TOKENS = 1000


@functools.lru_cache(maxsize=512)
def full_input_price(model: str, provider: str | None) -> Decimal | None:
    """USD per uncached input token of a catalog model, ``None`` when it is not priced."""
    try:
        from ..pricing import cost
        from ..usage import Usage

        # strict: a model priced in another process (register()) is unknown here; its
        # savings stay unknown without a "no price known" warning about a stored row.
        priced = cost(
            model, provider=provider, usage=Usage(input_tokens=_PROBE_TOKENS), strict=True
        )
    except Exception:  # an unknown model or a pricing problem: savings stay unknown
        logger.debug("tokentrail: no input price for %s/%s", provider, model, exc_info=True)
        return None
    if priced is None:
        return None
    unit: Decimal = priced.input_cost / _PROBE_TOKENS
    return unit


#: The rows whose cache reads saved money we can price. PostgreSQL's ``usage_cache_reads``
#: index (schema migration 9) has this predicate word for word: change both together.
CACHE_SAVED_ROWS = (
    "cache_read_tokens > 0 AND total_cost IS NOT NULL AND coalesce(cost_source, '') <> 'provider'"
)


def cache_savings_rows(con: Any, where_sql: str, params: list[Any]) -> list[dict[str, Any]]:
    """Per priced model: cache_read_tokens, cache_read_cost, full_price_cost, savings."""
    extra = CACHE_SAVED_ROWS
    clause = f"{where_sql} AND {extra}" if where_sql else f"WHERE {extra}"
    sql = f"""
        SELECT priced_model, provider, sum(cache_read_tokens)::BIGINT AS tokens,
            coalesce(sum(cache_read_cost), 0)::DECIMAL(38, 12) AS spent
        FROM usage {clause} GROUP BY 1, 2 ORDER BY tokens DESC"""
    out: list[dict[str, Any]] = []
    for model, provider, tokens, spent in con.execute(sql, params).fetchall():
        unit = full_input_price(model, provider) if model else None
        full = None if unit is None else unit * tokens
        out.append(
            {
                "priced_model": model,
                "provider": provider,
                "cache_read_tokens": int(tokens),
                "cache_read_cost": spent,
                "full_price_cost": full,
                "savings": None if full is None else full - spent,
            }
        )
    return out
