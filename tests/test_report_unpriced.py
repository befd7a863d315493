"""Reports over calls to a model without a price: the cost is unknown, not $0."""

from __future__ import annotations

from pathlib import Path


def test_report_shows_no_dollar_figure_for_a_model_without_a_price(tmp_path: Path) -> None:
    """A model whose calls are all unpriced has an unknown cost, not $0.00."""
    from click.testing import CliRunner

    from tokentrail import Tracker
    from tokentrail.cli import cli

    db = tmp_path / "usage.duckdb"
    with Tracker(db) as tracker:
        tracker.record(
            model="gpt-4o", provider="openai", usage={"input_tokens": 1000, "output_tokens": 10}
        )
        tracker.record(
            model="no-such-model-xyz",
            provider="openai",
            usage={"input_tokens": 1000, "output_tokens": 10},
        )
    for args in (["report"], ["report", "--by", "model"], ["top", "--by", "model"]):
        result = CliRunner().invoke(cli, ["--db", str(db), *args])
        assert result.exit_code == 0, result.output
        line = next(x for x in result.output.splitlines() if x.startswith("no-such-model-xyz"))
        assert "$0" not in line, (args, line)
        assert "—" in line, (args, line)
        priced = next(x for x in result.output.splitlines() if x.startswith("gpt-4o "))
        assert "$" in priced, (args, priced)
