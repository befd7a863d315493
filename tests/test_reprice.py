"""``tokentrail reprice`` / ``store.reprice.reprice``, and registered prices across processes.

Prices (USD per 1M tokens): the registered "my-finetune" is input 3, output 12 (the
issue's example); gpt-4o-mini is input 0.15, output 0.60 (https://openai.com/api/pricing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from tokentrail import Tracker, pricing
from tokentrail.cli import cli
from tokentrail.store.reprice import AUDIT_TABLE, reprice

# 1,000 input + 100 output at 3 / 12 per 1M: 3,000 + 1,200 = 4,200 per 1M -> $0.0042.
_FINETUNE = Decimal("0.0042")
# The same counts of gpt-4o-mini: 150 + 60 = 210 per 1M -> $0.00021.
_MINI = Decimal("0.00021")
_COUNTS = {"input_tokens": 1000, "output_tokens": 100}


@pytest.fixture(autouse=True)
def _no_overrides() -> Iterator[None]:
    pricing.clear_overrides()
    yield
    pricing.clear_overrides()


def _record(db: Path, *models: str) -> None:
    with Tracker(db) as tracker:
        for model in models:
            tracker.record(model=model, provider="openai", usage=_COUNTS)


def _costs(db: Path) -> dict[str, tuple[Decimal | None, str | None]]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT model, total_cost, cost_source FROM usage").fetchall()
    return {m: (c, s) for m, c, s in rows}


def test_reprice_prices_unpriced_rows_and_keeps_the_old_figure(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    _record(db, "my-finetune", "gpt-4o-mini")
    assert _costs(db)["my-finetune"] == (None, None)
    pricing.register("my-finetune", provider="openai", input="3", output="12")

    preview = reprice(db, dry_run=True)
    assert (preview["rows"], preview["changed"]) == (1, 1)  # the priced row is not examined
    assert preview["models"]["my-finetune"]["after"] == _FINETUNE
    assert _costs(db)["my-finetune"] == (None, None)

    done = reprice(db)
    assert done["changed"] == 1
    assert _costs(db) == {
        "my-finetune": (_FINETUNE, "override"),
        "gpt-4o-mini": (_MINI, "catalog"),
    }
    with duckdb.connect(str(db), read_only=True) as con:
        audit = con.execute(
            f"SELECT old_total_cost, new_total_cost, new_priced_model FROM {AUDIT_TABLE}"
        ).fetchall()
    assert audit == [(None, _FINETUNE, "my-finetune")]
    assert reprice(db)["rows"] == 0  # nothing unpriced is left


def test_all_rows_reprices_priced_rows_in_the_range_only(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    _record(db, "gpt-4o-mini")
    pricing.register("gpt-4o-mini", input="1.5", output="6")  # ten times the catalog
    assert reprice(db)["rows"] == 0  # default: unpriced rows only
    assert reprice(db, all_rows=True, since=_far_future())["rows"] == 0
    done = reprice(db, all_rows=True)
    assert done["models"]["gpt-4o-mini"]["before"] == _MINI
    assert done["models"]["gpt-4o-mini"]["after"] == _MINI * 10
    assert _costs(db)["gpt-4o-mini"] == (_MINI * 10, "override")


def _far_future() -> object:
    from datetime import datetime, timezone

    return datetime(2100, 1, 1, tzinfo=timezone.utc)


def test_cli_dry_run_prints_before_and_after_per_model(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    _record(db, "my-finetune")
    pricing.register("my-finetune", provider="openai", input="3", output="12")
    runner = CliRunner()
    text = runner.invoke(cli, ["--db", str(db), "reprice", "--dry-run"], catch_exceptions=False)
    assert text.exit_code == 0, text.output
    assert "would change 1" in text.output
    line = next(x for x in text.output.splitlines() if x.startswith("my-finetune"))
    assert "(1 unpriced before)" in line and "$0.0042" in line
    out = runner.invoke(cli, ["--db", str(db), "reprice", "--dry-run", "--json"])
    data = json.loads(out.output)
    assert Decimal(data["models"]["my-finetune"]["after"]) == _FINETUNE
    assert _costs(db)["my-finetune"] == (None, None)


PRICE_FILE = """\
catalog_version: mine-1
units: USD per 1M tokens
provider: {id: openai, name: OpenAI}
models:
  - id: my-finetune
    prices: {input: "3", output: "12"}
