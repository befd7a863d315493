"""Running a measurement in a fresh Python subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any


def run_child(source: str, args: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run ``source`` with ``args`` in a new interpreter; its last stdout line, as JSON."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
