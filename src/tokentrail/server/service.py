"""What the HTTP API answers, computed with the analytics queries, without HTTP in sight.

Every method takes a :class:`Query` already scoped to the caller (a user token's queries
always carry its ``user_id``), runs the public queries of :mod:`tokentrail.analytics` over
one read connection, and returns the API's pydantic shapes. Answers are cached per
distinct query: reused for ``cache_ttl`` seconds, then for as long as the database files
have not changed (up to 30 s, so relative ranges move on); once they change, the previous
answer (if under 10 s old) is served while the new one is computed in the background.
See :class:`~tokentrail.server.cache.TTLCache`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..analytics import queries
from ..analytics.connection import connect
from ..analytics.result import Result
from ..timeparse import time_range
from . import schemas
from .cache import TTLCache
from .gate import ReadGate
from .tokens import Principal, load_active

if TYPE_CHECKING:
    from ..store.paths import Database, PostgresUrl
    from ..tracker import Tracker

__all__ = ["Answer", "Query", "UsageService", "iso", "money"]

_DB_SLOTS = 2  # concurrent scans: more only adds contention on a small machine
# After new calls are stored, an answer up to this old is still served while its successor
# is computed in the background: requests never queue behind a burst of recomputations.
_STALE_FOR = 10.0


@dataclass(frozen=True, slots=True)
class Query:
    """Time range and filters of one request, after scoping to the caller."""

    since: str | None = None
    until: str | None = None
    user_id: str | None = None
    model: str | None = None
    operation: str | None = None

    def filters(self) -> dict[str, Any]:
        """The analytics filters (``None`` values are ignored by the queries)."""
        return {"user_id": self.user_id, "model": self.model, "operation": self.operation}

    def echo(self) -> schemas.Filters:
        """The filters as answered, with ``since``/``until`` resolved to UTC instants."""
        start, end = time_range(self.since, self.until)
        return schemas.Filters(
            since=iso(start),
            until=iso(end),
            user_id=self.user_id,
            model=self.model,
            operation=self.operation,
        )


def money(value: Any) -> str:
    """A Decimal as a plain decimal string, every digit kept (no exponent, no rounding)."""
    if value is None:
        return "0"
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    return format(number, "f")


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z`` (naive datetimes are UTC already)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.isoformat() + "Z"


@dataclass(frozen=True, slots=True)
class Answer:
    """A cached answer to fetch: ``ready()`` never blocks, ``get()`` may compute it."""

    cache: TTLCache
    key: Hashable
    compute: Callable[[], Any]
    stamp_ok: bool = True  # a tracker's stamp flushes it: not on an event loop

    def ready(self) -> tuple[bool, Any, bool]:
        """``(True, value, stale)`` when it is at hand without computing or waiting."""
        return self.cache.peek(self.key, self.compute, stamp_ok=self.stamp_ok)

    def get(self) -> tuple[Any, bool]:
        """``(value, stale)``, computed (or waited for) when needed; ``stale`` when the
        data changed since and a newer value is being computed."""
        return self.cache.fetch(self.key, self.compute)


class UsageService:
    """The API's answers over one database (a DuckDB path or a PostgreSQL URL) or one
    tracker's database.

    With a tracker, its pending records are flushed before each fresh answer and budget
    checks use its own guard (reservations of its calls in flight included); with a
    database, budgets are the ones saved with it by ``tracker.budget(...)``. API tokens
    live in a DuckDB file only: a PostgreSQL database is served without tokens.
    """

    def __init__(
        self,
        source: Tracker | str | os.PathLike[str] | PostgresUrl | None = None,
        *,
        cache_ttl: float = 1.0,
        token_ttl: float = 2.0,
    ) -> None:
        from ..store.paths import resolve_db
        from ..tracker import Tracker

        if isinstance(source, Tracker):
            self.tracker: Tracker | None = source
            self.path: Database = source.path
        else:
            self.tracker = None
            self.path = resolve_db(source)
        self.cache = TTLCache(cache_ttl, stamp=self.stamp, stale_for=_STALE_FOR)
        # The previous token list is used while a new one is read (revocations take effect
        # within token_ttl plus one read), so no request waits for that read.
        self._tokens = TTLCache(token_ttl, max_entries=4, stale_for=10.0)
        self._db = ReadGate(_DB_SLOTS)
        self._own_tracker: Tracker | None = None
        self._own_specs: object = None
        self._tracker_lock = threading.Lock()
        self.queries_run = 0  # scans of the database, for the benchmark's cost figure

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _read(self) -> Iterator[Any]:
        if self.tracker is not None:
            self.tracker.flush()
        with self._db.reading(), connect(self.path) as con:
            yield con

    def stamp(self) -> tuple[tuple[int, int] | None, ...] | None:
        """What changes when rows are written: size and mtime of the database and its WAL.

        Reading them costs two ``stat`` calls, so an answer whose data has not changed is
        served again without opening the database (a tracker's pending records are
        written first). ``None`` for PostgreSQL: answers are reused for ``cache_ttl`` only.
        """
        if self.tracker is not None:
            self.tracker.flush()
        if not isinstance(self.path, Path):
            return None
        out: list[tuple[int, int] | None] = []
        for file in (self.path, self.path.with_name(self.path.name + ".wal")):
            try:
                st = file.stat()
            except OSError:
                out.append(None)
            else:
                out.append((st.st_size, st.st_mtime_ns))
        return tuple(out)

    def _run(self, query: Any, con: Any, *args: Any, **kwargs: Any) -> Result:
        self.queries_run += 1
        result: Result = query(con, *args, **kwargs)
        return result

    def _answer(self, key: Hashable, compute: Callable[[], bytes]) -> Answer:
        return Answer(self.cache, key, compute, stamp_ok=self.tracker is None)

    def principals(self) -> Answer:
        """Active token hashes (``(sha256, Principal)`` pairs), re-read every ``token_ttl`` s."""

        def load() -> list[tuple[str, Principal]]:
            if not isinstance(self.path, Path) or not self.path.exists():
                return []
            with self._db.reading(), connect(self.path) as con:
                return load_active(con)

        return Answer(self._tokens, "tokens", load)

    def close(self) -> None:
        """Stop background refreshes; close the tracker opened for budget checks."""
        self.cache.close()
        if self._own_tracker is not None:
            self._own_tracker.close()
            self._own_tracker = None

    # ------------------------------------------------------------------ stats
    def stats(self, q: Query) -> Answer:
        """Totals, and the split by operation, model and user (:class:`schemas.Stats`)."""
        return self._answer(("stats", q), lambda: _json(self._stats(q)))

    def _stats(self, q: Query) -> schemas.Stats:
        f = q.filters()
        with self._read() as con:
            ops = self._run(queries.by, con, "operation", q.since, q.until, **f)
            models = self._run(queries.by, con, "model", q.since, q.until, **f)
            user_rows: Any = (
                _one_group("user_id", q.user_id, ops.records())
                if q.user_id is not None  # one user: their row is the totals, no scan needed
                else self._run(queries.by, con, "user_id", q.since, q.until, top=50, **f)
            )
        rows = ops.records()
        return schemas.Stats(
            total_input_tokens=sum(r["input_tokens"] for r in rows),
            total_output_tokens=sum(r["output_tokens"] for r in rows),
            total_tokens=sum(r["total_tokens"] for r in rows),
            total_cost=money(sum((r["cost"] for r in rows), Decimal(0))),
            calls=sum(r["calls"] for r in rows),
            unpriced_calls=sum(r["unpriced_calls"] for r in rows),
            errors=sum(r["errors"] for r in rows),
            by_operation=[
                schemas.OperationRow(operation=r["operation"], **_group(r)) for r in rows
            ],
            by_model=[schemas.ModelRow(model=r["model"], **_group(r)) for r in models],
            by_user=[schemas.UserRow(user_id=r["user_id"], **_group(r)) for r in user_rows],
            filters=q.echo(),
        )

    # ------------------------------------------------------------------ history
    def history(self, q: Query, limit: int = 50, before: str | None = None) -> Answer:
        """The newest calls; ``before`` (a call id) continues after that call
        (:class:`schemas.History`)."""
        limit = max(1, min(int(limit), 1000))
        return self._answer(
            ("history", q, limit, before), lambda: _json(self._history(q, limit, before))
        )

    def _history(self, q: Query, limit: int, before: str | None) -> schemas.History:
        f = q.filters()
        with self._read() as con:
            if before is None:
                rows = self._run(queries.history, con, limit, q.since, q.until, **f).records()
            else:
                rows = self._page_after(con, q, limit, before)
        usage = [_history_row(r) for r in rows]
        return schemas.History(
            usage=usage,
            next_before=usage[-1].id if len(usage) == limit else None,
            filters=q.echo(),
        )

    def _page_after(self, con: Any, q: Query, limit: int, before: str) -> list[dict[str, Any]]:
        # The cursor is a call id; the page is the calls ordered after it by (ts, id)
        # descending, as queries.history orders them. Its timestamp is looked up within
        # the caller's scope, so an id from outside it pages nothing.
        sql = "SELECT timezone('UTC', ts) FROM usage WHERE id = ?"
        params: list[Any] = [before]
        if q.user_id is not None:
            sql += " AND user_id = ?"
            params.append(q.user_id)
        found = con.execute(sql, params).fetchone()
        if found is None:
            return []
        cut_ts: datetime = found[0]
        cut = cut_ts.replace(tzinfo=timezone.utc) + timedelta(microseconds=1)
        _start, end = time_range(q.since, q.until)
        until = cut if end is None or cut < end else end
        extra = 8
        while True:
            fetched = self._run(
                queries.history, con, limit + extra, q.since, until, **q.filters()
            ).records()
            after = [r for r in fetched if (r["ts"], r["id"]) < (cut_ts, before)]
            if len(after) >= limit or len(fetched) < limit + extra:
                return after[:limit]
            extra *= 4  # many calls share the cursor's microsecond: look further

    # ------------------------------------------------------------------ periods
    def by_period(self, q: Query, period: str) -> Answer:
        """Tokens and cost per calendar day, week (from Monday) or month, in UTC
        (:class:`schemas.Period`)."""
        if period not in ("day", "week", "month"):
            raise ValueError(f"unknown period {period!r}: use day, week or month")
        return self._answer(("period", q, period), lambda: _json(self._by_period(q, period)))

    def _by_period(self, q: Query, period: str) -> schemas.Period:
        with self._read() as con:
            result = self._run(
                queries.over_time, con, period, None, q.since, q.until, tz="UTC", **q.filters()
            )
        data = [
            schemas.PeriodRow(
                date=_day(r["period"]),
                tokens=r["total_tokens"],
                input_tokens=r["input_tokens"],
                output_tokens=r["output_tokens"],
                cost=money(r["cost"]),
                calls=r["calls"],
            )
            for r in result
        ]
        return schemas.Period(period=period, data=data, filters=q.echo())  # type: ignore[arg-type]

    # ------------------------------------------------------------------ projection
    def projection(self, q: Query) -> Answer:
        """Month-end spend projected from the last 7 days' daily run rate (UTC months;
        :class:`schemas.Projection`)."""
        return self._answer(("projection", q), lambda: _json(self._projection(q)))

    def _projection(self, q: Query) -> schemas.Projection:
        with self._read() as con:
            row = self._run(queries.forecast, con, tz="UTC", **q.filters()).first()
        return schemas.Projection(
            month=row["month"],
            month_to_date=money(row["month_to_date"]),
            run_rate_per_day=money(row["run_rate_per_day"]),
            projected=money(row["projected"]),
            days_left=row["days_left"],
            lookback_days=row["lookback_days"],
            method=row["method"],
            filters=Query(user_id=q.user_id, model=q.model, operation=q.operation).echo(),
        )

    # ------------------------------------------------------------------ budgets
    def budgets(self, user_id: str | None) -> Answer:
        """Budget windows with their spend: ``user_id``'s own, or every one (``None``;
        :class:`schemas.BudgetList`)."""
        return self._answer(("budgets", user_id), lambda: _json(self._budgets(user_id)))

    def _budgets(self, user_id: str | None) -> schemas.BudgetList:
        from ..budget.offline import status_from_store
        from ..budget.persist import load_budget_specs

        specs = load_budget_specs(self.path)
        if user_id is not None:
            specs = _user_specs(specs, user_id)
        if not specs or not self.path.exists():
            return schemas.BudgetList(budgets=[])
        with self._db.reading():
            self.queries_run += len(specs)
            rows = status_from_store(self.path, specs)
        return schemas.BudgetList(budgets=[_budget_row(s.as_dict()) for s in rows])

    def check(self, request: schemas.BudgetCheckRequest, *, admin: bool) -> schemas.BudgetCheck:
        """``tracker.check`` for one request; nothing is reserved.

        A user (``admin=False``) is not shown the numbers of budgets shared with other
        users (global, model, operation, tag): only that one of them would refuse.
        """
        tracker = self._checker()
        prompt = None
        if request.prompt_tokens is not None and not request.messages:
            prompt = _prompt_of(request.prompt_tokens, request.model)
        result = tracker.check(
            user_id=request.user_id,
            operation=request.operation,
            model=request.model,
            provider=request.provider,
            messages=request.messages or None,
            prompt=prompt,
            max_tokens=request.max_tokens,
        )
        own = result.budget is None or result.budget.scope == "user" or admin
        reason = result.reason
        if not own and not result.allowed and result.budget is not None:
            reason = (
                f"a shared {result.budget.scope} budget ({result.budget.window}) would be exceeded"
            )
        estimate = result.estimate
        return schemas.BudgetCheck(
            allowed=result.allowed,
            reason=reason,
            remaining=None if result.remaining is None or not own else money(result.remaining),
            unit=result.unit if own else None,
            retry_after=result.retry_after,
            estimated_cost=(
                None if estimate is None or estimate.usd is None else money(estimate.usd)
            ),
            estimated_tokens=None if estimate is None else estimate.tokens,
        )

    def _checker(self) -> Tracker:
        if self.tracker is not None:
            return self.tracker
        from ..budget.persist import budgets_file, load_budget_specs
        from ..tracker import Tracker

        if isinstance(self.path, Path):
            file = budgets_file(self.path)
            stamp: object = file.stat().st_mtime_ns if file.exists() else None
        else:  # the definitions are rows: what they say is the stamp
            stamp = json.dumps(load_budget_specs(self.path), sort_keys=True)
        with self._tracker_lock:
            if self._own_tracker is None or self._own_specs != stamp:
                if self._own_tracker is not None:
                    self._own_tracker.close()
                tracker = Tracker(self.path if isinstance(self.path, Path) else self.path.url)
                for spec in load_budget_specs(self.path):
                    tracker.budget(**_add_args(spec), persist=False)
                self._own_tracker, self._own_specs = tracker, stamp
            return self._own_tracker


# ---------------------------------------------------------------------------- helpers
def _json(model: Any) -> bytes:
    """The wire form of an answer, made once per computation (not once per request)."""
    data: bytes = model.__pydantic_serializer__.to_json(model, by_alias=True)
    return data


def _group(r: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "calls": r["calls"],
        "input_tokens": r["input_tokens"],
        "output_tokens": r["output_tokens"],
        "total_tokens": r["total_tokens"],
        "cost": money(r["cost"]),
        "share": float(r["share"]),
        "unpriced_calls": r["unpriced_calls"],
        "errors": r["errors"],
    }


def _one_group(name: str, value: Any, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The one-group split of ``rows`` (grouped some other way), as ``queries.by`` gives it."""
    if not rows:
        return []
    keys = ("calls", "input_tokens", "output_tokens", "total_tokens", "unpriced_calls", "errors")
    out: dict[str, Any] = {k: sum(r[k] for r in rows) for k in keys}
    out["cost"] = sum((r["cost"] for r in rows), Decimal(0))
    out["share"] = 1.0
    out[name] = value
    return [out]


