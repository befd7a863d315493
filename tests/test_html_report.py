"""The HTML dashboard: self-contained, and it renders in headless Chromium with its charts."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.analytics_data import R1, R2, R3, R4, write_db
from tests.browser import HEADLESS_FLAGS, chromium
from tokentrail import report_html
from tokentrail.cli import cli


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return write_db(tmp_path / "usage.duckdb", [R1, R2, R3, R4])


def browse(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium(),
            *HEADLESS_FLAGS,
            f"--user-data-dir={tmp_path / 'chrome'}",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_report_is_self_contained(db: Path, tmp_path: Path) -> None:
    page = report_html.write(
        tmp_path / "r.html", db, now=datetime(2026, 11, 23, tzinfo=timezone.utc)
    )
    text = page.read_text()
    assert text.count("<svg") == 5
    # nothing fetched from elsewhere: no scripts, no external links or images
    assert "<script" not in text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    for tile in ("Spend", "Tokens", "Calls", "Cache savings", "Forecast 2026-11"):
        assert tile in text
    assert "$0.0115" in text


def test_report_renders_in_chromium_with_charts(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["--db", str(db), "html", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Wrote" in result.output
    dom = browse(out, tmp_path, "--dump-dom").stdout
    assert dom.count("<svg") == 5
    charts = re.findall(r"data-chart=\"([^\"]+)\"", dom)
    assert charts == [
        "Spend over time",
        "Spend by model",
        "Usage by operation",
        "Tokens: input, cached, output",
        "Prompt-cache hit rate",
    ]
    # the charts have drawn content (bars are paths inside the svg), tables have rows
    assert dom.count("<path") > 50
    recent = dom.split('id="recent-calls"')[1]
    assert recent.count("<tr") == 5  # header + 4 calls
    assert "RateLimitError" not in dom  # error text is not shown, only the status
    shot = tmp_path / "shot.png"
    browse(out, tmp_path, "--window-size=1280,2000", f"--screenshot={shot}")
    assert shot.stat().st_size > 50_000


def test_report_of_calls_recorded_without_a_latency(tmp_path: Path) -> None:
    """issue 22: ``tokentrail html`` raised on rows from a plain ``record()`` (no latency)."""
    from tokentrail import Tracker

    db = tmp_path / "manual.duckdb"
    with Tracker(db) as tracker:
        tracker.record(model="gpt-4o", usage={"input_tokens": 100, "output_tokens": 10})
    result = CliRunner().invoke(cli, ["--db", str(db), "html", "-o", str(tmp_path / "m.html")])
    assert result.exit_code == 0, result.output
    assert "gpt-4o" in (tmp_path / "m.html").read_text()
