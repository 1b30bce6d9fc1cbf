"""The notebooks' structure: one `parameters` cell each (papermill), every parameter used."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("[0-9]*.ipynb"))


def parameter_names(source: str) -> list[str]:
    """The names a parameters cell assigns."""
    return [
        target.id
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_one_parameters_cell_whose_every_parameter_is_used(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    tagged = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters', not 1"
    names = parameter_names(tagged[0].source)
    assert names, f"{path.name}: the parameters cell assigns nothing"
    rest = "\n".join(cell.source for cell in code if cell is not tagged[0])
    unused = [name for name in names if not re.search(rf"\b{name}\b", rest)]
    assert not unused, f"{path.name}: parameters never used: {unused}"
