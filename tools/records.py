"""Execution records: what produced a notebook's committed outputs, and whether it still would.

``make outputs`` (``tools/run_notebooks.py --in-place``) stores a record in each notebook's
metadata (key ``execution_record``): a fingerprint of the notebook's code cells and of every
file of code it ran — the ``helpers`` modules it imports, directly or through other ``helpers``
modules (the ``shapes`` generator among them), and ``requirements.txt`` — with the parameters,
the machine, the versions, the wall time and the date.

``make test`` recomputes the fingerprints (``tests/test_records.py``) and names the notebooks
whose outputs are stale, the files that changed and the command that refreshes them.
Fingerprints are taken of normalised code: docstrings, comments and formatting do not count,
so editing them leaves every record fresh.

python tools/records.py          # print the stale notebooks (exit status 1 if any)
python tools/records.py --run-times  # write each record's run time into its notebook's header
                                    # and the README's and teaching guide's tables (make outputs
                                    # does it after every run)
"""

from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import re
import sys
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO_ROOT / "notebooks"
RECORD_KEY = "execution_record"
PACKAGE = "helpers"
REQUIREMENTS = "requirements.txt"
NOTEBOOK_CODE = "the notebook's code cells"
RUN_TIME_PREFIX = "**Run time:**"
# The Colab bootstrap cell (it begins with this line; tools/stamp_colab.py writes it) does nothing
# outside Colab, where outputs are made, and tests/test_colab.py runs it on each of its paths: it
# is left out of the fingerprint, so that a fix to it does not call for re-executing every lesson.
COLAB_BOOTSTRAP = "# Colab only:"
# The tables whose run-time column comes from the records: the README's notebook table (rows
# start with the notebook's link) and the teaching guide's run times (rows start with its number).
RUN_TIME_TABLES = {
    "README.md": r"^\| \[(\d\d)_[^]]*\]\(notebooks/[^)]*\) \|.*\| (?P<time>[^|]*) \|$",
    "docs/teaching.md": r"^\| (\d\d) \| (?P<time>[^|]*) \| [^|]* \|$",
}


def _without_docstrings(tree: ast.AST) -> ast.AST:
    """``tree`` with the docstring of every module, class and function removed, in place."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _canonical(node: object) -> str:
    """A syntax tree as text, the same on every Python version that parses it alike: node
    types and their non-empty fields (``ast.dump`` adds the empty fields that newer versions
    introduced, such as ``type_params``)."""
    if isinstance(node, ast.AST):
        fields = ((name, getattr(node, name, None)) for name in node._fields)
        shown = [f"{name}={_canonical(value)}" for name, value in fields if value not in (None, [])]
        return f"{type(node).__name__}({', '.join(shown)})"
    if isinstance(node, list):
        return f"[{', '.join(_canonical(item) for item in node)}]"
    return repr(node)


def normalised_python(source: str) -> str:
    """Python code as its syntax tree: comments, docstrings and formatting left out."""
    return _canonical(_without_docstrings(ast.parse(source)))


def cell_python(source: str) -> str:
    """A code cell as plain Python (IPython's ``%magics`` and ``!commands`` translated)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def digest(text: str) -> str:
    """A short SHA-256 of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def code_cells(notebook: nbformat.NotebookNode) -> list[str]:
    """The sources of a notebook's code cells."""
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def notebook_fingerprint(notebook: nbformat.NotebookNode) -> str:
    """The fingerprint of a notebook's code cells, in order (the Colab bootstrap left out)."""
    lesson = [s for s in code_cells(notebook) if not s.startswith(COLAB_BOOTSTRAP)]
    return digest("\n# ---- cell ----\n".join(normalised_python(cell_python(s)) for s in lesson))


def file_fingerprint(path: Path) -> str:
    """The fingerprint of a Python module (its syntax tree) or of a requirements file (its
    requirement lines, comments and blank lines left out)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        return digest(normalised_python(text))
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return digest("\n".join(line for line in lines if line))


def _module_file(root: Path, dotted: str) -> Path | None:
    """The file of a module of the package (``helpers.data`` -> ``helpers/data.py``)."""
    parts = dotted.split(".")
    if parts[0] != PACKAGE:
        return None
    module = root.joinpath(*parts).with_suffix(".py")
    if module.is_file():
        return module
    package = root.joinpath(*parts, "__init__.py")
    return package if package.is_file() else None


def imported_modules(tree: ast.AST) -> set[str]:
    """The dotted names of the package's modules that ``tree`` imports anywhere (inside
    functions too, by absolute imports as the course writes them), with each parent package;
    ``from package import name`` counts ``package.name``, a module or not."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    found = set()
    for name in names:
        parts = name.split(".")
        if parts[0] == PACKAGE:
            found.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return found