"""


def _cli(
    db: Path, *args: str, pricing_file: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TOKENTRAIL_PRICING"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    if pricing_file is not None:
        env["TOKENTRAIL_PRICING"] = str(pricing_file)
    code = "import sys; from tokentrail.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, "--db", str(db), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_a_pricing_file_reaches_the_cli_in_another_process(tmp_path: Path) -> None:
    db = tmp_path / "usage.duckdb"
    _record(db, "my-finetune")
    prices = tmp_path / "prices.yaml"
    prices.write_text(PRICE_FILE)
    price = _cli(db, "price", "my-finetune", "--input", "1000", "--output", "100", "--json",
                 pricing_file=prices)  # fmt: skip
    assert price.returncode == 0, price.stderr
    assert Decimal(json.loads(price.stdout)["total"]) == _FINETUNE
    done = _cli(db, "reprice", "--json", pricing_file=prices)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changed"] == 1
    assert _costs(db)["my-finetune"] == (_FINETUNE, "override")


def test_reports_in_another_process_read_stored_costs(tmp_path: Path) -> None:
    """Priced in this process by a registered price; the report process knows no such
    price, yet shows the stored cost and never says "no price known"."""
    db = tmp_path / "usage.duckdb"
    pricing.register("my-finetune", provider="openai", input="3", output="12")
    _record(db, "my-finetune")
    with Tracker(db) as tracker:  # cached input: the report's cache savings look it up
        tracker.record(
            model="my-finetune",
            provider="openai",
            usage={"input_tokens": 1000, "cache_read_tokens": 1000},
        )
    assert _costs(db)["my-finetune"][0] is not None
    for args in (["report"], ["report", "--by", "model", "--json"], ["html", "-o", "r.html"]):
        shown = (
            _cli(db, *args)
            if args[0] != "html"
            else _cli(db, "html", "-o", str(tmp_path / "r.html"))
        )
        assert shown.returncode == 0, shown.stderr
        assert "no price known" not in shown.stderr + shown.stdout
    text = _cli(db, "report").stdout
    # 0.0042 + 1,000 cached tokens at the registered input price (no cache price given):
    # 1,000 x 3 per 1M = 0.003 -> 0.0072
    assert "Spend          $0.0072" in text


def test_reprice_on_postgresql(pg_url: str) -> None:
    from tokentrail.store.paths import PostgresUrl
    from tokentrail.store.postgres_reading import reading_postgres

    with Tracker(pg_url) as tracker:
        tracker.record(model="my-finetune", provider="openai", usage=_COUNTS)
        tracker.record(model="gpt-4o-mini", provider="openai", usage=_COUNTS)
    pricing.register("my-finetune", provider="openai", input="3", output="12")
    url = PostgresUrl(pg_url)
    assert reprice(url, dry_run=True)["changed"] == 1
    out = CliRunner().invoke(cli, ["--db", pg_url, "reprice", "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["changed"] == 1
    with reading_postgres(url) as con:
        costs = dict(con.execute("SELECT model, total_cost FROM usage").fetchall())
        audit = con.execute(f"SELECT old_total_cost, new_total_cost FROM {AUDIT_TABLE}").fetchall()
    assert costs == {"my-finetune": _FINETUNE, "gpt-4o-mini": _MINI}
    assert audit == [(None, _FINETUNE)]


def test_tracker_reprice_flushes_then_prices_unpriced_rows(tmp_path: Path) -> None:
    """``tracker.reprice`` on an open tracker: records still in its writer are stored and
    repriced; a dry run changes nothing; the result is the same summary the CLI prints."""
    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        tracker.record(model="my-finetune", provider="openai", usage=_COUNTS)
        tracker.record(model="gpt-4o-mini", provider="openai", usage=_COUNTS)
        pricing.register("my-finetune", provider="openai", input="3", output="12")
        preview = tracker.reprice(dry_run=True)
        assert (preview["dry_run"], preview["rows"], preview["changed"]) == (True, 1, 1)
        assert preview["models"]["my-finetune"]["after"] == _FINETUNE
        assert preview["models"]["my-finetune"]["unpriced_before"] == 1
        done = tracker.reprice()
        assert (done["dry_run"], done["changed"], done["still_unpriced"]) == (False, 1, 0)
        assert tracker.reprice()["rows"] == 0  # nothing unpriced is left
        again = tracker.reprice(all_rows=True, dry_run=True)
        assert (again["rows"], again["changed"]) == (2, 0)
    assert _costs(db) == {"my-finetune": (_FINETUNE, "override"), "gpt-4o-mini": (_MINI, "catalog")}


def test_tracker_reprice_on_postgresql(pg_url: str) -> None:
    from tokentrail.store.paths import PostgresUrl
    from tokentrail.store.postgres_reading import reading_postgres

    with Tracker(pg_url) as tracker:
        tracker.record(model="my-finetune", provider="openai", usage=_COUNTS)
        pricing.register("my-finetune", provider="openai", input="3", output="12")
        assert tracker.reprice()["changed"] == 1
    with reading_postgres(PostgresUrl(pg_url)) as con:
        costs = dict(con.execute("SELECT model, total_cost FROM usage").fetchall())
    assert costs == {"my-finetune": _FINETUNE}
