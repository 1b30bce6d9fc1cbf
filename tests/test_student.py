"""tools/make_student.py: student copies without outputs or solutions, the zip to hand out with
its own README and Makefile, and the Colab bundles (the instructor's and the students')."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from solution_text import notebook_words, self_checks, solution_lines, words

from tools import make_student
from tools.notebook_format import SOLUTIONS_MARKER, is_solution_cell

NOTEBOOKS = sorted(make_student.NOTEBOOKS.glob("[0-9]*.ipynb"))
FAST_NOTEBOOKS = ("01_preprocessing.ipynb", "02_softmax.ipynb")
CODE_SPAN = re.compile(r"`([^`\n]{12,})`")


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> tuple[Path, Path]:
    """The student folder and zip, built once from the real notebooks into a temporary folder."""
    return make_student.build(tmp_path_factory.mktemp("build"), NOTEBOOKS)


def solution_strings(notebook: nbformat.NotebookNode) -> list[str]:
    """Code quoted in the solutions block and nowhere else in the notebook."""
    solutions = [cell for cell in notebook.cells if is_solution_cell(cell)]
    rest = "\n".join(cell.source for cell in notebook.cells if not is_solution_cell(cell))
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

    assert SOLUTIONS_MARKER not in text
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
    for name in (*make_student.BUNDLED_FILES, "README.md", "Makefile", "helpers/__init__.py"):
        assert f"{top}/{name}" in names
    for bundled in make_student.BUNDLED_FOLDERS:  # helpers, the photos and weights 03-07 read
        assert any(name.startswith(f"{top}/{bundled}/") for name in names), bundled
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
    written = (folder / make_student.MADE_HERE).read_text().splitlines()
    assert "notebooks/" + NOTEBOOKS[0].name in written and "helpers/training.py" in written
    (folder / "helpers" / "training.py").write_text("# an older build's copy")  # one it wrote
    folder, archive = make_student.build(tmp_path, NOTEBOOKS[:1])
    assert "an older build" not in (folder / "helpers" / "training.py").read_text()
    with zipfile.ZipFile(archive) as bundle:
        assert not any(name.endswith(make_student.MADE_HERE) for name in bundle.namelist())


def test_a_users_file_inside_a_folder_the_tool_made_is_never_deleted(tmp_path):
    folder, _ = make_student.build(tmp_path, NOTEBOOKS[:1])
    mine = folder / "notebooks" / "my_answers.ipynb"
    mine.write_text("{}")
    with pytest.raises(make_student.StudentFolderError, match=r"1 file\(s\) that .* did not write"):
        make_student.build(tmp_path, NOTEBOOKS[:1])
    assert mine.read_text() == "{}" and (folder / "notebooks" / NOTEBOOKS[0].name).is_file()


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "does not exist"),
        ("not json", "is not a Jupyter notebook"),
        ("other marker", "looks like solutions but does not begin with"),
        ("output is a file", "is a file: pass a folder"),
        ("input inside output", "the folder this build replaces"),
    ],
)
def test_bad_inputs_are_refused_before_anything_is_written(
    tmp_path, capsys, monkeypatch, case, message
):
    output, notebook = tmp_path / "out", tmp_path / "09_mine.ipynb"
    if case == "not json":
        notebook.write_text("not a notebook")
    elif case == "other marker":
        mine = nbformat.v4.new_notebook()
        mine.cells = [nbformat.v4.new_markdown_cell("<details><summary>Solution</summary>\n1.")]
        nbformat.write(mine, notebook)
    elif case == "output is a file":
        shutil.copy(NOTEBOOKS[0], notebook)
        output.write_text("a file")
    elif case == "input inside output":
        folder, _ = make_student.build(output, NOTEBOOKS[:1])
        notebook = folder / "notebooks" / NOTEBOOKS[0].name
    before = sorted(p for p in tmp_path.rglob("*"))
    monkeypatch.setattr(
        sys, "argv", ["make_student.py", "--output-dir", str(output), str(notebook)]
    )
    assert make_student.main() == 2
    assert message in capsys.readouterr().err
    assert sorted(p for p in tmp_path.rglob("*")) == before, "nothing written or deleted"


def test_only_the_files_git_tracks_ship(student, tmp_path):
    stray = make_student.REPO_ROOT / "helpers" / ".env"
    assert not stray.exists()
    stray.write_text("SECRET=1")
    try:
        folder, archive = make_student.build(tmp_path, NOTEBOOKS[:1])
    finally:
        stray.unlink()
    assert not (folder / "helpers" / ".env").exists() and (folder / "helpers" / "data.py").is_file()
    with zipfile.ZipFile(archive) as bundle:
        assert not any(name.endswith(".env") for name in bundle.namelist())


# --- what the student copy carries besides the notebooks -----------------------------------------


def test_student_copy_has_its_own_readme_without_the_instructors_guide(student):
    folder, _ = student
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert readme == (make_student.REPO_ROOT / "tools/student/README.md").read_text()
    for words_there in ("make lab", "make run", "# self-check", "Fill in", "course-bundle.zip"):
        assert words_there in readme
    assert "teaching.md" not in readme and "docs/" not in readme, "docs/ is not in the copy"
    assert "make test" not in readme


def makefile_targets(makefile: str) -> list[str]:
    """The targets that ``makefile`` has rules for, in order."""
    return re.findall(r"^([^\s#.=:][^\s=:]*):(?!=)", makefile, flags=re.MULTILINE)


def test_student_makefile_has_only_targets_that_work_in_the_copy(student):
    folder, _ = student
    makefile = (folder / "Makefile").read_text(encoding="utf-8")
    assert makefile_targets(makefile) == list(make_student.STUDENT_MAKE_TARGETS)
    course = (make_student.REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert {"test", "verify", "benchmarks", "lint"} <= set(makefile_targets(course))
    rules = "\n".join(line for line in makefile.splitlines() if not line.startswith("#"))
    for absent in ("tests", "benchmarks", "docs/", "colab", "make_student"):
        assert absent not in rules, f"the student Makefile names {absent}"
    for rule in make_student.STUDENT_MAKE_TARGETS:  # as the course's, not a copy that drifts
        assert (
            re.search(rf"^{re.escape(rule)}:.*(\n\t.*)*", course, flags=re.MULTILINE)[0] in makefile
        )
    if shutil.which("make"):  # every prerequisite and file the rules name is in the copy
        targets = [t for t in make_student.STUDENT_MAKE_TARGETS if not t.startswith("$")]
        dry_run = subprocess.run(
            ["make", "-n", *targets], cwd=folder, capture_output=True, text=True, check=False
        )
        assert dry_run.returncode == 0, dry_run.stderr
        assert "tools/run_notebooks.py --output-dir build" in dry_run.stdout


def test_make_run_finds_every_module_it_imports_in_the_student_copy(student):
    """`make run` there runs tools/run_notebooks.py, which imports its neighbours in tools/."""
    folder, _ = student
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    command = [sys.executable, "tools/run_notebooks.py", "--help"]
    completed = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "--output-dir" in completed.stdout


# --- what students get holds no solution text -----------------------------------------------------


@pytest.fixture(scope="module")
def colab_bundles(tmp_path_factory) -> dict[str, Path]:
    """`make colab-bundle`'s two zips, built from the real notebooks into a temporary folder."""
    output_dir = tmp_path_factory.mktemp("build")
    return {
        flavour: make_student.build_colab_bundle(
            output_dir, NOTEBOOKS, student=flavour == "student"
        )
        for flavour in ("instructor", "student")
    }


