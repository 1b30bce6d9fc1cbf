"""The notebooks at a small budget: the copies that `make test` executes with nbval.

Each notebook declares, in one place (its metadata, key ``small_budget``), the values that
replace its ``parameters`` cell's for the test: Python expressions by parameter name, for
example ``{"EPOCHS": "2"}``. The copy gets one more cell right after the parameters cell (tagged
``injected-parameters``, as papermill does) that assigns them; the lesson's own cells are
unchanged. A cell tagged ``depends-on-budget`` prints what the budget changes (a score, an epoch
count): in the copy its output is not compared (``nbval-ignore-output``), while every other cell
not tagged ``nbval-ignore-output`` must print exactly what the committed notebook shows.

python tools/small_budget.py build/small-budget      # all notebooks
python tools/small_budget.py build/small-budget 03 04
"""

from __future__ import annotations

import argparse
import ast
import shutil
import sys
from pathlib import Path

import nbformat

try:  # imported as tools.small_budget (the tests)
    from tools.records import NOTEBOOKS, notebook_number, parameters
except ModuleNotFoundError:  # run as a script: tools/ itself is on sys.path
    from records import NOTEBOOKS, notebook_number, parameters

METADATA_KEY = "small_budget"
BUDGET_TAG = "depends-on-budget"
IGNORE_TAG = "nbval-ignore-output"
INJECTED_TAG = "injected-parameters"


class BudgetError(ValueError):
    """A notebook's small-budget declaration does not fit its parameters cell."""


def overrides(notebook: nbformat.NotebookNode, name: str) -> dict[str, str]:
    """The notebook's small-budget values, checked: each names a parameter and is a Python
    expression."""
    declared = notebook.metadata.get(METADATA_KEY)
    if declared is None:
        raise BudgetError(
            f"{name}: no '{METADATA_KEY}' in the notebook's metadata. Add the parameter values "
            'of its small test run, e.g. {"EPOCHS": "2"} ({} when the lesson is quick already).'
        )
    known = parameters(notebook)
    unknown = sorted(set(declared) - set(known))
    if unknown:
        raise BudgetError(f"{name}: '{METADATA_KEY}' sets {unknown}, not in its parameters cell")
    for parameter, expression in declared.items():
        try:
            ast.literal_eval(expression)
        except (ValueError, SyntaxError) as error:
            raise BudgetError(
                f"{name}: '{METADATA_KEY}' gives {parameter} = {expression!r}, not a Python "
                f"literal ({error})"
            ) from None
    return dict(declared)


def small_budget_copy(notebook: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """A copy of ``notebook`` that runs at its small budget (see the module's docstring)."""
    values = overrides(notebook, name)
    copy = nbformat.from_dict(notebook)
    for cell in copy.cells:
        tags = cell.metadata.get("tags", [])
        if BUDGET_TAG in tags and IGNORE_TAG not in tags:
            cell.metadata["tags"] = [*tags, IGNORE_TAG]
    where = next(
        index
        for index, cell in enumerate(copy.cells)
        if "parameters" in cell.metadata.get("tags", [])
    )
    lines = [f"# The small test budget (notebook metadata '{METADATA_KEY}')"]
    lines += [f"{parameter} = {expression}" for parameter, expression in values.items()]
    injected = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED_TAG]})
    injected["id"] = INJECTED_TAG  # a fixed id: the same copy from the same notebook
    copy.cells.insert(where + 1, injected)
    return copy


def notebook_paths(numbers: list[str]) -> list[Path]:
    """The course's notebooks, or those whose numbers are given (``"03"``)."""
    paths = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    if not numbers:
        return paths
    chosen = [path for path in paths if notebook_number(path) in numbers]
    missing = sorted(set(numbers) - {notebook_number(path) for path in chosen})
    if missing:
        raise BudgetError(f"no notebook numbered {missing} in {NOTEBOOKS}")
    return chosen


def write_copies(output_dir: Path, paths: list[Path]) -> list[Path]:
    """Write the small-budget copies of ``paths`` into ``output_dir`` (emptied first)."""
    if output_dir.exists():
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True)
    written = []
    for path in paths:
        copy = small_budget_copy(nbformat.read(path, as_version=4), path.name)
        target = output_dir / path.name
        nbformat.write(copy, target)
        written.append(target)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("numbers", nargs="*", help="notebook numbers, e.g. 03 04 (default: all)")
    args = parser.parse_args()
    try:
        written = write_copies(args.output_dir, notebook_paths(args.numbers))
    except BudgetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"==> {len(written)} notebook(s) at their small budget in {args.output_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
