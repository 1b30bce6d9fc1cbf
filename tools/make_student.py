"""Write the student copies (`make student`) and the Colab bundles (`make colab-bundle`).

python tools/make_student.py                       # build/student/ and build/student.zip
python tools/make_student.py --output-dir /tmp/x   # /tmp/x/student/ and /tmp/x/student.zip
python tools/make_student.py --colab-bundle        # only the two Colab bundles (below)

Each notebook of notebooks/ is copied with its outputs and execution counts cleared and its
solutions removed (the markdown cell that begins ``<details><summary>Solutions</summary>``); the
exercise cells and their self-checks stay, as do cell tags and notebook metadata. notebooks/
itself is only read. Beside the notebooks, the student folder holds what a student needs to run
them (``helpers``, the committed pets photos and ImageNet weights, the pinned requirements, the
tools ``make run`` uses), laid out like the repository, with its own README
(``tools/student/README.md``) and a Makefile of the course Makefile's targets that work there
(``setup``, ``lab``, ``run``, ``clean``); student.zip packs that folder for handing out.

The Colab bundles are for Colab while the course has no repository Colab can clone: the
notebooks, ``helpers`` and what ``pip install --no-deps -e`` needs, at the top of one zip named
``course-bundle.zip``, the name each notebook's bootstrap cell looks for in ``/content``, where
a reader uploads it. ``build/course-bundle.zip`` holds the notebooks as they are (solutions and
outputs: the instructor's); ``build/student-colab/course-bundle.zip`` the student copies, to
hand out: same name, same layout, so the unchanged bootstrap cell unpacks either.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import nbformat

try:  # imported as tools.make_student (the tests)
    from tools.notebook_format import SOLUTIONS_MARKER, without_solutions
except ModuleNotFoundError:  # run as a script: tools/ itself is on sys.path
    from notebook_format import SOLUTIONS_MARKER, without_solutions

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO_ROOT / "notebooks"
ZIP_TOP_FOLDER = "segmentation-course"
# What a student needs besides the notebooks, relative to the repository root: what
# `make setup` installs from, what `make run` runs (tools/run_notebooks.py and the modules it
# imports), and the data and weights notebooks 03, 04 and 07 read. tests/, benchmarks/ and docs/
# stay with the instructor.
BUNDLED_FILES = (
    "requirements.txt",
    "requirements-pages.txt",
    "environment.yml",
    "pyproject.toml",
    "data/README.md",
    "tools/run_notebooks.py",
    "tools/notebook_format.py",
    "tools/course_pages.py",
    "tools/records.py",
)
BUNDLED_FOLDERS = ("helpers", "data/pets_sample", "weights")
# The student folder's own README (name there: its source in the repository)
STUDENT_README = {"README.md": "tools/student/README.md"}
# The student folder's Makefile: this header, then the course Makefile's variables and rules
# that work there (the others need tests/, benchmarks/ or docs/, which it has not).
STUDENT_MAKEFILE_HEADER = """\
# The commands of your copy of the course (written from the course's Makefile by
# tools/make_student.py). Each target builds .venv from the pinned requirements when missing.
#   make lab      JupyterLab on the notebooks
#   make run      execute every notebook top to bottom -> build/ (pages: build/index.html)
#   make setup    only build .venv
#   make clean    remove build/
"""
STUDENT_MAKE_VARIABLES = ("PYTHON", "VENV", "BIN", "STAMP")
STUDENT_MAKE_TARGETS = ("setup", "$(STAMP)", "run", "lab", "clean")
# The Colab bundles: what the bootstrap cell installs and the notebooks read, beside notebooks/.
COLAB_BUNDLE = "course-bundle.zip"
STUDENT_COLAB_FOLDER = "student-colab"
COLAB_BUNDLED_FILES = ("requirements.txt", "pyproject.toml", "data/README.md")


def student_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` without solutions, outputs, execution counts or execution record
    (tags kept)."""
    student = without_solutions(notebook)
    student.metadata.pop("execution_record", None)  # it describes outputs this copy has not
    for cell in student.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return student