def zip_words(archive: Path) -> str:
    """The words of every notebook (cells and text outputs) and text file in ``archive``."""
    texts = []
    with zipfile.ZipFile(archive) as bundle:
        for name in bundle.namelist():
            if name.endswith(".ipynb"):
                texts.append(notebook_words(nbformat.reads(bundle.read(name), as_version=4)))
            elif name.endswith((".md", ".py", ".txt", ".toml", ".yml", "Makefile")):
                texts.append(words(bundle.read(name).decode("utf-8")))
    return "".join(texts)


def test_students_colab_bundle_unpacks_as_the_instructors_under_the_name_the_cell_wants(
    colab_bundles,
):
    instructor, student = colab_bundles["instructor"], colab_bundles["student"]
    assert instructor.name == student.name == make_student.COLAB_BUNDLE
    assert student.parent == instructor.parent / make_student.STUDENT_COLAB_FOLDER
    with zipfile.ZipFile(instructor) as full, zipfile.ZipFile(student) as blank:
        assert set(full.namelist()) == set(blank.namelist()), "the same files, at the top"
        readme = blank.read("README.md").decode("utf-8")
        notebooks = [nbformat.reads(blank.read(f"notebooks/{p.name}"), 4) for p in NOTEBOOKS]
    assert readme == (make_student.REPO_ROOT / "tools/student/README.md").read_text()
    code = [cell for notebook in notebooks for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] for cell in code), "no outputs"


@pytest.mark.parametrize("handed_out", ["student.zip", "student Colab bundle"])
def test_what_students_get_holds_every_self_check_and_no_solution_text(
    student, colab_bundles, handed_out
):
    archive = student[1] if handed_out == "student.zip" else colab_bundles["student"]
    given, control = zip_words(archive), zip_words(colab_bundles["instructor"])
    for path in NOTEBOOKS:
        lines = solution_lines(path)
        assert lines, f"{path.name}: no solution text to look for; is the marker still used?"
        assert all(line in control for line in lines), "the instructor's bundle has them"
        left = [line for line in lines if line in given]
        assert not left, f"{handed_out}, {path.name}: solution text left: {left}"
        assert all(check in given for check in self_checks(path)), f"{path.name}: self-checks"
