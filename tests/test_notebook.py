"""notebooks/usage_analysis.ipynb runs top to bottom in an empty directory."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


def _builder() -> object:
    spec = importlib.util.spec_from_file_location("build_notebook", NOTEBOOKS / "build_notebook.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebook_runs_in_an_empty_directory(tmp_path: Path) -> None:
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


def test_committed_notebook_has_outputs_and_matches_its_source() -> None:
    nb = nbformat.read(NOTEBOOKS / "usage_analysis.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs for c in code[1:-1]), "run notebooks/build_notebook.py --execute"
    built = _builder().build()  # type: ignore[attr-defined]
    assert [c.source for c in nb.cells] == [c.source for c in built.cells]
