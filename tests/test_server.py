"""``tokentrail serve``: the real server (uvicorn subprocess) against a database of known rows.

Every number an endpoint returns is compared with ``tracker.analytics`` (the same queries
run in this process, exact Decimals) on the same data; user tokens are tried against every
endpoint and filter to show they never see another user's rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from tests.server_support import (
    KNOWN,
    Server,
    cli,
    create_token,
    write_known_rows,
)
from tokentrail import Tracker
from tokentrail.analytics import queries

pytestmark = pytest.mark.slow


class Env:
    """The database, a tracker on it, tokens and the running server."""

    def __init__(self, root: Path) -> None:
        self.db = root / "usage.duckdb"
        self.tracker = Tracker(self.db)
        write_known_rows(self.tracker)
        # u1 has a tiny daily budget (already spent), everyone a generous monthly one.
        self.tracker.budget(usd="0.001", per="day", scope="user", user_id="u1")
        self.tracker.budget(usd=50, per="month", scope="user")
        self.tracker.budget(tokens=10_000_000, per="month", scope="global")
        self.admin = create_token(self.db, "--admin")
        self.u1 = create_token(self.db, "--user", "u1")
        self.u2 = create_token(self.db, "--user", "u2")
        self.server = Server(self.db)

    def table(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        """A query through ``tracker.analytics`` (Result with exact Decimals)."""
        return self.tracker.analytics.table(query, *args, **kwargs)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    made = Env(tmp_path_factory.mktemp("serve"))
    try:
        yield made
    finally:
        made.server.stop()
        made.tracker.close()


def _groups(rows: list[dict[str, Any]], key: str) -> dict[str, tuple[Any, ...]]:
    return {
        r[key]: (
            r["calls"],
            r["inputTokens"],
            r["outputTokens"],
            r["totalTokens"],
            Decimal(r["cost"]),
        )
        for r in rows
    }


def _expected_groups(result: Any, key: str) -> dict[str, tuple[Any, ...]]:
    return {
        r[key]: (r["calls"], r["input_tokens"], r["output_tokens"], r["total_tokens"], r["cost"])
        for r in result
    }


# ---------------------------------------------------------------------------- numbers
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"since": "7d"},
        {"since": "30d", "until": "1d"},
        {"userId": "u2"},
        {"model": "gpt-4o"},
        {"operation": "chat", "since": "30d"},
    ],
)
def test_stats_equal_analytics(env: Env, params: dict[str, str]) -> None:
    got = env.server.json("/api/tokens/stats", env.admin, **params)
    filters = {
        "user_id": params.get("userId"),
        "model": params.get("model"),
        "operation": params.get("operation"),
    }
    since, until = params.get("since"), params.get("until")
    summary = env.table(queries.summary, since, until, **filters).first()
    assert got["calls"] == summary["calls"] > 0
    assert got["totalInputTokens"] == summary["input_tokens"]
    assert got["totalOutputTokens"] == summary["output_tokens"]
    assert got["totalTokens"] == summary["total_tokens"]
    assert Decimal(got["totalCost"]) == summary["cost"]
    assert got["unpricedCalls"] == summary["unpriced_calls"]
    by_op = env.table(queries.by, "operation", since, until, **filters)
    by_model = env.table(queries.by, "model", since, until, **filters)
    assert _groups(got["byOperation"], "operation") == _expected_groups(by_op, "operation")
    assert _groups(got["byModel"], "model") == _expected_groups(by_model, "model")


def test_money_is_a_full_precision_decimal_string(env: Env) -> None:
    got = env.server.json("/api/tokens/stats", env.admin)
    cost = got["totalCost"]
    assert isinstance(cost, str)
    assert Decimal(cost) == env.table(queries.summary).first()["cost"]
    assert len(cost.split(".")[1]) > 2  # not rounded to cents


def test_history_equals_analytics_and_pages_with_before(env: Env) -> None:
    everything = env.table(queries.history, 100).records()
    assert len(everything) == len(KNOWN)
    first = env.server.json("/api/tokens/history", env.admin, limit=4)
    assert [r["id"] for r in first["usage"]] == [r["id"] for r in everything[:4]]
    row, want = first["usage"][0], everything[0]
    assert row["inputTokens"] == want["input_tokens"]
    assert row["outputTokens"] == want["output_tokens"]
    assert Decimal(row["cost"]) == want["total_cost"]
    assert row["createdAt"] == want["ts"].isoformat() + "Z"
    assert row["operation"] == want["operation"] and row["model"] == want["model"]
    ids, before = [], None
    while True:
        page = env.server.json(
            "/api/tokens/history", env.admin, limit=3, **({"before": before} if before else {})
        )
        ids += [r["id"] for r in page["usage"]]
        before = page["nextBefore"]
        if before is None:
            break
    assert ids == [r["id"] for r in everything]


def test_history_rows_carry_no_prompt_or_metadata(env: Env) -> None:
    row = env.server.json("/api/tokens/history", env.admin, limit=1)["usage"][0]
    assert not {"prompt", "messages", "metadata", "content", "completion"} & set(row)


@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_usage_by_period_equals_over_time_with_empty_periods_as_zeros(
    env: Env, period: str
) -> None:
    got = env.server.json("/api/tokens/usage-by-period", env.admin, period=period, since="60d")
    want = env.table(queries.over_time, period, None, "60d", tz="UTC").records()
    assert [r["date"] for r in got["data"]] == [w["period"].date().isoformat() for w in want]
    assert [(r["tokens"], Decimal(r["cost"]), r["calls"]) for r in got["data"]] == [
        (w["total_tokens"], w["cost"], w["calls"]) for w in want
    ]
    if period == "day":
        assert len(got["data"]) >= 60
        assert any(r["tokens"] == 0 and r["cost"] == "0.000000000000" for r in got["data"])


def test_projection_equals_forecast(env: Env) -> None:
    got = env.server.json("/api/tokens/projection", env.admin)
    want = env.table(queries.forecast, tz="UTC").first()
    assert got["month"] == want["month"]
    assert Decimal(got["monthToDate"]) == want["month_to_date"]
    assert Decimal(got["runRatePerDay"]) == want["run_rate_per_day"]


def test_times_are_iso_utc(env: Env) -> None:
    got = env.server.json("/api/tokens/stats", env.admin, since="2026-01-01T00:00:00+02:00")
    assert got["filters"]["since"] == "2025-12-31T22:00:00Z"


def test_a_bad_time_is_a_400_saying_what_is_wrong(env: Env) -> None:
    response = env.server.get("/api/tokens/stats", env.admin, since="last tuesday-ish")
    assert response.status_code == 400
    assert "last tuesday-ish" in response.json()["detail"]


# ---------------------------------------------------------------------------- access
def test_missing_or_wrong_token_is_401_on_every_endpoint(env: Env) -> None:
    for path in (
        "/api/me",
        "/api/tokens/stats",
        "/api/tokens/history",
        "/api/tokens/usage-by-period",
        "/api/tokens/projection",
        "/api/budgets",
    ):
        assert env.server.get(path).status_code == 401, path
        assert env.server.get(path, "tt_not-a-real-token").status_code == 401, path
    assert env.server.post("/api/budgets/check", {"model": "gpt-4o"}).status_code == 401
    health = env.server.json("/api/health")
    assert health["auth"] == "tokens"


@pytest.mark.parametrize("asked", [None, "u2", "u3"])
def test_a_user_token_sees_only_its_own_rows_whatever_it_asks(env: Env, asked: str | None) -> None:
    extra = {"userId": asked} if asked else {}
    me = env.server.json("/api/me", env.u1)
    assert me == {"userId": "u1", "admin": False}

    stats = env.server.json("/api/tokens/stats", env.u1, **extra)
    own = env.table(queries.summary, user_id="u1").first()
    assert stats["calls"] == own["calls"] and Decimal(stats["totalCost"]) == own["cost"]
    assert [r["userId"] for r in stats["byUser"]] == ["u1"]
    assert stats["filters"]["userId"] == "u1"

    history = env.server.json("/api/tokens/history", env.u1, limit=100, **extra)
    assert history["usage"] and {r["userId"] for r in history["usage"]} == {"u1"}

    periods = env.server.json("/api/tokens/usage-by-period", env.u1, since="60d", **extra)
    assert (
        sum(r["calls"] for r in periods["data"])
        == env.table(queries.summary, "60d", user_id="u1").first()["calls"]
    )

    projection = env.server.json("/api/tokens/projection", env.u1, **extra)
    want = env.table(queries.forecast, tz="UTC", user_id="u1").first()
    assert Decimal(projection["monthToDate"]) == want["month_to_date"]

    budgets = env.server.json("/api/budgets", env.u1, **extra)["budgets"]
    assert budgets and {(b["scope"], b["key"]) for b in budgets} == {("user", "u1")}


def test_a_user_token_cannot_reach_other_rows_through_filters_or_the_cursor(env: Env) -> None:
    other = env.table(queries.history, 100, user_id="u2").records()
    for row in other:
        for params in ({"model": row["model"]}, {"operation": row["operation"]}):
            got = env.server.json("/api/tokens/history", env.u1, limit=100, **params)
            assert all(r["userId"] == "u1" for r in got["usage"])
    # A u2 call id as the cursor pages nothing for u1.
    got = env.server.json("/api/tokens/history", env.u1, before=other[0]["id"])
    assert got["usage"] == []
    assert "u2" not in json.dumps(env.server.json("/api/tokens/stats", env.u1, since="90d"))


def test_an_admin_token_sees_every_user_or_one(env: Env) -> None:
    stats = env.server.json("/api/tokens/stats", env.admin)
    assert {r["userId"] for r in stats["byUser"]} == {"u1", "u2", "u3"}
    only = env.server.json("/api/tokens/stats", env.admin, userId="u3")
    assert only["calls"] == sum(1 for k in KNOWN if k[2] == "u3")
    budgets = env.server.json("/api/budgets", env.admin)["budgets"]
    assert ("global", None) in {(b["scope"], b["key"]) for b in budgets}


def test_a_revoked_token_is_refused_within_seconds(env: Env) -> None:
    token = create_token(env.db, "--user", "u3")
    assert env.server.get("/api/me", token).status_code in (200, 401)  # may not be loaded yet
    listed = json.loads(cli(env.db, "token", "list", "--json").stdout)["tokens"]
    ident = next(t["id"] for t in listed if t["user_id"] == "u3" and t["revoked_at"] is None)
    _eventually(lambda: env.server.get("/api/me", token).status_code == 200)
    cli(env.db, "token", "revoke", ident)
    _eventually(lambda: env.server.get("/api/me", token).status_code == 401)


def test_tokens_are_stored_hashed_and_never_listed(env: Env) -> None:
    import duckdb

    token = create_token(env.db, "--user", "u9")
    listed = cli(env.db, "token", "list", "--json").stdout
    assert token not in listed
    con = duckdb.connect(str(env.db), read_only=True)
    try:
        stored = [r[0] for r in con.execute("SELECT token_sha256 FROM api_tokens").fetchall()]
    finally:
        con.close()
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert token not in stored


# ---------------------------------------------------------------------------- budgets
@pytest.mark.parametrize(
    ("user", "model", "max_tokens"),
    [("u1", "gpt-4o", 500), ("u2", "gpt-4o", 500), ("u3", "claude-sonnet-4-5", 4000)],
)
def test_budget_check_agrees_with_tracker_check(
    env: Env, user: str, model: str, max_tokens: int
) -> None:
    messages = [{"role": "user", "content": "How many tokens will this question take?"}]
    got = env.server.post(
        "/api/budgets/check",
        {"userId": user, "model": model, "messages": messages, "maxTokens": max_tokens},
        env.admin,
    ).json()
    want = env.tracker.check(user_id=user, model=model, messages=messages, max_tokens=max_tokens)
    assert got["allowed"] is want.allowed
    assert got["reason"] == want.reason
    assert (
        got["retryAfter"] == pytest.approx(want.retry_after, abs=5)
        if want.retry_after
        else (got["retryAfter"] is None)
    )
    assert Decimal(got["remaining"]) == want.remaining
    assert got["estimatedTokens"] == want.estimate.tokens  # type: ignore[union-attr]
    assert got["allowed"] is (user != "u1")  # u1's tiny daily budget is spent


def test_budget_check_with_prompt_tokens_counts_them(env: Env) -> None:
    got = env.server.post(
        "/api/budgets/check",
        {"userId": "u2", "model": "gpt-4o", "promptTokens": 1234, "maxTokens": 100},
        env.admin,
    ).json()
    assert got["allowed"] is True
    assert got["estimatedTokens"] == 1234 + 100


def test_budget_check_for_a_user_token_is_about_that_user(env: Env) -> None:
    body = {"userId": "u2", "model": "gpt-4o", "maxTokens": 10, "promptTokens": 10}
    got = env.server.post("/api/budgets/check", body, env.u1).json()
    assert got["allowed"] is False  # u1's spent daily budget, not u2's open one
    assert "u1" in (got["reason"] or "")


# ---------------------------------------------------------------------------- misc
def test_openapi_documents_the_endpoints_in_camel_case(env: Env) -> None:
    spec = env.server.json("/openapi.json")
    for path in (
        "/api/tokens/stats",
        "/api/tokens/history",
        "/api/tokens/usage-by-period",
        "/api/budgets",
        "/api/budgets/check",
        "/api/health",
    ):
        assert path in spec["paths"], path
    stats = spec["components"]["schemas"]["Stats"]["properties"]
    assert {"totalInputTokens", "totalOutputTokens", "totalCost", "byOperation", "byModel"} <= set(
        stats
    )


def test_the_dashboard_and_its_files_come_from_the_server_itself(env: Env) -> None:
    page = env.server.get("/")
    assert page.status_code == 200 and "<title>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text
    for asset in ("/static/dashboard.js", "/static/dashboard.css", "/static/look.css"):
        response = env.server.get(asset)
        assert response.status_code == 200, asset
        assert "http://" not in response.text.replace("http://www.w3.org/2000/svg", "")


def _eventually(check: Any, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


# ---------------------------------------------------------------------------- no tokens
def test_without_tokens_it_answers_on_loopback_and_says_so(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        write_known_rows(tracker)
    server = Server(db)
    try:
        assert server.json("/api/health")["auth"] == "loopback-only"
        assert server.json("/api/me") == {"userId": None, "admin": True}
        assert server.json("/api/tokens/stats")["calls"] == len(KNOWN)
    finally:
        server.stop()
    assert "answering only on loopback" in server.log.read_text()


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_without_tokens_it_refuses_to_bind_publicly(tmp_path: Path, host: str) -> None:
    db = tmp_path / "usage.duckdb"
    done = cli(db, "serve", "--host", host, "--port", "1", check=False)
    assert done.returncode != 0
    assert "refusing to serve" in done.stderr and "token create" in done.stderr


def test_it_mounts_inside_another_app(tmp_path: Path) -> None:
    import subprocess
    import sys

    import httpx

    from tests.server_support import free_port

    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        write_known_rows(tracker)
    port = free_port()
    script = (
        "import sys, uvicorn\n"
        "from fastapi import FastAPI\n"
        "import tokentrail, tokentrail.server\n"
        "web = FastAPI()\n"
        "@web.get('/')\n"
        "def home(): return {'app': 'mine'}\n"
        "tracker = tokentrail.Tracker(sys.argv[1])\n"
        "web.mount('/usage', tokentrail.server.app(tracker))\n"
        "uvicorn.run(web, host='127.0.0.1', port=int(sys.argv[2]), log_level='warning')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(db), str(port)])
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(base + "/", timeout=2).status_code == 200
            except httpx.TransportError:
                return proc.poll() is not None

        _eventually(up, 60)
        assert httpx.get(base + "/").json() == {"app": "mine"}
        stats = httpx.get(base + "/usage/api/tokens/stats", timeout=30).json()
        assert stats["calls"] == len(KNOWN)
        assert httpx.get(base + "/usage/", timeout=30).status_code == 200
        assert httpx.get(base + "/usage/static/dashboard.js", timeout=30).status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_checked_prompt_is_neither_stored_nor_served(env: Env) -> None:
    secret = "the-launch-code-is-7431-violet"
    body = {"userId": "u2", "model": "gpt-4o", "messages": [{"role": "user", "content": secret}]}
    assert env.server.post("/api/budgets/check", body, env.admin).status_code == 200
    answers = [
        env.server.get(path, env.admin).text
        for path in ("/api/tokens/stats", "/api/tokens/history", "/api/budgets")
    ]
    env.tracker.flush()
    stored = b"".join(
        p.read_bytes() for p in env.db.parent.rglob("*") if p.is_file() and p.suffix != ".log"
    )
    assert secret not in "".join(answers)
    assert secret.encode() not in stored
    assert secret not in env.server.log.read_text()


def test_no_page_of_the_server_loads_anything_from_a_cdn(env: Env) -> None:
    assert env.server.get("/docs").status_code == 404
    assert env.server.get("/redoc").status_code == 404
