"""Every ``tokentrail`` failure is one line and a non-zero exit code; JSON with ``--json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokentrail.cli import main


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    code = done.value.code
    return (code if isinstance(code, int) else 0), out, err


def test_an_error_with_json_is_json_on_standard_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_main(capsys, "--db", str(tmp_path / "none.duckdb"), "report", "--json")
    assert code == 1
    error = json.loads(out)
    assert error["exit_code"] == 1 and "no tokentrail database at" in error["error"]


def test_a_usage_error_with_json_keeps_its_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_main(capsys, "price", "gpt-4o", "--at", "not-a-date", "--json")
    assert code == 2 and json.loads(out)["exit_code"] == 2


def test_an_unexpected_failure_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokentrail.cli import pricing

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("the catalog could not be read\nsecond line")

    monkeypatch.setattr("tokentrail.pricing.default_pricer", broken)
    assert pricing is not None
    code, out, err = run_main(capsys, "models")
    assert code == 1
    assert err.strip() == "Error: RuntimeError: the catalog could not be read"
    assert "Traceback" not in out + err


def test_success_returns_normally(capsys: pytest.CaptureFixture[str]) -> None:
    main(["price", "gpt-4o-mini", "--input", "10", "--json"])  # the script exits 0
    assert "total" in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("db", ["mysql://me@db/usage", "sqlite:///usage.db", "duckdb://x"])
def test_a_database_url_of_another_kind_is_refused_by_name(
    db: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Read as a path, "mysql://me@db/usage" made a folder "mysql:" and stored there.
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(capsys, "--db", db, "report")
    scheme = db.split("://")[0]
    assert code == 1
    assert err.strip() == (
        f"Error: {scheme}:// databases are not supported: give a DuckDB file path or a "
        "postgresql:// URL"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_tracker_on_a_database_url_of_another_kind_says_why(tmp_path: Path) -> None:
    from tokentrail import Tracker
    from tokentrail.errors import StoreError

    with pytest.raises(StoreError, match="mysql:// databases are not supported"):
        Tracker("mysql://me@db/usage")