def code_files(notebook: nbformat.NotebookNode, root: Path = REPO_ROOT) -> list[str]:
    """The files of code a notebook runs, relative to ``root``: every ``helpers`` module it
    imports, directly or through another ``helpers`` module, and the requirements."""
    tree = ast.parse("\n".join(cell_python(source) for source in code_cells(notebook)))
    pending = imported_modules(tree)
    files: set[Path] = set()
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        seen.add(name)
        path = _module_file(root, name)
        if path is None or path in files:
            continue
        files.add(path)
        pending |= imported_modules(ast.parse(path.read_text(encoding="utf-8"))) - seen
    shown = sorted(str(path.relative_to(root)) for path in files)
    return [*shown, REQUIREMENTS] if (root / REQUIREMENTS).is_file() else shown


def fingerprints(notebook: nbformat.NotebookNode, root: Path = REPO_ROOT) -> dict[str, str]:
    """The fingerprint of the notebook's code cells and of each file of code it runs."""
    files = {name: file_fingerprint(root / name) for name in code_files(notebook, root)}
    return {NOTEBOOK_CODE: notebook_fingerprint(notebook), **files}


def parameters(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """The values (as written) of the parameters cell's assignments."""
    cell = next(
        (c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])),
        None,
    )
    if cell is None:
        return {}
    values = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    values[target.id] = ast.get_source_segment(cell.source, node.value) or ""
    return values


def changed_files(notebook: nbformat.NotebookNode, root: Path = REPO_ROOT) -> list[str]:
    """What changed since the notebook's outputs were made (the record's fingerprints against
    today's), or ``["no execution record"]``; empty when the outputs are fresh."""
    record = notebook.metadata.get(RECORD_KEY)
    if not record or "code" not in record:
        return ["no execution record"]
    now = fingerprints(notebook, root)
    then = record["code"]
    return sorted(name for name in now.keys() | then.keys() if now.get(name) != then.get(name))


def notebook_number(path: Path) -> str:
    """``notebooks/03_build_and_train.ipynb`` -> ``03``."""
    return path.name.split("_", 1)[0]


def stale_report(paths: list[Path], root: Path = REPO_ROOT) -> str | None:
    """A message naming the stale notebooks, what changed for each and the command that
    refreshes them; ``None`` when every record is fresh."""
    by_change: dict[str, list[str]] = {}
    for path in paths:
        for change in changed_files(nbformat.read(path, as_version=4), root):
            by_change.setdefault(change, []).append(notebook_number(path))
    if not by_change:
        return None
    lines = []
    for change, numbers in sorted(by_change.items(), key=lambda item: item[1]):
        verb = "" if change == "no execution record" else " changed since their outputs were made"
        lines.append(f"{', '.join(numbers)}: {change}{verb}")
    stale = sorted({number for numbers in by_change.values() for number in numbers})
    lines.append(f"run `make outputs NB='{' '.join(stale)}'`")
    return "\n".join(lines)


def run_time_text(seconds: float) -> str:
    """``257`` -> ``"4 min 17 s"``; under a minute, ``"12 s"``."""
    seconds = round(seconds)
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def machine_text(record: dict) -> str:
    """``"2-core Intel Xeon, no GPU"``: where the record's run took place."""
    machine = record["machine"]
    cpu = re.sub(r"\s*\((R|TM)\)", "", machine["cpu"])  # "Intel(R) Xeon(R)" -> "Intel Xeon"
    device = f"GPU {machine['gpu']}" if machine.get("gpu") else "no GPU"
    return f"{machine['cores']}-core {cpu}, {device}"


def run_time_line(record: dict) -> str:
    """The header's run-time line, generated from the record."""
    versions = record["versions"]
    return (
        f"{RUN_TIME_PREFIX} {run_time_text(record['wall_time_s'])} for the run that made these "
        f"outputs ({machine_text(record)}; TensorFlow {versions['tensorflow']}, Keras "
        f"{versions['keras']}; {record['date']})."
    )


