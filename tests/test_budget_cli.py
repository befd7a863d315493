"""``tokentrail budget status``: saved budgets and ad-hoc ones, spend read from the database."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tokentrail import Tracker
from tokentrail.cli import cli


def _fill(db: Path) -> None:
    with Tracker(db) as t:
        t.budget(tokens=1000, per="day", scope="user")
        t.budget(tokens=5000, per="day", scope="user", user_id="vip")
        t.budget(usd=1, per="month", scope="global")
        t.record(model="gpt-4o-mini", usage={"input_tokens": 800}, user_id="alice")
        t.record(model="gpt-4o-mini", usage={"input_tokens": 100}, user_id="bob")
        t.record(model="gpt-4o-mini", usage={"input_tokens": 2500}, user_id="vip")


def test_status_json_reads_saved_budgets(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    _fill(db)
    assert (tmp_path / "usage.duckdb.budgets.json").is_file()
    result = CliRunner().invoke(cli, ["--db", str(db), "budget", "status", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["budgets"]
    got = {(r["scope"], r["key"], r["window"]): (r["spent"], r["limit"]) for r in rows}
    assert got[("user", "alice", "day")] == (800, 1000)
    assert got[("user", "bob", "day")] == (100, 1000)
    assert got[("user", "vip", "day")] == (2500, 5000)  # the override, not the default
    assert ("user", "vip", "day") in got and len([k for k in got if k[1] == "vip"]) == 1
    spent_usd, limit_usd = got[("global", None, "month")]
    assert float(spent_usd) > 0 and limit_usd == "1"
    assert rows[0]["key"] == "alice" and rows[0]["percent"] == 80.0  # highest first


def test_status_table_and_ad_hoc_budget(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    _fill(db)
    out = CliRunner().invoke(cli, ["--db", str(db), "budget", "status"]).output
    assert "alice" in out and "80%" in out and "⚠" in out
    adhoc = CliRunner().invoke(
        cli, ["--db", str(db), "budget", "status", "--tokens", "200", "--scope", "global", "--json"]
    )
    [row] = json.loads(adhoc.output)["budgets"]
    assert row["spent"] == 3400 and row["percent"] == 1700.0


def test_status_without_budgets_explains(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "none.duckdb"), "budget", "status"])
    assert result.exit_code == 0 and "No budgets saved" in result.output


def test_status_shows_calls_in_flight_from_the_shared_ledger(tmp_path: Path) -> None:
    from tokentrail.budget import PreflightRequest
    from tokentrail.context import Attribution

    db = tmp_path / "usage.duckdb"
    with Tracker(db) as t:
        t.budget(tokens=1000, per="day", scope="user")
        ctx = t.call_context(Attribution.of(user_id="carol"))
        ask = PreflightRequest(
            model="gpt-4o-mini", provider="openai", prompt="hi", max_tokens=300, context=ctx
        )
        held = t.preflight(ask)  # a call in flight in this process
        assert held is not None
        result = CliRunner().invoke(cli, ["--db", str(db), "budget", "status", "--json"])
        assert result.exit_code == 0, result.output
        [row] = json.loads(result.output)["budgets"]
        assert (row["key"], row["spent"], row["reserved"]) == ("carol", 0, held.estimate.tokens)
        table = CliRunner().invoke(cli, ["--db", str(db), "budget", "status"]).output
        assert "held" in table and f"{held.estimate.tokens:,}" in table
        t.release(held)


def test_status_table_says_units_remaining_and_when_each_window_resets(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    db = tmp_path / "usage.duckdb"
    _fill(db)
    out = CliRunner().invoke(cli, ["--db", str(db), "budget", "status"]).output
    lines = out.splitlines()
    assert lines[0].split() == [
        "scope", "key", "window", "spent", "held", "remaining", "limit", "used", "resets"
    ]  # fmt: skip
    alice = next(line for line in lines if " alice " in line)
    assert "800 tokens" in alice and "200 tokens" in alice and "1,000 tokens" in alice
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%d 00:00 UTC")
    assert tomorrow in alice
    month = next(line for line in lines if line.startswith("global"))
    assert "(all)" in month and "$1.0000" not in month and "$1.00" in month  # no $100.0000
    assert month.count("$") == 4  # spent, held, remaining, limit
