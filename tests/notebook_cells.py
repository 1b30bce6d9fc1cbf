"""Cells of the committed notebooks, for tests that run a notebook's own code in a namespace
built by the test (no kernel, nothing executed that the test does not choose)."""

from __future__ import annotations

import contextlib
import io
from functools import cache
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@cache
def code_cells(notebook: str) -> tuple[str, ...]:
    cells = nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4).cells
    return tuple(cell.source for cell in cells if cell.cell_type == "code")


def cell_defining(notebook: str, definition: str) -> str:
    """The one code cell of ``notebook`` whose source contains ``definition``."""
    (source,) = [source for source in code_cells(notebook) if definition in source]
    return source


def cell_starting(notebook: str, first_line: str) -> str:
    """The one code cell of ``notebook`` whose source starts with ``first_line``."""
    (source,) = [source for source in code_cells(notebook) if source.startswith(first_line)]
    return source


def run(source: str, namespace: dict) -> str:
    """Execute ``source`` in ``namespace`` (modified in place); return what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(source, "<notebook cell>", "exec"), namespace)
    return printed.getvalue()
