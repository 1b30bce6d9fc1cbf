"""tools/make_student.py: student copies without outputs or solutions, and the zip to hand out."""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tools import make_student

NOTEBOOKS = sorted(make_student.NOTEBOOKS.glob("[0-9]*.ipynb"))
FAST_NOTEBOOKS = ("01_preprocessing.ipynb", "02_softmax.ipynb")
CODE_SPAN = re.compile(r"`([^`\n]{12,})`")


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> tuple[Path, Path]:
    """The student folder and zip, built once from the real notebooks into a temporary folder."""
    return make_student.build(tmp_path_factory.mktemp("build"), NOTEBOOKS)


def solution_strings(notebook: nbformat.NotebookNode) -> list[str]:
    """Code quoted in the solutions block and nowhere else in the notebook."""
    solutions = [cell for cell in notebook.cells if make_student.is_solution_cell(cell)]
    rest = "\n".join(
        cell.source for cell in notebook.cells if not make_student.is_solution_cell(cell)
    )
    quoted = [span for cell in solutions for span in CODE_SPAN.findall(cell.source)]
    return [span for span in quoted if span not in rest]


def tags(notebook: nbformat.NotebookNode) -> list[list[str]]:
    """The tags of every code cell, in order."""
    return [cell.metadata.get("tags", []) for cell in notebook.cells if cell.cell_type == "code"]


def test_every_notebook_has_a_student_copy_and_notebooks_is_untouched(student):
    folder, _ = student
    assert NOTEBOOKS, "no course notebooks found"
    copies = sorted(path.name for path in (folder / "notebooks").glob("*.ipynb"))
    assert copies == [path.name for path in NOTEBOOKS]
    assert folder.resolve() != make_student.NOTEBOOKS.parent.resolve()


@pytest.mark.parametrize("original", NOTEBOOKS, ids=lambda path: path.stem)
def test_student_copy_has_no_solutions_and_no_outputs_but_keeps_exercises_and_tags(
    student, original
):
    folder, _ = student
    source = nbformat.read(original, as_version=4)
    copy = nbformat.read(folder / "notebooks" / original.name, as_version=4)
    text = nbformat.writes(copy)

    assert make_student.SOLUTIONS_MARKER not in text
    hidden = solution_strings(source)
    assert hidden, f"{original.name}: no solution text to look for; is the marker still used?"
    left = [answer for answer in hidden if answer in text]
    assert not left, f"{original.name}: solution text left in the student copy: {left}"

    code = [cell for cell in copy.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert tags(copy) == tags(source), "code cells and their tags are kept, in order"
    assert sum("# self-check" in cell.source for cell in code) == sum(
        "# self-check" in cell.source for cell in source.cells
    ), "every self-check cell stays"
    assert "execution_record" not in copy.metadata, "no record of outputs the copy has not"
    source.metadata.pop("execution_record", None)
    assert copy.metadata == source.metadata, "kernel and Colab metadata are kept"


def test_zip_holds_every_student_notebook_and_what_it_needs_to_run(student):
    folder, archive = student
    with zipfile.ZipFile(archive) as bundle:
        names = set(bundle.namelist())
    top = make_student.ZIP_TOP_FOLDER
    for path in NOTEBOOKS:
        assert f"{top}/notebooks/{path.name}" in names
    for name in (*make_student.BUNDLED_FILES, "STUDENT.md", "helpers/__init__.py"):
        assert f"{top}/{name}" in names
    assert not any("__pycache__" in name for name in names)
    packed = {name.removeprefix(f"{top}/") for name in names}
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert packed == on_disk - {make_student.MADE_HERE}, "the zip is the student folder"


@pytest.mark.parametrize("name", FAST_NOTEBOOKS)
def test_fast_student_notebooks_run_top_to_bottom_and_ask_to_fill_in(student, name):
    """Only 01 and 02 execute here: together they run in well under a minute, while the others
    train models for minutes each on 2 cores, beyond the suite's time budget. The full notebooks
    are executed by nbval already, and the student copies differ only by removed markdown and
    cleared outputs, so 01 and 02 show that the blank exercises do not break a run."""
    folder, _ = student
    path = folder / "notebooks" / name
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    checks = [cell for cell in notebook.cells if cell.source.startswith("# self-check")]
    assert checks, f"{name} has no self-check cells"
    for cell in checks:
        printed = "".join(output.get("text", "") for output in cell.outputs)
        assert printed.startswith("Fill in"), f"{name}: self-check printed {printed!r}"


def test_a_student_folder_the_tool_did_not_make_is_never_deleted(tmp_path, capsys, monkeypatch):
    """Issue 37: `make_student --output-dir D` deleted D/student/ whether or not it made it."""
    mine = tmp_path / "student" / "my_notes.txt"
    mine.parent.mkdir()
    mine.write_text("a user's file")
    with pytest.raises(make_student.StudentFolderError, match="was not made by `make student`"):
        make_student.build(tmp_path, NOTEBOOKS[:1])
    assert mine.read_text() == "a user's file"
    monkeypatch.setattr(sys, "argv", ["make_student.py", "--output-dir", str(tmp_path)])
    assert make_student.main() == 2
    assert "Move it away or choose another --output-dir" in capsys.readouterr().err
    assert mine.is_file()


def test_a_student_folder_the_tool_made_is_replaced_and_its_mark_stays_out_of_the_zip(tmp_path):
    folder, archive = make_student.build(tmp_path, NOTEBOOKS[:1])
    (folder / "stale.txt").write_text("left by an earlier build")
    folder, archive = make_student.build(tmp_path, NOTEBOOKS[:1])
    assert not (folder / "stale.txt").exists() and (folder / make_student.MADE_HERE).is_file()
    with zipfile.ZipFile(archive) as bundle:
        assert not any(name.endswith(make_student.MADE_HERE) for name in bundle.namelist())