def run_time_cell(record: dict) -> str:
    """A table's run-time cell: ``"4 min 17 s (2-core Intel Xeon, no GPU)"``."""
    return f"{run_time_text(record['wall_time_s'])} ({machine_text(record)})"


def with_run_times(text: str, pattern: str, run_times: dict[str, str]) -> str:
    """``text`` with the run-time cell of each table row that ``pattern`` matches replaced by
    ``run_times`` of the row's notebook number (a row of a notebook without one is kept)."""

    def replace(match: re.Match) -> str:
        start, end = (index - match.start() for index in match.span("time"))
        cell = run_times.get(match.group(1), match.group("time"))  # no record: left as it is
        return match.group(0)[:start] + cell + match.group(0)[end:]

    return re.sub(pattern, replace, text, flags=re.MULTILINE)


def table_run_times(paths: list[Path]) -> dict[str, str]:
    """The run-time cell of each recorded notebook, by number."""
    cells = {}
    for path in paths:
        record = nbformat.read(path, as_version=4).metadata.get(RECORD_KEY)
        if record and "wall_time_s" in record:
            cells[notebook_number(path)] = run_time_cell(record)
    return cells


FIGURE_TAG = "readme-figure"  # a cell whose figure the README shows
README_FIGURE = Path("docs") / "figures" / "readme.png"


def tagged_figure(paths: list[Path]) -> bytes | None:
    """The PNG of the first cell tagged :data:`FIGURE_TAG` in ``paths``, as committed."""
    for path in paths:
        for cell in nbformat.read(path, as_version=4).cells:
            if FIGURE_TAG in cell.get("metadata", {}).get("tags", []):
                for output in cell.get("outputs", []):
                    if "image/png" in output.get("data", {}):
                        return base64.b64decode(output["data"]["image/png"])
    return None


def write_tables(root: Path = REPO_ROOT) -> list[Path]:
    """Write the records' run times into :data:`RUN_TIME_TABLES` and the README's figure
    (:data:`README_FIGURE`, from the notebooks' own output); returns the files changed."""
    paths = sorted((root / "notebooks").glob("[0-9]*.ipynb"))
    run_times = table_run_times(paths)
    changed = []
    figure, figure_path = tagged_figure(paths), root / README_FIGURE
    if figure is not None and (not figure_path.is_file() or figure_path.read_bytes() != figure):
        figure_path.parent.mkdir(parents=True, exist_ok=True)
        figure_path.write_bytes(figure)
        changed.append(figure_path)
    for name, pattern in RUN_TIME_TABLES.items():
        path = root / name
        text = path.read_text(encoding="utf-8")
        updated = with_run_times(text, pattern, run_times)
        if updated != text:
            path.write_text(updated, encoding="utf-8")
            changed.append(path)
    return changed


def stamp(notebook: nbformat.NotebookNode, record: dict) -> None:
    """Store ``record`` in the notebook's metadata and put its run-time line in the header
    (the first markdown cell's line that starts with ``**Run time:**``, replaced with the
    paragraph it starts; appended when there is none)."""
    notebook.metadata[RECORD_KEY] = record
    header = next(cell for cell in notebook.cells if cell.cell_type == "markdown")
    paragraphs = header.source.split("\n\n")
    line = run_time_line(record)
    for index, paragraph in enumerate(paragraphs):
        if paragraph.startswith(RUN_TIME_PREFIX):
            paragraphs[index] = line
            break
    else:
        paragraphs.append(line)
    header.source = "\n\n".join(paragraphs)


def write_run_times(root: Path = REPO_ROOT) -> list[Path]:
    """Write each record's run-time line into its notebook's header, and the tables
    (:func:`write_tables`); returns the files changed."""
    changed = []
    for path in sorted((root / "notebooks").glob("[0-9]*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        record = notebook.metadata.get(RECORD_KEY)
        if not record or "wall_time_s" not in record:
            continue
        before = nbformat.writes(notebook)
        stamp(notebook, record)
        if nbformat.writes(notebook) != before:
            nbformat.write(notebook, path)
            changed.append(path)
    return changed + write_tables(root)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run-times", action="store_true", help="write the records' run times where shown"
    )
    if parser.parse_args().run_times:
        changed = write_run_times()
        print(f"run times updated in: {', '.join(p.name for p in changed) or 'nothing changed'}")
        return 0
    paths = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    report = stale_report(paths)
    print(report or f"{len(paths)} notebooks: every execution record is fresh")
    return 1 if report else 0


if __name__ == "__main__":
    sys.exit(main())