def _history_row(r: Mapping[str, Any]) -> schemas.HistoryRow:
    latency = r["latency_ms"]
    return schemas.HistoryRow(
        id=r["id"],
        created_at=iso(r["ts"]) or "",
        operation=r["operation"],
        model=r["model"],
        provider=r["provider"],
        user_id=r["user_id"],
        session_id=r["session_id"],
        framework=r["framework"],
        input_tokens=r["input_tokens"] or 0,
        output_tokens=r["output_tokens"] or 0,
        cache_read_tokens=r["cache_read_tokens"] or 0,
        reasoning_tokens=r["reasoning_tokens"] or 0,
        total_tokens=r["total_tokens"] or 0,
        cost=None if r["total_cost"] is None else money(r["total_cost"]),
        latency_ms=None if latency is None or latency != latency else float(latency),
        status=r["status"],
        estimated=r["estimated"],
        tags=list(r["tags"] or []),
    )


def _day(value: datetime | date) -> str:
    return value.date().isoformat() if isinstance(value, datetime) else value.isoformat()


def _budget_row(d: Mapping[str, Any]) -> schemas.BudgetRow:
    return schemas.BudgetRow(
        budget_id=d["budget_id"],
        name=d["name"],
        scope=d["scope"],
        key=d["key"],
        window=d["window"],
        window_start=iso(d["window_start"]),
        window_end=iso(d["window_end"]),
        unit=d["unit"],
        limit=money(d["limit"]),
        spent=money(d["spent"]),
        reserved=money(d["reserved"]),
        remaining=money(d["remaining"]),
        percent=float(d["percent"]),
    )


