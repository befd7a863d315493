"""What the README tells people to install brings what its snippets import."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def extra_closure(extra: str) -> set[str]:
    """Every distribution ``pip install 'tokentrail[extra]'`` brings by name (not transitively)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    names = {_name(r) for r in project["dependencies"]}
    todo, seen = [extra], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for requirement in extras[current]:
            inner = re.fullmatch(r"tokentrail\[(.+)\]", requirement.strip())
            if inner:
                todo.extend(part.strip() for part in inner.group(1).split(","))
            else:
                names.add(_name(requirement))
    return names


def readme_imports() -> set[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    found = set()
    for block in blocks:
        found |= set(re.findall(r"^\s*from\s+([\w.]+)\s+import", block, flags=re.M))
        found |= set(re.findall(r"^\s*import\s+([\w.]+)", block, flags=re.M))
    return {name.split(".")[0] for name in found}


def test_the_all_extra_brings_every_package_the_readme_snippets_import() -> None:
    owners = importlib.metadata.packages_distributions()
    brought = extra_closure("all")
    imports = readme_imports() - {"tokentrail"}
    assert {"langchain_openai", "llama_index"} <= imports  # the snippets this test is about
    missing = {}
    for module in imports:
        dists = {d.lower().replace("_", "-") for d in owners.get(module, [])}
        assert dists, f"{module} is not installed in the test environment"
        if not dists & brought:
            missing[module] = sorted(dists)
    # llama_index is a namespace shared by several distributions: one of them is enough,
    # so check the snippet's own module (llama_index.llms.openai) separately.
    missing.pop("llama_index", None)
    assert not missing, f"README imports these, but tokentrail[all] does not bring them: {missing}"
    assert "llama-index-llms-openai" in brought and "langchain-openai" in brought


def test_the_all_extra_brings_jupyter_for_the_notebook() -> None:
    assert "jupyterlab" in extra_closure("all")
