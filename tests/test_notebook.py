"""notebooks/usage_analysis.ipynb runs top to bottom in an empty directory."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


def _builder() -> object:
    spec = importlib.util.spec_from_file_location("build_notebook", NOTEBOOKS / "build_notebook.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebook_runs_in_an_empty_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last cell opens "your own" database: here, the one the notebook wrote.
    monkeypatch.setenv("TOKENTRAIL_DB", str(tmp_path / "usage_demo.duckdb"))
    nb = nbformat.read(NOTEBOOKS / "usage_analysis.ipynb", as_version=4)
    _builder().execute(nb, tmp_path, timeout=300)  # type: ignore[attr-defined]
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 5  # one chart per plotting cell, none shown twice
    text = "".join(o.get("text", "") for o in outputs)
    assert "calls written to usage_demo.duckdb" in text
    assert "run rate" in text  # the forecast states its method
    assert (tmp_path / "usage_demo.duckdb").exists()
    tables = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert not re.search(r"\d,\d{3}\.0000", tables), "token counts shown with decimals"
    assert "NaN" not in tables and "(all)" in tables  # a global budget's key
    assert re.search(r">\d+\.\d%<", tables)  # shares as percent
    assert "Your own data" in "".join(c.source for c in nb.cells)
    assert "No database at" not in text  # the last cell found TOKENTRAIL_DB's file


def test_committed_notebook_has_outputs_and_matches_its_source() -> None:
    nb = nbformat.read(NOTEBOOKS / "usage_analysis.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    shown = [c for c in code[1:] if c.source != "tracker.close()"]
    assert all(c.outputs for c in shown), "run notebooks/build_notebook.py --execute"
    built = _builder().build()  # type: ignore[attr-defined]
    assert [c.source for c in nb.cells] == [c.source for c in built.cells]