def course_files(folder: str) -> list[str]:
    """The files of ``folder`` (relative to the repository root) that the course ships: those
    git tracks (a ``.env`` or a scratch file beside them stays home); outside a git checkout,
    every file but hidden ones and Python caches."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "ls-files", "-z", "--", folder],
            capture_output=True,
            check=True,
        ).stdout.decode()
        return sorted(name for name in listed.split("\0") if name)
    except (OSError, subprocess.CalledProcessError):  # no git, or not a checkout
        files = (REPO_ROOT / folder).rglob("*")
        names = [path.relative_to(REPO_ROOT).as_posix() for path in files if path.is_file()]
        hidden = re.compile(r"(^|/)(\.|__pycache__/)|\.pyc$")
        return sorted(name for name in names if not hidden.search(name))


def copy_course_files(destination: Path, files: Iterable[str], renamed: dict[str, str]) -> None:
    """Copy ``files`` and the course files of :data:`BUNDLED_FOLDERS` (:func:`course_files`;
    relative to the repository root) into ``destination``, and each source of ``renamed`` under
    its new name (its key)."""
    bundled = [name for folder in BUNDLED_FOLDERS for name in course_files(folder)]
    pairs = [*((name, name) for name in [*files, *bundled]), *renamed.items()]
    for name, source in pairs:
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / source, target)


class StudentInputError(ValueError):
    """A notebook or output folder the tool cannot use: said before anything is written."""


# A markdown cell left in a student copy that looks like solutions under another marker
UNMARKED_SOLUTIONS = re.compile(r"<summary>\s*solutions?\b|^#+\s*solutions?\b", re.I | re.M)


def read_notebooks(notebooks: list[Path]) -> dict[Path, nbformat.NotebookNode]:
    """Each of ``notebooks``, read; a missing file, a file that is not a notebook, or a
    solutions block that the marker does not begin raises :class:`StudentInputError`."""
    read = {}
    for path in notebooks:
        try:
            read[path] = nbformat.read(path, as_version=4)
        except FileNotFoundError:
            raise StudentInputError(f"{path} does not exist: pass notebooks that do.") from None
        except (json.JSONDecodeError, nbformat.reader.NotJSONError, UnicodeDecodeError) as error:
            raise StudentInputError(f"{path} is not a Jupyter notebook ({error}).") from None
        for index, cell in enumerate(without_solutions(read[path]).cells):
            if cell.cell_type == "markdown" and UNMARKED_SOLUTIONS.search(cell.source):
                raise StudentInputError(
                    f"{path.name}: cell {index} looks like solutions but does not begin with "
                    f"{SOLUTIONS_MARKER!r}, so it would reach the students. Fix: begin the "
                    "solutions cell with that line."
                )
    return read


def write_student_notebooks(read: dict[Path, nbformat.NotebookNode], folder: Path) -> list[str]:
    """Write the student copy of each notebook ``read`` (:func:`read_notebooks`) into
    ``folder``; say what each lost."""
    folder.mkdir(parents=True, exist_ok=True)
    done = []
    for path, notebook in read.items():
        student = student_notebook(notebook)
        removed = len(notebook.cells) - len(student.cells)
        nbformat.write(student, folder / path.name)
        done.append(f"{path.name}: outputs cleared, {removed} solutions cell(s) removed")
    return done


def student_makefile(makefile: str) -> str:
    """The student folder's Makefile, from the course's ``makefile``: its
    :data:`STUDENT_MAKE_VARIABLES` and the rules of :data:`STUDENT_MAKE_TARGETS`, as they are."""
    variables = []
    for name in STUDENT_MAKE_VARIABLES:
        line = re.search(rf"^{name} [:?]?=.*$", makefile, flags=re.MULTILINE)
        if line is None:
            raise ValueError(f"the course Makefile no longer sets {name}")
        variables.append(line.group())
    rules = {block.split(":", 1)[0]: block.strip("\n") for block in makefile.split("\n\n")}
    missing = [target for target in STUDENT_MAKE_TARGETS if target not in rules]
    if missing:
        raise ValueError(f"the course Makefile has no rule for {', '.join(missing)}")
    phony = " ".join(target for target in STUDENT_MAKE_TARGETS if not target.startswith("$"))
    blocks = ["\n".join(variables), f".PHONY: {phony}"]
    blocks += [rules[target] for target in STUDENT_MAKE_TARGETS]
    return STUDENT_MAKEFILE_HEADER + "\n\n".join(blocks) + "\n"


def write_zip(folder: Path, archive: Path, top_folder: str = ZIP_TOP_FOLDER) -> None:
    """Pack ``folder`` into ``archive`` under ``top_folder`` ("" for none), in a stable order."""
    archive.unlink(missing_ok=True)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MADE_HERE):
            name = PurePosixPath(top_folder, path.relative_to(folder).as_posix())
            bundle.write(path, str(name))


# Written into every student folder this tool makes, with the list of the files it wrote: a later
# run replaces the folder only if it holds nothing else. A folder without it is someone's own.
MADE_HERE = ".made-by-make-student"


class StudentFolderError(RuntimeError):
    """The student folder exists and this tool did not make it."""


def _files_in(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()}


def check_replaceable(folder: Path) -> None:
    """Raise :class:`StudentFolderError` unless ``folder`` is absent or this tool made it and
    it holds only files the tool wrote (:data:`MADE_HERE` lists them)."""
    if not folder.exists() and not folder.is_symlink():
        return
    mark = folder / MADE_HERE
    if not folder.is_dir() or not mark.is_file():
        raise StudentFolderError(
            f"{folder} exists and was not made by `make student`: nothing in it was touched. "
            "Move it away or choose another --output-dir, then run again."
        )
    others = sorted(_files_in(folder) - set(mark.read_text().splitlines()) - {MADE_HERE})
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise StudentFolderError(
            f"{folder} holds {len(others)} file(s) that `make student` did not write ({shown}): "
            "nothing in it was touched. Move them away or choose another --output-dir, then "
            "run again."
        )


def check_inputs(output_dir: Path, notebooks: list[Path]) -> None:
    """Refuse, before anything is written, an output path that is a file and notebooks that
    live inside the folder a build replaces."""
    if output_dir.exists() and not output_dir.is_dir():
        raise StudentInputError(f"--output-dir {output_dir} is a file: pass a folder.")
    folder = (output_dir / "student").resolve()
    inside = [path for path in notebooks if path.resolve().is_relative_to(folder)]
    if inside:
        raise StudentInputError(
            f"{inside[0]} is inside {folder}, the folder this build replaces: pass the course's "
            "notebooks (notebooks/*.ipynb), not a student copy."
        )


def build(output_dir: Path, notebooks: list[Path]) -> tuple[Path, Path]:
    """Write ``output_dir/student/`` and ``output_dir/student.zip``; return both paths.

    Everything is checked first (:func:`check_inputs`, :func:`read_notebooks`). An earlier
    student folder is replaced only if this tool made it and it holds nothing else
    (:func:`check_replaceable`); any other raises :class:`StudentFolderError`, untouched.
    """
    folder = output_dir / "student"
    check_inputs(output_dir, notebooks)
    read = read_notebooks(notebooks)
    check_replaceable(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MADE_HERE).touch()
    for done in write_student_notebooks(read, folder / "notebooks"):
        print(f"    {done}")
    copy_course_files(folder, BUNDLED_FILES, STUDENT_README)
    makefile = student_makefile((REPO_ROOT / "Makefile").read_text(encoding="utf-8"))
    (folder / "Makefile").write_text(makefile, encoding="utf-8")
    (folder / MADE_HERE).write_text("\n".join(sorted(_files_in(folder) - {MADE_HERE})) + "\n")
    archive = output_dir / "student.zip"
    write_zip(folder, archive)
    return folder, archive


def build_colab_bundle(output_dir: Path, notebooks: list[Path], student: bool = False) -> Path:
    """Write a Colab bundle and return its path: ``output_dir/course-bundle.zip`` with
    ``notebooks`` as they are, or (``student``) ``output_dir/student-colab/course-bundle.zip``
    with their student copies and the student README. Beside them at the top of the zip (the
    bootstrap cell unpacks it as the course): ``helpers``, the data, the weights and the files
    pip installs from."""
    where = output_dir / STUDENT_COLAB_FOLDER if student else output_dir
    archive = where / COLAB_BUNDLE
    where.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        folder = Path(staging)
        if student:
            write_student_notebooks(read_notebooks(notebooks), folder / "notebooks")
        else:
            (folder / "notebooks").mkdir()
            for path in notebooks:
                shutil.copy2(path, folder / "notebooks" / path.name)
        readme = STUDENT_README if student else {"README.md": "README.md"}
        copy_course_files(folder, COLAB_BUNDLED_FILES, readme)
        write_zip(folder, archive, top_folder="")
    return archive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "build")
    parser.add_argument(
        "--colab-bundle",
        action="store_true",
        help=f"write only the two {COLAB_BUNDLE} for Colab (instructor's, students')",
    )
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    args = parser.parse_args()

    notebooks = [p.resolve() for p in args.notebooks] or sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    try:
        check_inputs(args.output_dir, notebooks)
        read_notebooks(notebooks)
    except StudentInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.colab_bundle:
        archive = build_colab_bundle(args.output_dir, notebooks)
        print(f"==> {archive}: {len(notebooks)} notebook(s) as they are, with solutions")
        student = build_colab_bundle(args.output_dir, notebooks, student=True)
        print(f"==> {student}: the student copies (no solutions, no outputs), to hand out")
        print(f"    On Colab, upload {COLAB_BUNDLE} unrenamed to /content in the Files pane, then")
        print("    run a notebook's first code cell")
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
