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
    assert "Tokens         3,910  (3,600 in / 310 out)" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model "))
    assert lines[header + 1].startswith("───")
    gpt = lines[header + 2].split()
    assert gpt == ["gpt-4o", "2", "3,200", "$0.0085", "73.9%"]
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
    code, out = run(tmp_path / "empty.duckdb", "report")
    assert code == 0
    assert "No calls recorded" in out and "tokentrail demo" in out
