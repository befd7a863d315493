"""``tokentrail serve --db postgresql://...``: the API over a PostgreSQL store.

The real server (uvicorn in a child process, ``server_support.Server``) over a throwaway
PostgreSQL cluster and over a DuckDB file holding the same 300 records: the answers must
be the same. Budgets saved with ``tracker.budget`` on the URL are listed and checked. A URL
is served on loopback only (API tokens live in a DuckDB file), which the CLI says; the
demo refuses a URL (its made-up calls would land in a shared database).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from tests.server_support import Server
from tests.varied_records import fill as _fill
from tests.varied_records import varied_records as _records
from tokentrail import Tracker
from tokentrail.cli import cli


def test_serve_on_a_url_answers_what_it_answers_on_the_same_duckdb_rows(
    pg_url: str, tmp_path: Path
) -> None:
    records = _records(300, seed=5)
    duck = tmp_path / "usage.duckdb"
    _fill(duck, records)
    _fill(pg_url, records)
    for db in (duck, pg_url):  # saved beside the file, and in the tokentrail_budgets table
        with Tracker(db) as tracker:
            tracker.budget(usd=Decimal("0.001"), per="month", scope="global")
    servers = [Server(duck), Server(pg_url, log_dir=tmp_path)]
    try:
        ask = {"since": "2000-01-01T00:00:00Z"}
        d, p = (s.json("/api/tokens/stats", **ask) for s in servers)
        assert p["calls"] == d["calls"] == 300
        assert Decimal(p["totalCost"]) == Decimal(d["totalCost"]) > 0
        assert p == d  # every figure, group and ratio
        d_hist, p_hist = (s.json("/api/tokens/history", **ask, limit=50) for s in servers)
        assert p_hist == d_hist and len(p_hist["usage"]) == 50
        d_budgets, p_budgets = (s.json("/api/budgets")["budgets"] for s in servers)
        assert len(p_budgets) == len(d_budgets) == 1
        assert p_budgets == d_budgets  # the same figures, written the same way
        assert Decimal(p_budgets[0]["limit"]) == Decimal("0.001")
        # gpt-4o-mini output is $0.60 per million tokens (openai.com/api/pricing): 10,000
        # reply tokens may cost $0.006, over the $0.001 limit whatever was spent before.
        body = {"userId": "u1", "model": "gpt-4o-mini", "maxTokens": 10_000}
        answers = [s.post("/api/budgets/check", body) for s in servers]
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        p_check, d_check = answers[1].json(), answers[0].json()
        assert abs(p_check.pop("retryAfter") - d_check.pop("retryAfter")) < 30  # seconds to reset
        assert p_check == d_check
        assert p_check["allowed"] is False
    finally:
        for s in servers:
            s.stop()


def test_serve_refuses_to_bind_a_url_beyond_loopback_and_says_why() -> None:
    url = "postgresql://me:secret@127.0.0.1:1/usage"
    done = CliRunner().invoke(cli, ["--db", url, "serve", "--host", "0.0.0.0"])
    assert done.exit_code == 1
    assert "loopback only" in done.output and "secret" not in done.output


def test_demo_refuses_a_url_and_says_why() -> None:
    """The demo writes made-up calls and a budget: never into a shared PostgreSQL database
    (named either way), and the password is not shown."""
    url = "postgresql://me:secret@127.0.0.1:1/usage"
    for args in (["--db", url, "demo"], ["demo", "--db", url]):
        done = CliRunner().invoke(cli, args)
        assert done.exit_code == 1, done.output
        assert "does not write into a PostgreSQL database" in done.output
        assert "every host" in done.output and "secret" not in done.output
