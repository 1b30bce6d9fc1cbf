"""The helpers modules import one another without a cycle (lazy imports inside functions too)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

from helpers import REPO_ROOT
from tools.records import PACKAGE, imported_modules


def import_graph(package: Path) -> dict[str, set[str]]:
    """Each module of ``package`` (its ``__init__`` left out) -> the package modules it imports."""
    modules = {path.stem: path for path in package.glob("*.py") if path.stem != "__init__"}
    graph = {}
    for name, path in modules.items():
        dotted = imported_modules(ast.parse(path.read_text(encoding="utf-8")))
        imported = {d.split(".")[1] for d in dotted if d.startswith(f"{PACKAGE}.")}
        graph[name] = (imported & modules.keys()) - {name}
    return graph


def assert_acyclic(graph: dict[str, set[str]]) -> None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        raise AssertionError(
            f"helpers modules import each other in a circle: {error.args[1]}"
        ) from None


def test_helpers_modules_import_each_other_without_a_cycle():
    graph = import_graph(REPO_ROOT / PACKAGE)
    assert graph["layout"] == set(), "the layout contract imports no other helpers module"
    assert_acyclic(graph)


def test_a_cycle_through_a_lazy_import_is_found(tmp_path):
    (tmp_path / "a.py").write_text("from helpers.b import f\n")
    (tmp_path / "b.py").write_text("def f():\n    from helpers import a\n")
    with pytest.raises(AssertionError, match="in a circle"):
        assert_acyclic(import_graph(tmp_path))
