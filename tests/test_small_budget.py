"""tools/small_budget.py: the notebooks' small-budget copies that `make test` executes with nbval
— overrides injected after the parameters cell, budget-dependent outputs not compared, and a
broken cell failing the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tools import small_budget

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9]*.ipynb"))


def lesson(*cells: tuple[str, str, list[str]], budget: dict | None = None):
    """A notebook of (source, committed output, tags) code cells, with a parameters cell."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    if budget is not None:
        notebook.metadata[small_budget.METADATA_KEY] = budget
    parameters = nbformat.v4.new_code_cell("STEPS = 100  # the lesson's budget", execution_count=1)
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters]
    for count, (source, printed, tags) in enumerate(cells, 2):
        cell = nbformat.v4.new_code_cell(source, execution_count=count)
        if printed:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
        if tags:
            cell.metadata["tags"] = tags
        notebook.cells.append(cell)
    return notebook


CHECKS = ("print(2 + 2)", "4\n", [])
SCORE = ("print(f'score after {STEPS} steps')", "score after 100 steps\n", ["depends-on-budget"])


def run_small_budget(
    tmp_path: Path, notebook: nbformat.NotebookNode
) -> subprocess.CompletedProcess:
    """Write the notebook's small-budget copy and execute it with nbval, as `make test` does."""
    copy = tmp_path / "copy" / "01_lesson.ipynb"
    copy.parent.mkdir()
    nbformat.write(small_budget.small_budget_copy(notebook, "01_lesson.ipynb"), copy)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-o",
            "addopts=",
            "-p",
            "no:cacheprovider",
            "--nbval",
            str(copy),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_copy_runs_at_the_small_budget_and_compares_only_what_the_budget_leaves_alone(tmp_path):
    notebook = lesson(CHECKS, SCORE, ("assert STEPS == 2", "", []), budget={"STEPS": "2"})
    result = run_small_budget(tmp_path, notebook)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "5 passed" in result.stdout  # parameters, injected values, and the three cells


def test_a_broken_cell_fails_the_small_budget_run(tmp_path):
    notebook = lesson(CHECKS, ("1 / 0", "", []), budget={"STEPS": "2"})
    result = run_small_budget(tmp_path, notebook)
    assert result.returncode == 1 and "ZeroDivisionError" in result.stdout


def test_an_untagged_output_that_the_budget_changes_fails_the_run(tmp_path):
    untagged = (SCORE[0], SCORE[1], [])
    result = run_small_budget(tmp_path, lesson(CHECKS, untagged, budget={"STEPS": "2"}))
    assert result.returncode == 1 and "score after 2 steps" in result.stdout


def test_the_injected_cell_follows_the_parameters_cell_and_nothing_else_changes():
    notebook = lesson(CHECKS, SCORE, budget={"STEPS": "2"})
    copy = small_budget.small_budget_copy(notebook, "lesson")
    assert [cell.source for cell in copy.cells] == [
        notebook.cells[0].source,
        "# The small test budget (notebook metadata 'small_budget')\nSTEPS = 2",
        CHECKS[0],
        SCORE[0],
    ]
    assert copy.cells[1].metadata.tags == ["injected-parameters"]
    assert copy.cells[3].metadata.tags == ["depends-on-budget", "nbval-ignore-output"]
    assert "nbval-ignore-output" not in notebook.cells[2].metadata.get("tags", [])


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        (None, "no 'small_budget' in the notebook's metadata"),
        ({"EPOCHS": "2"}, "sets ['EPOCHS'], not in its parameters cell"),
        ({"STEPS": "two"}, "not a Python literal"),
    ],
)
def test_a_declaration_that_does_not_fit_the_parameters_is_refused(budget, message):
    with pytest.raises(small_budget.BudgetError, match=message.replace("[", r"\[")):
        small_budget.small_budget_copy(lesson(CHECKS, budget=budget), "lesson")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_notebook_declares_a_small_budget_that_fits_its_parameters(path):
    notebook = nbformat.read(path, as_version=4)
    small_budget.small_budget_copy(notebook, path.name)


def test_notebook_numbers_choose_the_copies(tmp_path):
    chosen = small_budget.notebook_paths(["03", "04"])
    assert [path.name[:2] for path in chosen] == ["03", "04"]
    with pytest.raises(small_budget.BudgetError, match="no notebook numbered"):
        small_budget.notebook_paths(["99"])
    written = small_budget.write_copies(tmp_path / "copies", chosen)
    assert [path.name for path in written] == [path.name for path in chosen]
