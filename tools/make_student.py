"""Write the student copies (`make student`) and the Colab bundle (`make colab-bundle`).

python tools/make_student.py                       # build/student/ and build/student.zip
python tools/make_student.py --output-dir /tmp/x   # /tmp/x/student/ and /tmp/x/student.zip
python tools/make_student.py --colab-bundle        # only build/course-bundle.zip

Each notebook of notebooks/ is copied with its outputs and execution counts cleared and its
solutions removed (the markdown cell that begins ``<details><summary>Solutions</summary>``); the
exercise cells and their self-checks stay, as do cell tags and notebook metadata. notebooks/
itself is only read. Beside the notebooks, the student folder holds what a student needs to run
them (``helpers``, the pinned requirements, the Makefile's ``setup``, ``lab`` and ``run``), laid
out like the repository; student.zip packs that folder for handing out.

The Colab bundle is for Colab while the course has no repository Colab can clone: the notebooks
as they are, ``helpers`` and what ``pip install --no-deps -e`` needs, at the top of one zip. A
reader uploads it to ``/content``; each notebook's bootstrap cell unpacks it there.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import nbformat

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO_ROOT / "notebooks"
SOLUTIONS_MARKER = "<details><summary>Solutions</summary>"
ZIP_TOP_FOLDER = "segmentation-course"
# What a student needs besides the notebooks, relative to the repository root. The Makefile's
# `setup`, `lab` and `run` work in the student folder; `test`, `lint` and `benchmarks` need the
# tests/ and benchmarks/ folders, which stay with the instructor.
BUNDLED_FILES = (
    "README.md",
    "requirements.txt",
    "environment.yml",
    "pyproject.toml",
    "Makefile",
    "data/README.md",
    "tools/run_notebooks.py",
    "tools/notebook_format.py",
    "tools/course_pages.py",
)
BUNDLED_PACKAGE = "helpers"
# The Colab bundle: what the bootstrap cell installs and the notebooks read, beside notebooks/.
COLAB_BUNDLE = "course-bundle.zip"
COLAB_BUNDLED_FILES = ("README.md", "requirements.txt", "pyproject.toml", "data/README.md")
STUDENT_NOTE = """\
# Student copy of the course

The notebooks in `notebooks/` come without outputs and without the solutions of their
exercises. Run them yourself:

```bash
make lab    # first time: creates .venv from requirements.txt (about a minute), then JupyterLab
```

Each exercise has a self-check cell: it prints "Fill in ... then run this cell again" until you
have filled in your answer, then checks it (an error message says what is not right yet). Your
instructor has the solutions. README.md describes the whole course; its `make test` and
`make benchmarks` need folders that are not part of this copy.
"""


def is_solution_cell(cell: nbformat.NotebookNode) -> bool:
    """Whether ``cell`` is a notebook's solutions block."""
    return cell.cell_type == "markdown" and cell.source.lstrip().startswith(SOLUTIONS_MARKER)


def student_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` without solutions, outputs, execution counts or execution record
    (tags kept)."""
    student = copy.deepcopy(notebook)
    student.cells = [cell for cell in student.cells if not is_solution_cell(cell)]
    student.metadata.pop("execution_record", None)  # it describes outputs this copy has not
    for cell in student.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return student


def copy_course_files(destination: Path, files: Iterable[str]) -> None:
    """Copy ``helpers`` and ``files`` (relative to the repository root) into ``destination``."""
    for name in files:
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    shutil.copytree(
        REPO_ROOT / BUNDLED_PACKAGE,
        destination / BUNDLED_PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )


def write_zip(folder: Path, archive: Path, top_folder: str = ZIP_TOP_FOLDER) -> None:
    """Pack ``folder`` into ``archive`` under ``top_folder`` ("" for none), in a stable order."""
    archive.unlink(missing_ok=True)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MADE_HERE):
            name = PurePosixPath(top_folder, path.relative_to(folder).as_posix())
            bundle.write(path, str(name))


# Written into every student folder this tool makes: the one mark that lets a later run replace
# the folder. A folder without it is someone's own, and is never deleted.
MADE_HERE = ".made-by-make-student"


class StudentFolderError(RuntimeError):
    """The student folder exists and this tool did not make it."""


def build(output_dir: Path, notebooks: list[Path]) -> tuple[Path, Path]:
    """Write ``output_dir/student/`` and ``output_dir/student.zip``; return both paths.

    An earlier student folder is replaced only if this tool made it (:data:`MADE_HERE`);
    any other folder of that name raises :class:`StudentFolderError` and is left as it is.
    """
    folder = output_dir / "student"
    if folder.exists():
        if not (folder / MADE_HERE).is_file():
            raise StudentFolderError(
                f"{folder} exists and was not made by `make student`: nothing in it was touched. "
                "Move it away or choose another --output-dir, then run again."
            )
        shutil.rmtree(folder)
    (folder / "notebooks").mkdir(parents=True)
    (folder / MADE_HERE).touch()
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        student = student_notebook(notebook)
        removed = len(notebook.cells) - len(student.cells)
        nbformat.write(student, folder / "notebooks" / path.name)
        print(f"    {path.name}: outputs cleared, {removed} solutions cell(s) removed")
    copy_course_files(folder, BUNDLED_FILES)
    (folder / "STUDENT.md").write_text(STUDENT_NOTE, encoding="utf-8")
    archive = output_dir / "student.zip"
    write_zip(folder, archive)
    return folder, archive


def build_colab_bundle(output_dir: Path, notebooks: list[Path]) -> Path:
    """Write ``output_dir/course-bundle.zip``: ``notebooks`` as they are, ``helpers`` and the
    files it installs from, at the top of the zip (the bootstrap cell unpacks it as the course)."""
    archive = output_dir / COLAB_BUNDLE
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        folder = Path(staging)
        (folder / "notebooks").mkdir()
        for path in notebooks:
            shutil.copy2(path, folder / "notebooks" / path.name)
        copy_course_files(folder, COLAB_BUNDLED_FILES)
        write_zip(folder, archive, top_folder="")
    return archive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "build")
    parser.add_argument(
        "--colab-bundle", action="store_true", help=f"write only {COLAB_BUNDLE}, for Colab"
    )
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    args = parser.parse_args()

    notebooks = [p.resolve() for p in args.notebooks] or sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    if args.colab_bundle:
        archive = build_colab_bundle(args.output_dir, notebooks)
        print(f"==> {archive}: {len(notebooks)} notebook(s) and helpers/; on Colab, upload it")
        print("    to /content in the Files pane, then run a notebook's first code cell")
        return 0
    print(f"==> student copies of {len(notebooks)} notebook(s)")
    try:
        folder, archive = build(args.output_dir, notebooks)
    except StudentFolderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"==> {folder}/ (notebooks/, helpers/, ...) and {archive} to hand out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
