"""Headless Chromium for the tests that render pages.

Debian's ``chromium`` package is what the tests drive. Where it is not installed the tests
that need it are skipped with the command that installs it, unless
``TOKENTRAIL_REQUIRE_BROWSER=1`` is set (``.ci/run`` sets it), which turns the skip into a
failure so that CI can never pass without having rendered the pages.
"""

from __future__ import annotations

import os
import shutil

import pytest

INSTALL_HINT = "headless Chromium is not installed: `sudo apt-get install chromium` (Debian/Ubuntu)"

# Flags for a root user on a machine without network beyond loopback.
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str:
    """The Chromium executable, or skip the test (fail under ``TOKENTRAIL_REQUIRE_BROWSER``)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("TOKENTRAIL_REQUIRE_BROWSER") == "1":
        pytest.fail(INSTALL_HINT + " (TOKENTRAIL_REQUIRE_BROWSER=1 makes this a failure)")
    pytest.skip(INSTALL_HINT)
