"""``tokentrail report``, ``top``, ``history``: tables, JSON, CSV, errors and exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.analytics_data import R1, R2, R3, R4, write_db
from tokentrail.cli import cli


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return write_db(tmp_path / "usage.duckdb", [R1, R2, R3, R4])


def run(db: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_report_prints_totals_and_aligned_tables(db: Path) -> None:
    code, out = run(db, "report")
    assert code == 0
    assert "Spend          $0.0115 (+1 calls unpriced)" in out
    assert "Calls          4  (25.0% errors)" in out
    assert "Tokens         3,910  (3,600 in / 310 out, ~25.0% of calls estimated)" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model "))
    assert lines[header + 1].startswith("───")
    gpt = lines[header + 2].split()
    assert gpt == ["gpt-4o", "2", "~3,200", "$0.0085", "73.9%"]  # R2 is estimated
    # numbers are right-aligned: every row of the table has the same width up to the share
    widths = {len(line) for line in lines[header : header + 5]}
    assert len(widths) == 1


def test_report_by_dimension_as_json(db: Path) -> None:
    code, out = run(db, "report", "--by", "model", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["model"] for r in rows] == ["gpt-4o", "claude", "mystery"]
    assert rows[0]["calls"] == 2
    assert float(rows[0]["cost"]) == pytest.approx(0.0085)
    assert rows[2]["unpriced_calls"] == 1


def test_report_by_user_as_csv_with_filters(db: Path) -> None:
    code, out = run(db, "report", "--by", "user", "--csv", "--operation", "chat")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["user_id"] for r in rows] == ["alice", "carol"]
    assert rows[0]["calls"] == "2"


def test_report_per_period_fills_gaps(db: Path) -> None:
    code, out = run(db, "report", "--period", "day", "--tz", "America/New_York", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["calls"] for r in rows] == [2, 0, 2]


def test_top_and_history(db: Path) -> None:
    code, out = run(db, "top", "--by", "model", "-n", "1")
    assert code == 0
    assert "gpt-4o" in out and "claude" not in out
    code, out = run(db, "history", "-n", "2", "--json")
    assert code == 0
    assert [r["id"] for r in json.loads(out)] == [R4.id, R3.id]
    code, out = run(db, "history", "--user", "bob")
    assert "claude" in out and "gpt-4o" not in out


def test_bad_time_exits_2_and_says_what_works(db: Path) -> None:
    code, out = run(db, "report", "--since", "last tuesday")
    assert code == 2
    assert '"7d"' in out and "ISO date" in out


def test_unknown_time_zone_exits_2_even_without_period(db: Path) -> None:
    code, out = run(db, "report", "--tz", "Mars/Olympus")
    assert code == 2
    assert "IANA name" in out


def test_unknown_dimension_exits_2(db: Path) -> None:
    code, out = run(db, "report", "--by", "colour")
    assert code == 2
    assert "use one of model" in out


def test_empty_database_says_what_to_do(tmp_path: Path) -> None:
    code, out = run(write_db(tmp_path / "empty.duckdb", []), "report")
    assert code == 0
    assert "No calls recorded" in out and "tokentrail demo" in out


def test_no_default_database_yet_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOKENTRAIL_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["report"])
    assert result.exit_code == 0
    assert "No calls recorded yet" in result.output and "tokentrail demo" in result.output


def test_usage_is_the_report_under_the_name_people_type_first(db: Path) -> None:
    assert run(db, "usage") == run(db, "report")


def test_a_money_column_has_one_precision(db: Path) -> None:
    code, out = run(db, "report", "--by", "user")
    assert code == 0
    costs = [line.split()[-3] for line in out.splitlines() if line.startswith(("alice", "bob"))]
    assert costs and {len(c.split(".")[1]) for c in costs if c.startswith("$")} == {4}


def test_an_unknown_dimension_names_the_words_the_help_uses(db: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(db), "report", "--by", "bogus"])
    assert result.exit_code == 2
    assert "user, session" in result.output and "user_id" not in result.output


def test_an_empty_selection_is_not_an_empty_database(db: Path) -> None:
    code, out = run(db, "report", "--since", "2027-01-01")
    assert code == 0
    assert "No calls match this selection" in out and "holds 4 calls" in out
    assert "tokentrail demo" not in out


def test_tag_shares_say_why_they_add_up_to_more_than_all(db: Path) -> None:
    code, out = run(db, "report", "--by", "tag")
    assert code == 0 and "more than 100%" in out
    assert "more than 100%" not in run(db, "report", "--by", "model")[1]


@pytest.mark.parametrize("command", [["report"], ["top"], ["history"], ["html", "-o", "x.html"]])
def test_a_database_that_does_not_exist_is_an_error_not_an_empty_report(
    tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "typo.duckdb"
    result = CliRunner().invoke(cli, ["--db", str(missing), *command])
    assert result.exit_code == 1
    assert "no tokentrail database at" in result.output and str(missing) in result.output
    assert not missing.exists()


def test_tables_are_coloured_in_a_terminal_only(db: Path) -> None:
    plain = CliRunner().invoke(cli, ["--db", str(db), "report", "--by", "model"])
    coloured = CliRunner().invoke(cli, ["--db", str(db), "report", "--by", "model"], color=True)
    assert "\x1b[" not in plain.output
    assert "\x1b[1m" in coloured.output  # a bold header
