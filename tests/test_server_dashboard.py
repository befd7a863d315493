"""The live dashboard in a real browser: headless Chromium over the DevTools protocol.

The page is served by the real server (uvicorn subprocess); the test sees the charts and
the recent-calls table, records a new call through a tracker, and sees the page show it
without a reload. Screenshots go to ``TOKENTRAIL_SCREENSHOTS`` (a directory) when set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("websocket")

from tests.browser import chromium
from tests.cdp import Browser
from tests.server_support import KNOWN, Server, create_token, write_known_rows
from tokentrail import Tracker

pytestmark = pytest.mark.slow


@pytest.fixture
def browser() -> Iterator[Browser]:
    chromium()  # skips (or fails under TOKENTRAIL_REQUIRE_BROWSER=1) without Chromium
    with Browser() as b:
        yield b


def _shot(browser: Browser, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("TOKENTRAIL_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return browser.screenshot(folder / name)


def _rows(browser: Browser) -> list[list[str]]:
    rows: list[list[str]] = browser.eval(
        "[...document.querySelectorAll('#recent-calls tbody tr')]"
        ".map(tr => [...tr.cells].map(td => td.textContent))"
    )
    return rows


def test_the_dashboard_draws_and_updates_itself_when_a_call_is_recorded(
    tmp_path: Path, browser: Browser
) -> None:
    db = tmp_path / "usage.duckdb"
    tracker = Tracker(db)
    write_known_rows(tracker)
    tracker.budget(usd=5, per="day", scope="user")
    admin = create_token(db, "--admin")
    server = Server(db)
    try:
        browser.open(f"{server.url}/#token={admin}")
        browser.wait("document.querySelectorAll('#recent-calls tbody tr').length > 0")
        # The token left the address bar; the charts and table are drawn.
        assert "token" not in browser.eval("location.href")
        assert (
            browser.eval("document.querySelectorAll('#tokens-over-time svg path.line').length") == 1
        )
        bars = browser.eval("document.querySelectorAll('#spend-by-model svg rect.bar').length")
        models = {k[4] for k in KNOWN if k[0] <= 30}
        assert bars == len(models)
        assert (
            browser.eval("document.querySelectorAll('#spend-by-operation svg rect.bar').length") > 0
        )
        kpis = browser.eval(
            "Object.fromEntries([...document.querySelectorAll('.tile')]"
            ".map(t => [t.dataset.kpi, t.querySelector('.value').textContent]))"
        )
        in_range = [k for k in KNOWN if k[0] <= 30]
        assert kpis["Calls"] == str(len(in_range))
        assert any(key.startswith("Projected") for key in kpis)
        assert len(_rows(browser)) == len(in_range)
        assert browser.eval("document.querySelectorAll('#budgets .budget').length") > 0
        _shot(browser, "dashboard-admin.png", tmp_path)

        # A new call appears without a reload (the marker set now would be lost by one).
        browser.eval("window.__noReload = 42")
        tracker.record(
            model="gpt-4o",
            provider="openai",
            usage={"input_tokens": 4321, "output_tokens": 123},
            user_id="u7",
            operation="live-check",
        )
        assert tracker.flush()
        browser.wait(
            "[...document.querySelectorAll('#recent-calls tbody tr')]"
            ".some(tr => tr.textContent.includes('live-check'))",
            timeout=15,
        )
        assert browser.eval("window.__noReload") == 42
        top = _rows(browser)[0]
        assert top[1:4] == ["u7", "live-check", "gpt-4o"] and top[4] == "4,321"
        kpis = browser.eval(
            "document.querySelector('.tile[data-kpi=\"Calls\"] .value').textContent"
        )
        assert kpis == str(len(in_range) + 1)

        # Drill down: click a user; the header says the page is filtered, the table obeys.
        browser.eval(
            "[...document.querySelectorAll('#top-users button.drill')]"
            ".find(b => b.textContent === 'u2').click()"
        )
        browser.wait("document.querySelector('.chip[data-filter=user]') !== null")
        browser.wait(
            "[...document.querySelectorAll('#recent-calls tbody tr')]"
            ".every(tr => tr.cells[1].textContent === 'u2')"
        )
        assert "u2" in browser.eval("document.getElementById('filters').textContent")
        assert "user=u2" in browser.eval("location.hash")
        _shot(browser, "dashboard-drilldown.png", tmp_path)
        assert not [c for c in browser.console if c.startswith("exception")], browser.console
    finally:
        server.stop()
        tracker.close()


def test_a_user_token_sees_its_own_dashboard_only(tmp_path: Path, browser: Browser) -> None:
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        write_known_rows(tracker)
    token = create_token(db, "--user", "u1")
    server = Server(db)
    try:
        browser.open(f"{server.url}/#token={token}&user=u2")
        browser.wait("document.querySelectorAll('#recent-calls tbody tr').length > 0")
        users = {r[1] for r in _rows(browser)}
        assert users == {"u1"}
        assert browser.eval("document.getElementById('top-users').hidden") is True
        assert "u1 (your token)" in browser.eval("document.getElementById('filters').textContent")
        _shot(browser, "dashboard-user.png", tmp_path)
    finally:
        server.stop()


def test_without_a_token_the_page_asks_for_one(tmp_path: Path, browser: Browser) -> None:
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        write_known_rows(tracker)
    token = create_token(db, "--user", "u1")
    server = Server(db)
    try:
        browser.open(server.url + "/")
        browser.wait("!document.getElementById('login').hidden")
        assert browser.eval("document.getElementById('dashboard').hidden") is True
        browser.eval(
            f"document.getElementById('token').value = {json.dumps(token)};"
            "document.getElementById('login-form').requestSubmit()"
        )
        browser.wait("document.querySelectorAll('#recent-calls tbody tr').length > 0")
    finally:
        server.stop()
