"""Execute the course's notebooks top to bottom (used by `make run` and `make outputs`).

python tools/run_notebooks.py --output-dir build   # executed copies + HTML under build/
python tools/run_notebooks.py --in-place           # refresh the committed outputs
python tools/run_notebooks.py --in-place notebooks/01_preprocessing.ipynb
python tools/run_notebooks.py --tidy               # only apply figure policy and format (below)

With --output-dir, also writes index.html there: the course's notebooks in order, each with its
title, goal and run time (read from its opening markdown cell) and a link to its rendered page,
so a class can read the course without running it. A notebook whose run failed is listed as
failed (its page stops at the failing cell); one not rendered yet is listed without a link.
When the notebooks have solutions blocks, the same executed notebooks, pages and index are
also written without them into OUTPUT_DIR/student-pages/: the flavour to publish for students
(nothing runs twice). The pages typeset their math with a copy of MathJax in their folder:
they need no internet.

Prints each code cell as it starts, so a long run shows where it is. A notebook that fails is
reported (notebook, cell, error in plain text) and kept with its outputs up to the failing cell
(never over a committed notebook); the remaining notebooks still run, and the exit status says
that something failed.

Every notebook it writes is tidied: its figures stored by the course's figure policy
(``notebook_format.shrink_png``: 256-colour palette PNGs, every figure kept, about a third of
matplotlib's bytes) and its metadata what JupyterLab itself writes (``tidy_metadata``), so that
opening and saving a notebook changes nothing in git. ``course_pages`` writes the index.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

try:  # imported as tools.run_notebooks (the tests)
    from tools import records
    from tools.course_pages import install_mathjax, render, write_index
    from tools.notebook_format import (
        is_solution_cell,
        shrink_figures,
        tidy_metadata,
        without_solutions,
    )
except ModuleNotFoundError:  # run as a script: tools/ itself is on sys.path
    import records
    from course_pages import install_mathjax, render, write_index
    from notebook_format import is_solution_cell, shrink_figures, tidy_metadata, without_solutions

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO_ROOT / "notebooks"
# The longest cell (05's side-by-side training runs) takes about 25 minutes on a slow 2-core
# machine; under load it can take twice that. nbval uses the same limit (pyproject.toml).
CELL_TIMEOUT_SECONDS = 3600
ANSI_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# The pages without the solutions, in this folder of --output-dir
STUDENT_PAGES = "student-pages"


# Run in the notebook's own kernel after its last cell (then removed): the machine and the
# versions that made the outputs, for the execution record.
ENVIRONMENT_PROBE = """\
import json as _json, os as _os, platform as _platform
import keras as _keras, tensorflow as _tf
from helpers import runtime as _runtime
_affinity = getattr(_os, "sched_getaffinity", None)
print(_json.dumps({
    "cpu": _runtime.cpu_name(),
    "cores": len(_affinity(0)) if _affinity else _os.cpu_count(),
    "gpu": ", ".join(str(gpu["name"]) for gpu in _runtime.gpu_details()) or None,
    "python": _platform.python_version(),
    "tensorflow": _tf.__version__,
    "keras": _keras.__version__,
}))
"""


def plain(text: str) -> str:
    """``text`` without the terminal colour codes that IPython puts in tracebacks."""
    return ANSI_ESCAPES.sub("", text)


def shown(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it."""
    path = path.resolve()
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def first_line(source: str) -> str:
    """The first non-empty line of a cell, shortened for a progress line."""
    line = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return line if len(line) <= 70 else line[:67] + "..."


def execution_record(
    notebook: nbformat.NotebookNode, environment: dict, seconds: float
) -> dict[str, object]:
    """What made the notebook's outputs (``tools/records.py``): the fingerprints of its code,
    its parameters, the machine, the versions, the wall time and the date."""
    return {
        "code": records.fingerprints(notebook),
        "parameters": records.parameters(notebook),
        "machine": {key: environment[key] for key in ("cpu", "cores", "gpu")},
        "versions": {key: environment[key] for key in ("python", "tensorflow", "keras")},
        "wall_time_s": round(seconds),
        "date": datetime.date.today().isoformat(),
    }


def execute(path: Path) -> tuple[nbformat.NotebookNode, str | None]:
    """Run one notebook in a fresh kernel, with the notebook's folder as working directory,
    and store its execution record (and the header's run-time line) when every cell ran.

    Returns the notebook (executed up to the first failing cell) and, if a cell failed, a
    plain-text report of the failure.
    """
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(ENVIRONMENT_PROBE))
    code_indices = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"][:-1]
    start = time.perf_counter()
    running: list[int] = []  # the index of the cell that runs now

    def on_cell_start(cell: nbformat.NotebookNode, cell_index: int, **_: object) -> None:
        if cell_index not in code_indices:  # markdown, or the environment probe
            return
        running[:] = [cell_index]
        number = code_indices.index(cell_index) + 1
        elapsed = time.perf_counter() - start
        print(
            f"    [{elapsed:5.0f} s] cell {number}/{len(code_indices)}: {first_line(cell.source)}",
            flush=True,
        )

    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_SECONDS,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        on_cell_start=on_cell_start,
    )
    try:
        client.execute()
    except CellExecutionError as error:
        notebook.cells.pop()
        return notebook, failure_report(path, notebook, error)
    except CellTimeoutError:
        notebook.cells.pop()
        index = running[0]
        return notebook, "\n".join(
            [
                f"FAILED: {path.name}",
                f"  cell {index} (counting markdown cells from 0): "
                f"{first_line(notebook.cells[index].source)}",
                f"  timed out after {CELL_TIMEOUT_SECONDS} s: lower the notebook's budget "
                "parameters, or raise CELL_TIMEOUT_SECONDS in tools/run_notebooks.py",
            ]
        )
    seconds = time.perf_counter() - start
    probe = notebook.cells.pop()
    environment = json.loads("".join(output.get("text", "") for output in probe.outputs))
    records.stamp(notebook, execution_record(notebook, environment, seconds))
    return notebook, None


