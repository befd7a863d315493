"""Reports group a model's spellings under the catalog's model (``priced_model``).

gpt-4o-mini is $0.15 / $0.60 per 1M input / output tokens (https://openai.com/api/pricing);
its dated snapshot gpt-4o-mini-2024-07-18 is priced as the same catalog model.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from tokentrail import Tracker
from tokentrail.cli import cli


def _db(tmp_path: Path) -> Path:
    path = tmp_path / "usage.duckdb"
    with Tracker(path) as tracker:
        for name in ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini"):
            tracker.record(
                model=name, provider="openai", usage={"input_tokens": 1000, "output_tokens": 100}
            )
        tracker.record(model="acme-experimental-1", usage={"input_tokens": 10})
    return path


def _run(db: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_by_model_is_one_row_per_catalog_model(tmp_path: Path) -> None:
    db = _db(tmp_path)
    rows = json.loads(_run(db, "report", "--by", "model", "--json"))
    by_name = {r["model"]: r for r in rows}
    assert set(by_name) == {"gpt-4o-mini", "acme-experimental-1"}
    assert by_name["gpt-4o-mini"]["calls"] == 3
    # 3 x (1,000 x 0.15 + 100 x 0.60) = 3 x 210 per 1M = $0.00063
    assert Decimal(by_name["gpt-4o-mini"]["cost"]) == Decimal("0.00063")
    text = _run(db, "report")
    assert sum(line.startswith("gpt-4o-mini ") for line in text.splitlines()) == 1


def test_by_model_version_keeps_the_names_as_reported(tmp_path: Path) -> None:
    db = _db(tmp_path)
    rows = json.loads(_run(db, "report", "--by", "model_version", "--json"))
    assert {r["model_version"] for r in rows} == {
        "gpt-4o-mini",
        "gpt-4o-mini-2024-07-18",
        "openai/gpt-4o-mini",
        "acme-experimental-1",
    }
    text = _run(db, "report", "--by", "model_version")
    assert any(line.startswith("gpt-4o-mini-2024-07-18 ") for line in text.splitlines())


def test_model_filter_matches_the_catalog_model(tmp_path: Path) -> None:
    db = _db(tmp_path)
    rows = json.loads(_run(db, "report", "--model", "gpt-4o-mini", "--json"))
    assert rows[0]["calls"] == 3


def test_the_default_report_lists_the_reported_names_one_level_down(tmp_path: Path) -> None:
    text = _run(_db(tmp_path), "report")
    assert (
        "  gpt-4o-mini was reported as: gpt-4o-mini (1), gpt-4o-mini-2024-07-18 (1), "
        "openai/gpt-4o-mini (1)"
    ) in text
    assert "acme-experimental-1 was reported as" not in text  # one name: nothing to say
