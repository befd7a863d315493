"""The README's "Your own prices, end to end" snippets run as written."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tokentrail import pricing

ROOT = Path(__file__).resolve().parent.parent


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("### Your own prices, end to end")
    return text[start : text.index("\n## ", start)]


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", _section(), flags=re.S)


def test_the_prices_walkthrough_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    pricing.clear_overrides()
    try:
        [code] = _blocks("python")
        exec(compile(code, "README.md", "exec"), {})
    finally:
        pricing.clear_overrides()
    # 3,000 + 1,200 per 1M; then tracker.reprice's dry run: the one unpriced row
    assert capsys.readouterr().out.split() == ["0.004200", "override", "1"]
    [yaml_text] = _blocks("yaml")
    (tmp_path / "my-prices.yaml").write_text(yaml_text)
    [shell] = _blocks("bash")
    env = {k: v for k, v in os.environ.items() if k != "TOKENTRAIL_PRICING"}
    env["PYTHONPATH"] = str(ROOT / "src")
    main = "import sys; from tokentrail.cli import main; sys.exit(main())"
    outputs = []
    for line in shell.splitlines():
        words = shlex.split(line, comments=True)
        if words[0] == "export":
            name, value = words[1].split("=", 1)
            env[name] = value
            continue
        assert words[0] == "tokentrail"
        done = subprocess.run(
            [sys.executable, "-c", main, *words[1:], "--json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (line, done.stdout, done.stderr)
        outputs.append(json.loads(done.stdout))
    price, preview, done_, report = outputs
    # 1,000 x 3 + 100 x 12 = 4,200 per 1M tokens: $0.0042; quoted per 1K: $0.003 input.
    assert Decimal(price["total"]) == Decimal("0.0042")
    assert price["units"] == "USD per 1K tokens"
    assert preview["dry_run"] and preview["changed"] == 1
    assert done_["changed"] == 1
    assert [r["model"] for r in report] == ["my-finetune"]
    assert Decimal(report[0]["cost"]) == Decimal("0.0042")
    with duckdb.connect(str(tmp_path / "usage.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM tokentrail_repriced").fetchall() == [(1,)]
