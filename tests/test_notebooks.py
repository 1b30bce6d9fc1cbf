"""The notebooks' structure: one `parameters` cell each (papermill), every parameter used; the
format JupyterLab writes."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nbformat
import pytest

from tools import notebook_format, records

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("[0-9]*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_one_parameters_cell_whose_every_parameter_is_used(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    tagged = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters', not 1"
    names = list(records.parameters(notebook))  # the names the tagged cell assigns
    assert names, f"{path.name}: the parameters cell assigns nothing"
    rest = "\n".join(cell.source for cell in code if cell is not tagged[0])
    unused = [name for name in names if not re.search(rf"\b{name}\b", rest)]
    assert not unused, f"{path.name}: parameters never used: {unused}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_stored_as_jupyterlab_writes_it(path):
    """Opening and saving a notebook in JupyterLab changes nothing (issue 17): nbformat's own
    serialisation (sorted keys, one-space indent), ipykernel's kernelspec, only the metadata
    the course uses, and execution counts of one top-to-bottom run."""
    text = path.read_text(encoding="utf-8")
    notebook = nbformat.reads(text, as_version=4)
    assert text == nbformat.writes(notebook) + "\n", "run `make tidy`"
    assert notebook.metadata.kernelspec == notebook_format.KERNELSPEC
    assert set(notebook.metadata) <= set(notebook_format.NOTEBOOK_METADATA)
    assert all(set(cell.metadata) <= {"tags"} for cell in notebook.cells)
    counts = [cell.execution_count for cell in notebook.cells if cell.cell_type == "code"]
    ran = [count for count in counts if count is not None]
    assert ran == list(range(1, len(ran) + 1)), "outputs of one run, top to bottom"


@pytest.mark.slow  # over 10 s: make verify
def test_papermill_parameters_take_effect(tmp_path):
    """`papermill -p` replaces the tagged parameters cell's values (issue 17): notebook 01 run
    with a smaller image size and batch prints batches of that shape."""
    papermill = pytest.importorskip("papermill")
    source = next(path for path in NOTEBOOKS if path.stem == "01_preprocessing")
    executed = tmp_path / source.name
    papermill.execute_notebook(
        str(source),
        str(executed),
        parameters={"IMAGE_SIZE": 32, "BATCH_SIZE": 8},
        cwd=str(source.parent),
        kernel_name="python3",
        progress_bar=False,
    )
    printed = "".join(
        output.get("text", "")
        for cell in nbformat.read(executed, as_version=4).cells
        for output in cell.get("outputs", [])
    )
    assert "images: (8, 32, 32, 3)" in printed
    assert "images: (16, 64, 64, 3)" not in printed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_figures_are_stored_by_the_figure_policy(path):
    """A notebook saved from JupyterLab after a run holds full-colour PNGs (issue 38: 02 grew
    from 155 to 450 KB); `make tidy` applies the policy, and applying it again changes nothing."""
    notebook = nbformat.read(path, as_version=4)
    untidy = [
        index
        for index, cell in enumerate(notebook.cells)
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
        and notebook_format.shrink_png(base64.b64decode(output["data"]["image/png"]))
        != base64.b64decode(output["data"]["image/png"])
    ]
    assert not untidy, f"{path.name}: figures of cells {untidy} are not tidy: run `make tidy`"