def _user_specs(specs: Sequence[Mapping[str, Any]], user_id: str) -> list[dict[str, Any]]:
    """The ``user``-scoped budgets that apply to ``user_id``, each bound to that key.

    Budgets of other scopes add up other users' spend and are left out.
    """

    def ident(s: Mapping[str, Any]) -> tuple[Any, ...]:
        return (s.get("scope"), s.get("per"), s.get("unit"))

    overridden = {ident(s) for s in specs if s.get("scope") == "user" and s.get("key") == user_id}
    out = []
    for spec in specs:
        if spec.get("scope") != "user":
            continue
        if spec.get("key") == user_id or (
            spec.get("key") is None and ident(spec) not in overridden
        ):
            out.append({**spec, "key": user_id})
    return out


def _add_args(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``tracker.budget`` keywords recreating a saved budget definition."""
    unit = spec.get("unit", "usd")
    args: dict[str, Any] = {
        "per": spec.get("per", "day"),
        "scope": spec.get("scope", "user"),
        "key": spec.get("key"),
        "tz": spec.get("tz") or "UTC",
        "name": spec.get("name"),
    }
    if spec.get("warn_at") is not None:
        args["warn_at"] = spec["warn_at"]
    unpriced = spec.get("unpriced")
    if isinstance(unpriced, list):
        unpriced = tuple(unpriced)
    if unpriced is not None:
        args["unpriced"] = unpriced
    if unit == "tokens":
        args["tokens"] = int(Decimal(str(spec.get("limit", 0))))
    else:
        args["usd"] = str(spec.get("limit", 0))
    return args


def _prompt_of(tokens: int, model: str | None) -> str:
    """A text that counts as exactly ``tokens`` prompt tokens for ``model`` (or just over).

    ``tracker.check`` counts text; a caller that already knows its prompt size sends the
    number. Counting is monotonic in the text's length, so a binary search finds it.
    """
    from ..estimate import count_text_tokens

    if tokens <= 0:
        return ""
    unit = " x"
    lo, hi = 1, max(1, tokens)
    while count_text_tokens(unit * hi, model) < tokens:
        hi *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if count_text_tokens(unit * mid, model) >= tokens:
            hi = mid
        else:
            lo = mid + 1
    return unit * lo
