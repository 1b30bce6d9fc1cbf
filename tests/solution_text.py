"""The text of the committed notebooks' solutions, to look for in what students get: notebooks,
zips and rendered pages.

Each line over 30 characters of a notebook's solutions block that says something found nowhere
else in the notebook (its other cells and their outputs) is one solution line. Lines are compared
as their words (list markers, markup, HTML tags and escapes aside), so that a line is found in a
rendered page as in a notebook's source.
"""

from __future__ import annotations

import html
import re
from functools import cache
from pathlib import Path

import nbformat

# Written out here, not imported from the tools under test
SOLUTIONS = "<details><summary>Solutions</summary>"
LIST_MARKER = re.compile(r"^\s*(?:[-*+>#]+|\d+[.)])\s+")


def words(text: str) -> str:
    """The words of ``text``, one space between each and around them all."""
    return " " + " ".join(re.findall(r"\w+", text)) + " "


def is_solutions(cell: nbformat.NotebookNode) -> bool:
    """Whether ``cell`` is a notebook's solutions block."""
    return cell.cell_type == "markdown" and cell.source.startswith(SOLUTIONS)


def notebook_words(notebook: nbformat.NotebookNode, solutions: bool = True) -> str:
    """The words of every cell of ``notebook`` (but its solutions when not ``solutions``) and of
    its text outputs."""
    texts = []
    for cell in notebook.cells:
        if is_solutions(cell) and not solutions:
            continue
        texts.append(cell.source)
        for output in cell.get("outputs", []):
            texts += [output.get("text", ""), output.get("data", {}).get("text/plain", "")]
    return words("\n".join(texts))


def page_words(page: Path) -> str:
    """The words a rendered HTML page shows (tags dropped, entities decoded)."""
    return words(html.unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))))


@cache
def solution_lines(path: Path) -> tuple[str, ...]:
    """The solution lines of the notebook at ``path``, each as :func:`words`."""
    notebook = nbformat.read(path, as_version=4)
    rest = notebook_words(notebook, solutions=False)
    blocks = [cell.source for cell in notebook.cells if is_solutions(cell)]
    lines = {
        words(LIST_MARKER.sub("", line))
        for block in blocks
        for line in block.splitlines()
        if len(line.strip()) > 30 and not line.lstrip().startswith("<")  # not <details>
    }
    return tuple(sorted(line for line in lines if line not in rest))


def self_checks(path: Path) -> tuple[str, ...]:
    """The self-check cells of the notebook at ``path``, each as :func:`words`."""
    cells = nbformat.read(path, as_version=4).cells
    return tuple(words(cell.source) for cell in cells if cell.source.startswith("# self-check"))
