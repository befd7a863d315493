"""``tokentrail html`` shares the dashboard's look and says how it is filtered."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.server_support import write_known_rows
from tokentrail import Tracker, report_html
from tokentrail.cli import cli


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("look") / "usage.duckdb"
    with Tracker(path) as tracker:
        write_known_rows(tracker)
    return path


def test_the_report_uses_the_dashboard_stylesheet(db: Path) -> None:
    look = (Path(report_html.__file__).parent / "assets" / "look.css").read_text()
    assert look in report_html.render(db)


def test_the_report_header_shows_its_filters(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    args = ["--db", str(db), "html", "-o", str(out), "--since", "30d", "--user", "u1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    header = out.read_text().split("</header>")[0]
    assert "<b>range</b> 30d → now" in header
    assert "<b>user</b> u1" in header


def test_an_unfiltered_report_says_so(db: Path) -> None:
    header = report_html.render(db).split("</header>")[0]
    assert "<b>range</b> all time" in header
    assert "all users, models and operations" in header
