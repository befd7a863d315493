"""The analytics queries: parameterized SQL over the ``usage`` table, one function each.

Each function takes an open DuckDB connection and returns a :class:`Result` (no pandas
needed); :class:`tokentrail.analytics.Analytics` turns them into DataFrames. User input
only ever reaches the SQL as bound parameters; dimension and period names are checked
against fixed lists before they shape a query.

Conventions: ``since`` is inclusive, ``until`` exclusive; money is USD; rows with an
unknown cost (``total_cost IS NULL``) are counted in calls and tokens but add nothing to
``cost`` and are reported as ``unpriced_calls``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from ..timeparse import (
    TimeLike,
    get_zone,
    month_end,
    parse_time,
    period_start,
    time_range,
)
from .dialect import dialect_of
from .result import Result
from .savings import cache_savings_rows
from .sql import (
    AGGREGATES,
    GROUP_AGGREGATES,
    OVER_TIME_SELECT,
    PERIOD_INTERVAL,
    SLOT_US,
    TREND_SPAN,
    canonical_dimension,
    fetch,
    keyed_source,
    ratio,
    resum,
    where,
)

__all__ = [
    "by",
    "cache_savings",
    "forecast",
    "history",
    "latency",
    "over_time",
    "rate",
    "summary",
    "trend",
]


# ---------------------------------------------------------------------------- summary
def summary(
    con: Any,
    since: TimeLike = None,
    until: TimeLike = None,
    *,
    now: datetime | None = None,
    **filters: Any,
) -> Result:
    """One row of totals: calls, tokens, cost, error rate, estimated share, cache hit rate,
    cache savings and reasoning share.

    ``cache_hit_rate`` = cache_read_tokens / input_tokens; ``reasoning_share`` =
    reasoning_tokens / output_tokens; ratios are NaN when undefined (nothing to divide by).
    """
    where_sql, params = where(since, until, filters, now=now, dialect=dialect_of(con))
    sql = f"""
        SELECT {AGGREGATES},
            count(*) FILTER (WHERE estimated)::BIGINT AS estimated_calls,
            timezone('UTC', min(ts)) AS first_call,
            timezone('UTC', max(ts)) AS last_call
        FROM usage {where_sql}"""
    row = fetch(con, sql, params).first()
    savings = cache_savings_rows(con, where_sql, params)
    saved = sum((r["savings"] for r in savings if r["savings"] is not None), Decimal(0))
    unpriced_cache = sum(r["cache_read_tokens"] for r in savings if r["savings"] is None)
    out: dict[str, Any] = {
        "calls": row["calls"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "total_tokens": row["total_tokens"],
        "cache_read_tokens": row["cache_read_tokens"],
        "cache_write_tokens": row["cache_write_tokens"],
        "reasoning_tokens": row["reasoning_tokens"],
        "cost": row["cost"],
        "priced_calls": row["calls"] - row["unpriced_calls"],
        "unpriced_calls": row["unpriced_calls"],
        "errors": row["errors"],
        "error_rate": ratio(row["errors"], row["calls"]),
        "estimated_share": ratio(row["estimated_calls"], row["calls"]),
        "cache_hit_rate": ratio(row["cache_read_tokens"], row["input_tokens"]),
        "cache_savings": saved,
        "cache_tokens_unpriced": unpriced_cache,
        "reasoning_share": ratio(row["reasoning_tokens"], row["output_tokens"]),
        "avg_cost_per_call": (
            row["cost"] / (row["calls"] - row["unpriced_calls"])
            if row["calls"] - row["unpriced_calls"]
            else Decimal(0)
        ),
        "first_call": row["first_call"],
        "last_call": row["last_call"],
    }
    return Result(list(out), [tuple(out.values())], utc_columns=("first_call", "last_call"))


def cache_savings(
    con: Any,
    since: TimeLike = None,
    until: TimeLike = None,
    *,
    now: datetime | None = None,
    **filters: Any,
) -> Result:
    """Per priced model: cached tokens, what they cost, what they would have cost at the
    full input price, and the difference (``savings``; NULL when the model's price is unknown).
    """
    where_sql, params = where(since, until, filters, now=now, dialect=dialect_of(con))
    rows = cache_savings_rows(con, where_sql, params)
    columns = [
        "priced_model",
        "provider",
        "cache_read_tokens",
        "cache_read_cost",
        "full_price_cost",
        "savings",
    ]
    return Result(columns, [tuple(r[c] for c in columns) for r in rows])


# ---------------------------------------------------------------------------- by dimension
def by(
    con: Any,
    dimension: str,
    since: TimeLike = None,
    until: TimeLike = None,
    *,
    top: int | None = None,
    now: datetime | None = None,
    **filters: Any,
) -> Result:
    """Totals per value of ``dimension``, biggest cost first (then tokens, then name).

    With ``top=N`` the groups after the N-th are added up into one row labelled ``other``.
    ``share`` is each group's part of the total cost (of total tokens when nothing is
    priced). With ``dimension="tag"`` a call counts once under each of its tags.
    """
    dim = canonical_dimension(dimension)
    where_sql, params = where(since, until, filters, now=now, dialect=dialect_of(con))
    limit = top if top is not None and top > 0 else 2**62
    # Floats divided as floats: both engines then give the same last digit.
    double = dialect_of(con).double
    sql = f"""
        WITH g AS (
            SELECT key, {GROUP_AGGREGATES}
            FROM {keyed_source(dim, where_sql, dialect_of(con))} GROUP BY key
        ), r AS (
            SELECT *, row_number() OVER (
                ORDER BY cost DESC, input_tokens + output_tokens DESC, key) AS rn
            FROM g
        ), c AS (
            SELECT CASE WHEN rn <= ? THEN key ELSE 'other' END AS {dim},
                min(rn) AS rn, {resum()}
            FROM r GROUP BY 1
        ), t AS (SELECT sum(cost) AS all_cost, sum(input_tokens + output_tokens) AS tokens FROM c)
        SELECT {dim}, calls, input_tokens, output_tokens, cache_read_tokens,
            (input_tokens + output_tokens)::BIGINT AS total_tokens, cost, unpriced_calls, errors,
            estimated_calls,
            CASE WHEN t.all_cost > 0 THEN c.cost::{double} / t.all_cost::{double}
                 WHEN t.tokens > 0 THEN (input_tokens + output_tokens)::{double} / t.tokens::{double}
                 ELSE 0 END::{double} AS share
        FROM c, t ORDER BY rn"""
    return fetch(con, sql, [*params, limit])


def model_versions(
    con: Any,
    since: TimeLike = None,
    until: TimeLike = None,
    *,
    now: datetime | None = None,
    **filters: Any,
) -> Result:
    """The names as reported (``model_version``) under each catalog model (``model``)
    that was reported under more than one name, most calls first."""
    where_sql, params = where(since, until, filters, now=now, dialect=dialect_of(con))
    sql = f"""
        WITH v AS (
            SELECT coalesce(priced_model, model, '(unknown)') AS model,
                coalesce(model, '(unknown)') AS model_version, count(*)::BIGINT AS calls
            FROM usage {where_sql} GROUP BY 1, 2
        )
        SELECT model, model_version, calls FROM v
        WHERE model IN (SELECT model FROM v GROUP BY model HAVING count(*) > 1)
        ORDER BY model, calls DESC, model_version"""
    return fetch(con, sql, params)


# ---------------------------------------------------------------------------- over time
def over_time(
    con: Any,
    period: str = "day",
    by: str | None = None,
    since: TimeLike = None,
    until: TimeLike = None,
    *,
    tz: str = "UTC",
    top: int | None = None,
    now: datetime | None = None,
    **filters: Any,
) -> Result:
    """Totals per calendar period (``hour``, ``day``, ``week`` from Monday, ``month``).

    ``period`` is the local start of each period in ``tz`` (a naive timestamp). Every period
    from the first to the last (or from ``since`` to ``until`` when given) is present, with
    zeros where nothing happened; with ``by``, every period has a row for every group, and
    ``top=N`` keeps the N biggest groups and adds the rest up as ``other``.
    """
    if period not in PERIOD_INTERVAL:
        raise ValueError(f"unknown period {period!r}: use one of {', '.join(PERIOD_INTERVAL)}")
    get_zone(tz)  # fail early with a clear message
    dim = canonical_dimension(by) if by is not None else None
    start, end = time_range(since, until, now=now, tz=tz)
    where_sql, params = where(start, end, filters, dialect=dialect_of(con))
    limit = top if top is not None and top > 0 else 2**62
    interval = PERIOD_INTERVAL[period]
    dialect = dialect_of(con)
    lo = f"date_trunc('{period}', timezone(?, ?::TIMESTAMPTZ))"
    # Rows are first summed per 15-minute UTC slot (integer arithmetic on the stored
    # microseconds; every time zone offset is a multiple of 15 minutes), and only those few
    # slots are converted to local periods: converting each row's time zone is slow.
    sql = f"""
        WITH slots AS (
            SELECT {dialect.time_slot(SLOT_US)} AS slot, key, {GROUP_AGGREGATES}
            FROM {keyed_source(dim, where_sql, dialect)} GROUP BY 1, 2
        ), base AS (
            SELECT date_trunc('{period}', timezone(?, {dialect.slot_time("slot", SLOT_US)}))
                AS period, key, {resum()}
            FROM slots GROUP BY 1, 2
        ), ranked AS (
            SELECT key, row_number() OVER (
                ORDER BY sum(cost) DESC, sum(input_tokens + output_tokens) DESC, key) AS rn
            FROM base GROUP BY key
        ), collapsed AS (
            SELECT period, CASE WHEN rn <= ? THEN b.key ELSE 'other' END AS key,
                min(rn) AS rn, {resum("b.")}
            FROM base b JOIN ranked USING (key) GROUP BY 1, 2
        ), bounds AS (
            SELECT coalesce({lo}, min(period)) AS lo, coalesce({lo}, max(period)) AS hi
            FROM collapsed
        ), periods AS (
            SELECT {dialect.periods("lo", "hi", interval)} AS period
            FROM bounds WHERE lo IS NOT NULL AND hi >= lo
        ), keys AS (
            SELECT key, min(rn) AS rn FROM collapsed GROUP BY key
        )
        SELECT p.period, k.key, {OVER_TIME_SELECT}
        FROM periods p CROSS JOIN keys k
        LEFT JOIN collapsed c ON c.period = p.period AND c.key = k.key
        ORDER BY p.period, k.rn"""
    last = end - timedelta(microseconds=1) if end is not None else None
    all_params = [*params, tz, limit, tz, start, tz, last]
    result = fetch(con, sql, all_params)
    if dim is None:
        keep = [i for i, c in enumerate(result.columns) if c != "key"]
        result = Result(
            [result.columns[i] for i in keep], [tuple(r[i] for i in keep) for r in result.rows]
        )
    else:
        result.columns[1] = dim
    result.attrs.update({"period": period, "tz": tz, "by": dim})
    return result


# ---------------------------------------------------------------------------- trend
def trend(
    con: Any,
    period: str = "week",
    *,
    now: datetime | None = None,
    **filters: Any,
) -> Result:
    """The last ``period`` (``hour``, ``day``, ``week`` = 7 days, ``month`` = 30 days) against
    the one before it: one row per metric with ``current``, ``previous``, ``change`` and
    ``change_pct`` (NaN when the previous value is 0).
    """
    spans = {**TREND_SPAN, "month": timedelta(days=30)}
    if period not in spans:
        raise ValueError(f"unknown period {period!r}: use one of {', '.join(spans)}")
    current_end = parse_time("now", now=now)
    assert current_end is not None
    span = spans[period]
    current_start = current_end - span
    previous_start = current_start - span
    where_sql, params = where(previous_start, current_end, filters, dialect=dialect_of(con))
    half = "ts >= ?"
    sql = f"""
        SELECT {half} AS is_current, {AGGREGATES}
        FROM usage {where_sql} GROUP BY 1"""
    got = {r["is_current"]: r for r in fetch(con, sql, [current_start, *params])}
    metrics = ("cost", "total_tokens", "input_tokens", "output_tokens", "calls")
    rows = []
    for metric in metrics:
        cur = got.get(True, {}).get(metric, 0)
        prev = got.get(False, {}).get(metric, 0)
        change = cur - prev
        pct = float(change) / float(prev) * 100 if prev else float("nan")
        rows.append((metric, cur, prev, change, pct))
    return Result(
        ["metric", "current", "previous", "change", "change_pct"],
        rows,
        attrs={
            "period": period,
            "current_from": current_start,
            "previous_from": previous_start,
            "until": current_end,
        },
    )


# ---------------------------------------------------------------------------- forecast
def forecast(
    con: Any,
    *,
    lookback_days: int = 7,
    tz: str = "UTC",
    now: datetime | None = None,
    **filters: Any,
) -> Result:
    """Month-end spend projected from the recent daily run rate.

    ``projected`` = month-to-date spend + ``run_rate_per_day`` × days left in the month,
    where the run rate is the spend of the last ``lookback_days`` days divided by that many
    days (fewer when the data is younger than that, but at least one). The ``method``
    column says this in words, with the numbers used.
    """
    current = parse_time("now", now=now)
    assert current is not None
    month_start = period_start(current, "month", tz)
    end = month_end(current, tz)
    window_start = current - timedelta(days=lookback_days)
    where_sql, params = where(None, current, filters, dialect=dialect_of(con))
    sql = f"""
        SELECT coalesce(sum(total_cost) FILTER (WHERE ts >= ?), 0)::DECIMAL(38, 12) AS mtd,
               coalesce(sum(total_cost) FILTER (WHERE ts >= ?), 0)::DECIMAL(38, 12) AS recent,
               timezone('UTC', min(ts)) AS first_call,
               count(*) FILTER (WHERE total_cost IS NULL AND ts >= ?)::BIGINT AS unpriced
        FROM usage {where_sql}"""
    row = fetch(con, sql, [month_start, window_start, month_start, *params]).first()
    first = row["first_call"]
    days = float(lookback_days)
    if first is not None:
        age_days = (current - first.replace(tzinfo=timezone.utc)).total_seconds() / 86400
        days = max(1.0, min(days, age_days))
    recent: Decimal = row["recent"]
    mtd: Decimal = row["mtd"]
    rate = recent / Decimal(str(days)) if days else Decimal(0)
    days_left = (end - current).total_seconds() / 86400
    projected = mtd + rate * Decimal(str(round(days_left, 6)))
    local_month = month_start.astimezone(get_zone(tz)).strftime("%Y-%m")
    method = (
        f"month-to-date spend ${mtd:,.2f} + run rate ${rate:,.4f}/day (spend of the last "
        f"{days:g} days ÷ {days:g}) × {days_left:.2f} days left in {local_month} ({tz})"
    )
    out = {
        "month": local_month,
        "month_to_date": mtd,
        "run_rate_per_day": rate,
        "lookback_days": days,
        "days_left": days_left,
        "projected": projected,
        "unpriced_calls": row["unpriced"],
        "method": method,
    }
    return Result(list(out), [tuple(out.values())], attrs={"method": method})


# ---------------------------------------------------------------------------- rate
def rate(
    con: Any,
    since: TimeLike = None,
    until: TimeLike = None,
    *,
    now: datetime | None = None,
    **filters: Any,
) -> Result:
    """Rate of consumption: tokens, cost and calls per minute between the first call's start
    and the last call's end (start + latency). Rates are NaN when that span is zero.
    """
    where_sql, params = where(since, until, filters, now=now, dialect=dialect_of(con))
    later = dialect_of(con).ms_interval("coalesce(latency_ms, 0)::BIGINT")
    sql = f"""
        SELECT count(*)::BIGINT AS calls,
            coalesce(sum(total_tokens), 0)::BIGINT AS total_tokens,
            coalesce(sum(total_cost), 0)::DECIMAL(38, 12) AS cost,
            timezone('UTC', min(ts)) AS first_call,
            timezone('UTC', max(ts + {later}))
                AS last_end
        FROM usage {where_sql}"""
    row = fetch(con, sql, params).first()
    minutes = float("nan")
    if row["first_call"] is not None:
        minutes = (row["last_end"] - row["first_call"]).total_seconds() / 60
    ok = minutes == minutes and minutes > 0
    out = {
        "calls": row["calls"],
        "total_tokens": row["total_tokens"],
        "cost": row["cost"],
        "first_call": row["first_call"],
        "last_end": row["last_end"],
        "minutes": minutes,
        "tokens_per_minute": row["total_tokens"] / minutes if ok else float("nan"),
        "cost_per_minute": float(row["cost"]) / minutes if ok else float("nan"),
        "calls_per_minute": row["calls"] / minutes if ok else float("nan"),
    }
    return Result(list(out), [tuple(out.values())], utc_columns=("first_call", "last_end"))


# ---------------------------------------------------------------------------- latency
def latency(
    con: Any,
    by: str | None = None,
    since: TimeLike = None,
    until: TimeLike = None,
    *,
    now: datetime | None = None,
    **filters: Any,
) -> Result:
    """Latency percentiles in milliseconds (p50/p95/p99 by linear interpolation, and the
    mean) over calls with a recorded latency, overall or per group of ``by``.
    """
    dim = canonical_dimension(by) if by is not None else None
    where_sql, params = where(since, until, filters, now=now, dialect=dialect_of(con))
    dialect = dialect_of(con)
    quantiles = "(" + dialect.quantile_list("latency_ms", (0.5, 0.95, 0.99)) + ")"
    sql = f"""
        SELECT {"key AS " + dim + "," if dim else ""}
            count(latency_ms)::BIGINT AS calls,
            {quantiles}[1] AS p50_ms, {quantiles}[2] AS p95_ms, {quantiles}[3] AS p99_ms,
            avg(latency_ms) AS mean_ms, max(latency_ms) AS max_ms
        FROM {keyed_source(dim, where_sql, dialect)} WHERE latency_ms IS NOT NULL
        {"GROUP BY key ORDER BY calls DESC, key" if dim else ""}"""
    return fetch(con, sql, params)


# ---------------------------------------------------------------------------- history
HISTORY_COLUMNS = (
    "ts",
    "model",
    "provider",
    "user_id",
    "session_id",
    "operation",
    "framework",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
    "total_tokens",
    "total_cost",
    "latency_ms",
    "status",
    "estimated",
    "tags",
    "id",
)


def history(
    con: Any,
    limit: int = 50,
    since: TimeLike = None,
    until: TimeLike = None,
    *,
    now: datetime | None = None,
    **filters: Any,
) -> Result:
    """The most recent calls, newest first (``ts`` in UTC; ``total_cost`` NULL = unpriced)."""
    where_sql, params = where(since, until, filters, now=now, dialect=dialect_of(con))
    cols = ", ".join("timezone('UTC', ts) AS ts" if c == "ts" else c for c in HISTORY_COLUMNS)
    # The stored column, not the UTC-converted alias: top-N over it skips converting every row.
    sql = f"SELECT {cols} FROM usage {where_sql} ORDER BY usage.ts DESC, usage.id DESC LIMIT ?"
    result = fetch(con, sql, [*params, max(0, int(limit))])
    result.utc_columns = ("ts",)
    return result
