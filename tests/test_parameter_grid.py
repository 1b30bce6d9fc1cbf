"""Every notebook refuses a parameter outside its allowed values in the cell after its
``parameters`` cell, and runs, at its small budget, with the allowed image sizes (papermill).

The refusals run in the fast tier (each notebook stops after its imports). The grid trains at
the small budget, so it runs in ``make verify``: every allowed ``IMAGE_SIZE`` of 01 and 02 (the
sizes that once broke 01 among them), and the smallest, the default and the largest of the
notebooks that train at that size (03, 07, 08).
"""

from __future__ import annotations

import ast
import glob

import nbformat
import papermill
import pytest

from helpers import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"
# A value each notebook must refuse, and the words of the refusal.
REFUSED = {
    "01": ("IMAGE_SIZE", 40, "IMAGE_SIZE must be a multiple of 16 from 32 to 224, not 40"),
    "02": ("BATCH_SIZE", 0, "BATCH_SIZE must be an integer from 1 to 64, not 0"),
    "03": ("IMAGE_SIZE", 72, "IMAGE_SIZE must be a multiple of 16 from 32 to 224, or None"),
    "04": ("BAND_WIDTH", 0, "BAND_WIDTH must be an integer from 1 to 8, not 0"),
    "05": ("TARGET_MEAN_IOU", 35, "TARGET_MEAN_IOU must be a number between 0 and 1, not 35"),
    "06": ("OVERLAP", 64, "OVERLAP must be an integer from 0 to 48, not 64"),
    "07": ("IMAGE_SIZE", 100, "IMAGE_SIZE must be one of 96, 128, 160, 224, not 100"),
    "08": ("GLOBAL_BATCH", 9, "GLOBAL_BATCH must be a multiple of 2 from 2 to 64, not 9"),
}
GRID = {
    "01": range(32, 225, 16),
    "02": range(32, 225, 16),
    "03": (32, 64, 224),
    "07": (96, 128, 224),
    "08": (32, 128),
}


def _notebook(number: str):
    (path,) = glob.glob(str(NOTEBOOKS / f"{number}_*.ipynb"))
    return nbformat.read(path, as_version=4), path


def _small_budget(number: str) -> dict:
    notebook, _ = _notebook(number)
    budget = notebook.metadata.get("small_budget", {})
    values = {name: ast.literal_eval(value) for name, value in budget.items()}
    # papermill writes a tuple as the string of its repr: pass lists (the checks allow both)
    return {name: list(v) if isinstance(v, tuple) else v for name, v in values.items()}


def _execute(number: str, tmp_path, values: dict) -> None:
    _, path = _notebook(number)
    papermill.execute_notebook(
        path,
        str(tmp_path / f"{number}.ipynb"),
        parameters=values,
        cwd=str(NOTEBOOKS),
        progress_bar=False,
        kernel_name="python3",
    )


@pytest.mark.parametrize("number", sorted(REFUSED))
def test_a_value_outside_the_allowed_ones_stops_the_first_cell(number, tmp_path):
    name, value, message = REFUSED[number]
    with pytest.raises(papermill.PapermillExecutionError) as error:
        _execute(number, tmp_path, {name: value})
    assert error.value.ename == "ParameterError"
    assert message in error.value.evalue
    # the cell that stopped is the check right after the parameters papermill injected
    cells = nbformat.read(tmp_path / f"{number}.ipynb", as_version=4).cells
    executed = [cell for cell in cells if "papermill-error-cell" not in cell.source]  # its banner
    tags = [cell.metadata.get("tags", []) for cell in executed]
    injected = next(i for i, cell_tags in enumerate(tags) if "injected-parameters" in cell_tags)
    assert executed[injected + 1].source == error.value.source
    assert error.value.source.startswith("# extra code – stop here, naming the fix")


@pytest.mark.slow  # trains at the small budget: make verify
@pytest.mark.parametrize(
    ("number", "size"), [(number, size) for number, sizes in GRID.items() for size in sizes]
)
def test_every_allowed_image_size_runs_at_the_small_budget(number, size, tmp_path):
    _execute(number, tmp_path, {**_small_budget(number), "IMAGE_SIZE": size})