def failure_report(path: Path, notebook: nbformat.NotebookNode, error: CellExecutionError) -> str:
    """Which notebook and cell failed, with what error, in plain text."""
    failed = next(
        (
            (index, cell)
            for index, cell in enumerate(notebook.cells)
            if any(output.get("output_type") == "error" for output in cell.get("outputs", []))
        ),
        (None, None),
    )
    index, cell = failed
    lines = [f"FAILED: {path.name}"]
    if cell is not None:
        lines.append(f"  cell {index} (counting markdown cells from 0): {first_line(cell.source)}")
    lines.append(f"  {error.ename}: {plain(error.evalue)}")
    trace = [line for line in plain(error.traceback).splitlines() if line.strip()]
    lines += ["  " + line for line in trace[-12:]]
    return "\n".join(lines)


def has_solutions(path: Path) -> bool:
    """Whether the notebook at ``path`` has a solutions block (its student page leaves it out)."""
    return any(map(is_solution_cell, nbformat.read(path, as_version=4).cells))


def page_folders(args: argparse.Namespace) -> list[Path]:
    """Where ``--output-dir`` pages go: the folder itself, and its student pages' folder."""
    return [args.output_dir, *([args.output_dir / STUDENT_PAGES] if args.student_pages else [])]


def prepare_pages(args: argparse.Namespace) -> str:
    """Make the page folders of ``--output-dir``, each with its copy of MathJax; return the URL
    the pages load MathJax from (the same in each folder)."""
    url = ""
    for folder in page_folders(args):
        folder.mkdir(parents=True, exist_ok=True)
        url = install_mathjax(folder)
    return url


def write(
    notebook: nbformat.NotebookNode, path: Path, args: argparse.Namespace, mathjax_url: str
) -> list[Path]:
    """Save the executed notebook, tidied (in place, or as a copy + HTML page under
    ``--output-dir``, and under its student pages' folder without the solutions); the pages
    load MathJax from ``mathjax_url`` (:func:`prepare_pages`)."""
    shrink_figures(notebook)
    tidy_metadata(notebook)
    if args.in_place:
        nbformat.write(notebook, path)
        return [path]
    written = []
    for folder in page_folders(args):
        shown_here = notebook if folder == args.output_dir else without_solutions(notebook)
        executed = folder / path.name
        nbformat.write(shown_here, executed)
        written += [executed, render(shown_here, executed.with_suffix(".html"), mathjax_url)]
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--output-dir", type=Path, help="write executed copies and HTML here")
    target.add_argument("--in-place", action="store_true", help="overwrite the notebooks")
    target.add_argument(
        "--tidy",
        action="store_true",
        help="execute nothing: apply the figure policy and the format to the stored notebooks",
    )
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    args = parser.parse_args()

    paths = [p.resolve() for p in args.notebooks] or sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    args.student_pages = bool(args.output_dir) and any(map(has_solutions, paths))
    if args.tidy:
        for path in paths:
            notebook = nbformat.read(path, as_version=4)
            before, after = shrink_figures(notebook)
            tidy_metadata(notebook)
            nbformat.write(notebook, path)
            print(f"{shown(path)}: figures {before / 1024:,.0f} -> {after / 1024:,.0f} KiB")
        return 0
    mathjax_url = prepare_pages(args) if args.output_dir else ""
    failures = []
    total_start = time.perf_counter()
    for number, path in enumerate(paths, 1):
        print(f"==> [{number}/{len(paths)}] executing {shown(path)} ...", flush=True)
        start = time.perf_counter()
        notebook, failure = execute(path)
        if failure:
            failures.append(failure)
            print(failure, flush=True)
            if args.in_place:
                print("    not written: the committed notebook keeps its outputs", flush=True)
                continue
        written = write(notebook, path, args, mathjax_url)
        where = ", ".join(shown(p) for p in written)
        print(f"    done in {time.perf_counter() - start:.0f} s -> {where}", flush=True)
    if args.output_dir:
        course = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
        for folder in page_folders(args):
            index = write_index(folder, [*course, *paths])
            print(f"==> course pages: {shown(index)} links every rendered notebook")
    if args.in_place and any(path.parent == NOTEBOOKS for path in paths):
        tables = ", ".join(shown(p) for p in records.write_tables()) or "no table changed"
        print(f"==> run times from the execution records written into: {tables}")
    where = "notebooks/ (in place)" if args.in_place else f"{args.output_dir}/"
    elapsed = time.perf_counter() - total_start
    print(f"==> {len(paths)} notebook(s) executed in {elapsed:.0f} s; results in {where}")
    if failures:
        print(f"==> {len(failures)} notebook(s) failed:")
        print("\n".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
