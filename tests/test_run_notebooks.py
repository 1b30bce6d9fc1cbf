"""tools/run_notebooks.py: progress while it runs, a plain-text report when a cell fails."""

from __future__ import annotations

import sys

import nbformat
import pytest

from tools import run_notebooks


def write_notebook(path, *sources: str) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# title")]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(notebook, path)


@pytest.fixture
def notebooks(tmp_path):
    good, bad = tmp_path / "01_good.ipynb", tmp_path / "02_bad.ipynb"
    write_notebook(good, "print('hello')")
    write_notebook(bad, "x = 1", "raise ValueError('the \\x1b[31mred\\x1b[0m error')", "x = 2")
    return good, bad


def run(monkeypatch, *arguments: str) -> int:
    monkeypatch.setattr(sys, "argv", ["run_notebooks.py", *arguments])
    return run_notebooks.main()


def test_a_failing_cell_is_reported_in_plain_text_and_later_notebooks_still_run(
    notebooks, tmp_path, monkeypatch, capsys
):
    good, bad = notebooks
    output_dir = tmp_path / "build"
    assert run(monkeypatch, "--output-dir", str(output_dir), str(bad), str(good)) == 1
    printed = capsys.readouterr().out
    assert "cell 2/3: raise ValueError" in printed, "progress names each cell as it starts"
    assert (
        "FAILED: 02_bad.ipynb" in printed and "cell 2 (counting markdown cells from 0)" in printed
    )
    assert "ValueError: the red error" in printed and "\x1b[" not in printed
    assert (output_dir / "01_good.html").is_file(), "the notebook after the failing one ran"
    partial = nbformat.read(output_dir / "02_bad.ipynb", as_version=4)
    assert partial.cells[3].outputs == [], "cells after the failure did not run"


def test_in_place_never_overwrites_a_notebook_whose_run_failed(notebooks, monkeypatch, capsys):
    good, bad = notebooks
    before = bad.read_bytes()
    assert run(monkeypatch, "--in-place", str(bad), str(good)) == 1
    assert bad.read_bytes() == before
    assert "not written" in capsys.readouterr().out
    executed = nbformat.read(good, as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "hello\n"
