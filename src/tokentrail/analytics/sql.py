"""The building blocks the analytics queries share: filters, dimensions and SQL fragments.

User input reaches SQL only as bound parameters; dimension and filter names are checked
against the fixed lists here before they shape a query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from ..timeparse import TimeLike, time_range
from .dialect import DUCKDB, Dialect
from .result import Result

__all__ = ["DIMENSIONS", "FILTERS", "canonical_dimension", "where"]

#: Columns a query can be filtered on (``tag`` matches any of a call's tags).
FILTERS: tuple[str, ...] = (
    "user_id",
    "session_id",
    "operation",
    "model",
    "provider",
    "tag",
    "framework",
    "status",
)

#: Dimensions ``by()`` groups on, and the label used where the value is missing.
DIMENSIONS: dict[str, str] = {
    "model": "(unknown)",
    "provider": "(unknown)",
    "user_id": "(none)",
    "session_id": "(none)",
    "operation": "(none)",
    "tag": "(untagged)",
    "framework": "(none)",
    "status": "(none)",
    "priced_model": "(unpriced)",
    "model_version": "(unknown)",
}

#: Dimensions whose key is not their own column. ``model`` is the catalog's model (dated
#: and provider-prefixed spellings of one model are one group), the name as reported
#: when it was not priced; ``model_version`` is the name exactly as reported.
_KEY_EXPRESSIONS = {"model": "coalesce(priced_model, model)", "model_version": "model"}

_ALIASES = {"user": "user_id", "session": "session_id", "tags": "tag", "op": "operation"}

# Written the way both DuckDB and PostgreSQL read an interval.
PERIOD_INTERVAL = {
    "hour": "INTERVAL '1 hour'",
    "day": "INTERVAL '1 day'",
    "week": "INTERVAL '7 days'",
    "month": "INTERVAL '1 month'",
}

TREND_SPAN = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}

SLOT_US = 15 * 60 * 1_000_000

# Sums that can be summed again after grouping (so "other" = sum of the small groups).
AGGREGATES = """
    count(*)::BIGINT AS calls,
    coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens,
    coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens,
    coalesce(sum(cache_read_tokens), 0)::BIGINT AS cache_read_tokens,
    coalesce(sum(cache_write_tokens), 0)::BIGINT AS cache_write_tokens,
    coalesce(sum(reasoning_tokens), 0)::BIGINT AS reasoning_tokens,
    coalesce(sum(total_tokens), 0)::BIGINT AS total_tokens,
    coalesce(sum(total_cost), 0)::DECIMAL(38, 12) AS cost,
    count(*) FILTER (WHERE total_cost IS NULL)::BIGINT AS unpriced_calls,
    count(*) FILTER (WHERE status = 'error')::BIGINT AS errors"""

# Grouped queries hash every row into a group: fewer aggregate states make them much faster
# on large tables, so they skip the rarely needed sums; total_tokens is input + output.
GROUP_AGGREGATES = """
    count(*)::BIGINT AS calls,
    coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens,
    coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens,
    coalesce(sum(cache_read_tokens), 0)::BIGINT AS cache_read_tokens,
    coalesce(sum(total_cost), 0)::DECIMAL(38, 12) AS cost,
    (count(*) - count(total_cost))::BIGINT AS unpriced_calls,
    count(*) FILTER (WHERE status = 'error')::BIGINT AS errors,
    count(*) FILTER (WHERE estimated)::BIGINT AS estimated_calls"""

GROUP_COLUMNS = (
    "calls",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cost",
    "unpriced_calls",
    "errors",
    "estimated_calls",
)

OVER_TIME_SELECT = ", ".join(
    "coalesce(c.input_tokens + c.output_tokens, 0)::BIGINT AS total_tokens"
    if c == "total_tokens"
    else f"coalesce(c.{c}, 0) AS {c}"
    for c in (*GROUP_COLUMNS[:4], "total_tokens", *GROUP_COLUMNS[4:])
)

SUM_COLUMNS = (
    "calls",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost",
    "unpriced_calls",
    "errors",
)


def resum(prefix: str = "", columns: Sequence[str] = GROUP_COLUMNS) -> str:
    casts = {"cost": "DECIMAL(38, 12)"}
    return ",\n    ".join(f"sum({prefix}{c})::{casts.get(c, 'BIGINT')} AS {c}" for c in columns)


# ---------------------------------------------------------------------------- filters
def _spoken(name: str) -> str:
    """The short name people type for a column (``user`` for ``user_id``)."""
    return name.removesuffix("_id") if name in ("user_id", "session_id") else name


def canonical_dimension(name: str) -> str:
    """Check a dimension name (``user`` and ``session`` are accepted for the ``_id`` ones)."""
    dim = _ALIASES.get(name, name)
    if dim not in DIMENSIONS:
        known = ", ".join(_spoken(d) for d in DIMENSIONS)
        raise ValueError(f"unknown dimension {name!r}: use one of {known}")
    return dim


def where(
    since: TimeLike = None,
    until: TimeLike = None,
    filters: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
    tz: str | None = None,
    dialect: Dialect = DUCKDB,
) -> tuple[str, list[Any]]:
    """A ``WHERE`` clause and its parameters for a time range and attribute filters.

    A filter value may be a string or a list of strings (any of them matches).
    """
    clauses: list[str] = []
    params: list[Any] = []
    start, end = time_range(since, until, now=now, tz=tz)
    if start is not None:
        clauses.append("ts >= ?")
        params.append(start)
    if end is not None:
        clauses.append("ts < ?")
        params.append(end)
    for key, value in (filters or {}).items():
        if value is None:
            continue
        name = _ALIASES.get(key, key)
        if name not in FILTERS:
            known = ", ".join(_spoken(f) for f in FILTERS)
            raise ValueError(f"unknown filter {key!r}: use one of {known}")
        values = [value] if isinstance(value, str) else [str(v) for v in value]
        if not values:
            continue
        if name == "tag":
            clauses.append(dialect.any_tag)
            params.append(values)
        elif name == "model":  # the name as reported or the catalog's model it priced as
            marks = ", ".join("?" for _ in values)
            clauses.append(f"(model IN ({marks}) OR priced_model IN ({marks}))")
            params.extend([*values, *values])
        else:
            clauses.append(f"{name} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def keyed_source(dimension: str | None, where_sql: str, dialect: Dialect = DUCKDB) -> str:
    """``(SELECT ... FROM usage) AS keyed`` with a ``key`` column for the dimension (tags
    unnested), to use after ``FROM``."""
    if dimension is None:
        return f"(SELECT *, 'all' AS key FROM usage {where_sql}) AS keyed"
    label = DIMENSIONS[dimension]
    if dimension == "tag":
        return f"(SELECT *, {dialect.tag_rows(label)} AS key FROM usage {where_sql}) AS keyed"
    quoted = label.replace("'", "''")
    column = _KEY_EXPRESSIONS.get(dimension, dimension)
    return f"(SELECT *, coalesce({column}, '{quoted}') AS key FROM usage {where_sql}) AS keyed"


def fetch(con: Any, sql: str, params: Sequence[Any]) -> Result:
    cursor = con.execute(sql, list(params))
    columns = [d[0] for d in cursor.description]
    return Result(columns, [tuple(r) for r in cursor.fetchall()])


def ratio(num: Any, den: Any) -> float:
    return float(num) / float(den) if den else float("nan")
