"""Make ``docs/dashboard.png``: the live dashboard over a generated month of demo usage.

Run from the repository root (needs the dev extra and Chromium)::

    python docs/screenshot.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cdp import Browser  # noqa: E402
from tests.server_support import Server, create_token  # noqa: E402
from tokentrail import Tracker, demo_data  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "usage.duckdb"
        with Tracker(db) as tracker:
            demo_data.generate(tracker, days=30)
            tracker.budget(usd=5, per="day", scope="user")
            tracker.budget(usd=250, per="month", scope="global")
        token = create_token(db, "--admin")
        server = Server(db)
        try:
            with Browser(width=1360, height=900) as browser:
                browser.open(f"{server.url}/#token={token}&range=30d")
                browser.wait("document.querySelectorAll('#recent-calls tbody tr').length > 0")
                # Ten recent calls are enough for a picture.
                browser.eval(
                    "[...document.querySelectorAll('#recent-calls tbody tr')].slice(10)"
                    ".forEach(tr => tr.remove()); document.getElementById('older').hidden = true"
                )
                out = browser.screenshot(ROOT / "docs" / "dashboard.png")
                print(f"wrote {out}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
