"""The few places where DuckDB's SQL and PostgreSQL's differ, in one table.

Every analytics query is written once (``sql``, ``queries``, ``savings``) in the SQL both
engines share (CTEs, window functions, ``FILTER``, ``timezone()``, ``date_trunc``, casts
to ``BIGINT``/``DECIMAL``, ``?`` parameters) and takes the differing fragments from the
connection's :class:`Dialect`: matching tags, one row per tag, 15-minute time slots, a
series of periods, milliseconds as an interval, quantiles, the double type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DUCKDB", "POSTGRES", "Dialect", "dialect_of"]


@dataclass(frozen=True)
class Dialect:
    """SQL fragments of one engine; ``{...}`` fields are filled by the methods below."""

    name: str
    #: A condition: the row has any of the tags bound to the one ``?`` (a list of text).
    any_tag: str
    #: One row per tag (``{label}`` for a call without tags): a set-returning expression.
    each_tag: str
    #: Microseconds since the epoch of ``ts``, divided (floor) by ``{size}``.
    slot: str
    #: The TIMESTAMPTZ at which slot ``{slot}`` of ``{size}`` microseconds starts.
    slot_start: str
    #: One row per period from ``{lo}`` to ``{hi}``, ``{step}`` apart.
    series: str
    #: ``{ms}`` milliseconds (an integer expression) as an interval.
    milliseconds: str
    #: A list of the quantiles ``{qs}`` (comma-separated) of ``{column}``, interpolated.
    quantiles: str
    #: The 8-byte float type.
    double: str

    def tag_rows(self, label: str) -> str:
        return self.each_tag.format(label=label.replace("'", "''"))

    def time_slot(self, size_us: int) -> str:
        return self.slot.format(size=size_us)

    def slot_time(self, slot: str, size_us: int) -> str:
        return self.slot_start.format(slot=slot, size=size_us, seconds=size_us // 1_000_000)

    def periods(self, lo: str, hi: str, step: str) -> str:
        return self.series.format(lo=lo, hi=hi, step=step)

    def ms_interval(self, ms: str) -> str:
        return self.milliseconds.format(ms=ms)

    def quantile_list(self, column: str, qs: tuple[float, ...]) -> str:
        return self.quantiles.format(column=column, qs=", ".join(str(q) for q in qs))


DUCKDB = Dialect(
    name="duckdb",
    any_tag="list_has_any(coalesce(tags, []::VARCHAR[]), ?::VARCHAR[])",
    each_tag=(
        "unnest(CASE WHEN len(coalesce(tags, []::VARCHAR[])) = 0 THEN ['{label}'] ELSE tags END)"
    ),
    slot="epoch_us(ts) // {size}",
    slot_start="make_timestamptz({slot} * {size})",
    series="unnest(generate_series({lo}, {hi}, {step}))",
    milliseconds="to_milliseconds({ms})",
    quantiles="quantile_cont({column}, [{qs}])",
    double="DOUBLE",
)

POSTGRES = Dialect(
    name="postgres",
    any_tag="coalesce(tags, '{}'::TEXT[]) && ?::TEXT[]",
    each_tag=(
        "unnest(CASE WHEN cardinality(coalesce(tags, '{{}}'::TEXT[])) = 0 "
        "THEN ARRAY['{label}'] ELSE tags END)"
    ),
    # extract(epoch ...) is an exact NUMERIC (PostgreSQL 14+): no rounding at the edges.
    slot="floor(extract(epoch FROM ts) * 1000000 / {size})::BIGINT",
    slot_start="to_timestamp({slot} * {seconds})",
    series="generate_series({lo}, {hi}, {step})",
    milliseconds="({ms}) * INTERVAL '1 millisecond'",
    quantiles="percentile_cont(ARRAY[{qs}]) WITHIN GROUP (ORDER BY {column})",
    double="DOUBLE PRECISION",
)


def dialect_of(con: Any) -> Dialect:
    """The dialect of an open connection: PostgreSQL's for tokentrail's PostgreSQL
    connections, DuckDB's for anything else."""
    from ..store.postgres_reading import PostgresConnection

    return POSTGRES if isinstance(con, PostgresConnection) else DUCKDB
