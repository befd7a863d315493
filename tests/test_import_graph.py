"""No import cycles anywhere in ``src/tokentrail``.

The graph is read from the source with ``ast``: every ``import`` counts, at module level,
inside functions (lazy imports) and under ``if TYPE_CHECKING:`` alike, because a cycle
through any of them is still two modules that each need the other to be understood or
changed. (Importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``; those
implicit edges are not counted, or every package would be a cycle with its modules.)
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import tokentrail

_SRC = Path(tokentrail.__file__).resolve().parent.parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(_SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(module: str, path: Path, known: set[str]) -> Iterator[str]:
    """The ``tokentrail`` modules ``module`` imports (anywhere in its source)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # ``from pkg import mod`` imports the module ``pkg.mod``; anything else, ``pkg``.
            names = [
                f"{source}.{a.name}" if f"{source}.{a.name}" in known else source
                for a in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in known:  # ``import a.b.c`` of a name inside a module
                name = name.rpartition(".")[0]
            if name and name != module:
                yield name


def import_graph() -> dict[str, set[str]]:
    """Module -> the ``tokentrail`` modules it imports."""
    files = {_module_name(p): p for p in (_SRC / "tokentrail").rglob("*.py")}
    known = set(files)
    return {m: set(_imports(m, p, known)) for m, p in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_lazy_and_type_checking_imports() -> None:
    graph = import_graph()
    # tracker imports the LangChain integration inside a method and Analytics under
    # TYPE_CHECKING: both are edges.
    assert "tokentrail.integrations.langchain" in graph["tokentrail.tracker"]
    assert "tokentrail.analytics" in graph["tokentrail.tracker"]


def test_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles_in_src() -> None:
    graph = import_graph()
    found = cycles(graph)
    detail = [
        f"{' <-> '.join(c)}: " + "; ".join(f"{m} -> {sorted(graph[m] & set(c))}" for m in c)
        for c in found
    ]
    assert not found, "import cycles:\n" + "\n".join(detail)


def _imports_a_test_module(source: str) -> list[str]:
    """The ``tests.test_*`` modules a test file's source imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found += [n for n in names if n.startswith("tests.test_") or n.startswith("test_")]
    return found


def test_the_check_sees_an_import_of_a_test_module() -> None:
    assert _imports_a_test_module("from tests.test_postgres import _fill") == [
        "tests.test_postgres"
    ]
    assert _imports_a_test_module("from tests.store_helpers import make_record") == []


def test_tests_share_helpers_through_modules_not_other_tests() -> None:
    """Shared helpers live in ``conftest.py`` or a helpers module: a test module that
    imports another one runs (and breaks with) that module's tests and fixtures."""
    here = Path(__file__).resolve().parent
    offenders = {
        path.name: found
        for path in sorted(here.glob("*.py"))
        if (found := _imports_a_test_module(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}
