"""Where the money goes: aggregate queries over the ``usage`` table, as pandas DataFrames.

Use it through a tracker (pending records are written first)::

    tracker.analytics.by_model(since="7d")
    tracker.analytics.over_time("day", by="model", tz="Europe/Paris")

or on any database file, without a tracker::

    from tokentrail import analytics
    analytics.summary("usage.duckdb", since="this-month")
    analytics.Analytics("usage.duckdb").forecast()

Time arguments take ``"7d"``, ``"24h"``, ``"this-month"``, ISO dates or datetimes
(``since`` inclusive, ``until`` exclusive). Filters: ``user_id``, ``session_id``,
``operation``, ``model``, ``provider``, ``tag``, ``framework``, ``status`` (a string or a
list). Money is USD; calls with an unknown price are counted but not priced
(``unpriced_calls``). pandas is needed for DataFrames (``pip install 'tokentrail[notebook]'``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..timeparse import TimeLike
from . import queries
from .connection import Source, connect
from .result import Result
from .sql import DIMENSIONS, FILTERS
from .styled import styled

__all__ = [
    "DIMENSIONS",
    "FILTERS",
    "Analytics",
    "Result",
    "by",
    "by_model",
    "by_operation",
    "by_user",
    "cache_savings",
    "forecast",
    "history",
    "latency",
    "over_time",
    "rate",
    "styled",
    "summary",
    "trend",
]


class Analytics:
    """Analytics over one database (a path, ``None`` for the default, or a DuckDB connection).

    ``before_query`` runs before each query; a tracker passes its ``flush`` so that calls
    just captured are included. Every method returns a pandas DataFrame; notes such as the
    forecast method are in ``DataFrame.attrs``.
    """

    def __init__(self, path: Source = None, before_query: Callable[[], Any] | None = None) -> None:
        self.path = path
        self._before_query = before_query

    def __repr__(self) -> str:
        return f"Analytics({self.path!r})"

    def table(self, query: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
        """Run one of :mod:`tokentrail.analytics.queries` and return its :class:`Result`."""
        if self._before_query is not None:
            self._before_query()
        with connect(self.path) as con:
            return query(con, *args, **kwargs)

    def _frame(self, query: Callable[..., Result], *args: Any, **kwargs: Any) -> Any:
        return self.table(query, *args, **kwargs).to_frame()

    def sql(self, query: str, params: Sequence[Any] | None = None) -> Any:
        """Run your own SQL over the ``usage`` table; a DataFrame."""
        if self._before_query is not None:
            self._before_query()
        with connect(self.path) as con:
            return con.execute(query, list(params or [])).df()

    def summary(self, since: TimeLike = None, until: TimeLike = None, **filters: Any) -> Any:
        """One row: calls, tokens, cost, error rate, estimated share, cache hit rate, cache
        savings (USD), reasoning share, first and last call."""
        return self._frame(queries.summary, since, until, **filters)

    def by(
        self,
        dimension: str,
        since: TimeLike = None,
        until: TimeLike = None,
        *,
        top: int | None = None,
        **filters: Any,
    ) -> Any:
        """Totals per ``model``, ``provider``, ``user_id``, ``session_id``, ``operation``,
        ``tag``, ``framework`` or ``status``, biggest cost first; ``top=N`` groups the rest
        as ``other``."""
        return self._frame(queries.by, dimension, since, until, top=top, **filters)

    def by_model(self, since: TimeLike = None, until: TimeLike = None, **kw: Any) -> Any:
        """``by("model", ...)``."""
        return self.by("model", since, until, **kw)

    def by_user(self, since: TimeLike = None, until: TimeLike = None, **kw: Any) -> Any:
        """``by("user_id", ...)``."""
        return self.by("user_id", since, until, **kw)

    def by_operation(self, since: TimeLike = None, until: TimeLike = None, **kw: Any) -> Any:
        """``by("operation", ...)``."""
        return self.by("operation", since, until, **kw)

    def over_time(
        self,
        period: str = "day",
        by: str | None = None,
        tz: str = "UTC",
        since: TimeLike = None,
        until: TimeLike = None,
        *,
        top: int | None = None,
        **filters: Any,
    ) -> Any:
        """Totals per ``hour``/``day``/``week``/``month`` (local period start in ``tz``),
        optionally per group of ``by``; empty periods are present with zeros."""
        return self._frame(queries.over_time, period, by, since, until, tz=tz, top=top, **filters)

    def trend(self, period: str = "week", **kw: Any) -> Any:
        """This ``period`` against the previous one: current, previous, change, change_pct."""
        return self._frame(queries.trend, period, **kw)

    def forecast(self, *, lookback_days: int = 7, tz: str = "UTC", **kw: Any) -> Any:
        """Month-end spend projected from the recent daily run rate (method in ``method``)."""
        return self._frame(queries.forecast, lookback_days=lookback_days, tz=tz, **kw)

    def rate(self, session_id: str | None = None, **kw: Any) -> Any:
        """Tokens, cost and calls per minute (e.g. of one session)."""
        return self._frame(queries.rate, session_id=session_id, **kw)

    def latency(self, by: str | None = None, **kw: Any) -> Any:
        """p50/p95/p99 latency in ms, overall or per group of ``by``."""
        return self._frame(queries.latency, by, **kw)

    def history(self, limit: int = 50, **filters: Any) -> Any:
        """The most recent calls, newest first."""
        return self._frame(queries.history, limit, **filters)

    def cache_savings(self, since: TimeLike = None, until: TimeLike = None, **kw: Any) -> Any:
        """Per priced model: cached tokens, their cost, their full-price cost, the savings."""
        return self._frame(queries.cache_savings, since, until, **kw)


# Module-level shortcuts: the first argument is the database (path, None or connection).
def summary(path: Source = None, since: TimeLike = None, until: TimeLike = None, **kw: Any) -> Any:
    """:meth:`Analytics.summary` on ``path``."""
    return Analytics(path).summary(since, until, **kw)


def by(path: Source, dimension: str, since: TimeLike = None, **kw: Any) -> Any:
    """:meth:`Analytics.by` on ``path``."""
    return Analytics(path).by(dimension, since, **kw)


def by_model(path: Source = None, since: TimeLike = None, **kw: Any) -> Any:
    """:meth:`Analytics.by_model` on ``path``."""
    return Analytics(path).by_model(since, **kw)


def by_user(path: Source = None, since: TimeLike = None, **kw: Any) -> Any:
    """:meth:`Analytics.by_user` on ``path``."""
    return Analytics(path).by_user(since, **kw)


def by_operation(path: Source = None, since: TimeLike = None, **kw: Any) -> Any:
    """:meth:`Analytics.by_operation` on ``path``."""
    return Analytics(path).by_operation(since, **kw)


def over_time(path: Source = None, period: str = "day", by: str | None = None, **kw: Any) -> Any:
    """:meth:`Analytics.over_time` on ``path``."""
    return Analytics(path).over_time(period, by, **kw)


def trend(path: Source = None, period: str = "week", **kw: Any) -> Any:
    """:meth:`Analytics.trend` on ``path``."""
    return Analytics(path).trend(period, **kw)


def forecast(path: Source = None, **kw: Any) -> Any:
    """:meth:`Analytics.forecast` on ``path``."""
    return Analytics(path).forecast(**kw)


def rate(path: Source = None, session_id: str | None = None, **kw: Any) -> Any:
    """:meth:`Analytics.rate` on ``path``."""
    return Analytics(path).rate(session_id, **kw)


def latency(path: Source = None, by: str | None = None, **kw: Any) -> Any:
    """:meth:`Analytics.latency` on ``path``."""
    return Analytics(path).latency(by, **kw)


def history(path: Source = None, limit: int = 50, **kw: Any) -> Any:
    """:meth:`Analytics.history` on ``path``."""
    return Analytics(path).history(limit, **kw)


def cache_savings(path: Source = None, since: TimeLike = None, **kw: Any) -> Any:
    """:meth:`Analytics.cache_savings` on ``path``."""
    return Analytics(path).cache_savings(since, **kw)
