"""tools/run_notebooks.py: progress while it runs, a plain-text report when a cell fails."""

from __future__ import annotations

import base64
import io
import sys

import nbformat
import numpy as np
import pytest
from PIL import Image

from tools import notebook_format, run_notebooks


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


def figure_png(width: int = 120, height: int = 80) -> bytes:
    """A photo-like figure (many colours, as an image shown with imshow) with a black line."""
    rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    rgb[height // 2] = 0
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_figure_policy_keeps_every_figure_smaller_and_the_same_size():
    png = figure_png()
    shrunk = notebook_format.shrink_png(png)
    assert len(shrunk) < len(png)
    with Image.open(io.BytesIO(shrunk)) as image:
        assert image.size == (120, 80) and image.mode == "P"
        pixels = np.asarray(image.convert("RGB"), np.int16)
    assert (pixels[40] == 0).all(), "the black line stays black"
    original = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.int16)
    mean_colour_change = np.abs(pixels.mean(axis=(0, 1)) - original.mean(axis=(0, 1)))
    assert (mean_colour_change < 3).all(), "colours kept on average"
    assert notebook_format.shrink_png(shrunk) == shrunk, "applying the policy twice changes nothing"


def test_tidy_shrinks_stored_figures_fixes_metadata_and_executes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "01_figure.ipynb"
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("raise ValueError('never executed')")
    png = base64.b64encode(figure_png()).decode("ascii")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})
    ]
    cell.metadata = {"tags": ["parameters"], "execution": {"iopub.status.busy": "2026"}}
    notebook.cells = [cell]
    notebook.metadata = {"kernelspec": {"display_name": "Python 3", "name": "python3"}, "x": 1}
    nbformat.write(notebook, path)
    assert run(monkeypatch, "--tidy", str(path)) == 0
    tidied = nbformat.read(path, as_version=4)
    assert tidied.metadata == {"kernelspec": notebook_format.KERNELSPEC}
    stored = tidied.cells[0]
    assert stored.metadata == {"tags": ["parameters"]}
    assert stored.source == cell.source and len(stored.outputs) == 1
    assert len(stored.outputs[0].data["image/png"]) < len(png)
    assert stored.outputs[0].data["text/plain"] == "<Figure>"


def test_committed_notebooks_stay_light():
    """Each committed notebook stays under 600 KB (issue 17: the course under 2 MB in all)."""
    notebooks = sorted(run_notebooks.NOTEBOOKS.glob("[0-9]*.ipynb"))
    sizes = {path.name: path.stat().st_size for path in notebooks}
    heavy = {name: size for name, size in sizes.items() if size > 600_000}
    assert not heavy, f"over 600 KB (run tools/run_notebooks.py --tidy): {heavy}"
    assert sum(sizes.values()) < 2_000_000


def test_a_cell_that_times_out_is_reported_and_the_run_goes_on(tmp_path, monkeypatch, capsys):
    slow, good = tmp_path / "01_slow.ipynb", tmp_path / "02_good.ipynb"
    write_notebook(slow, "x = 1", "import time; time.sleep(30)")
    write_notebook(good, "print('hello')")
    monkeypatch.setattr(run_notebooks, "CELL_TIMEOUT_SECONDS", 2)
    assert run(monkeypatch, "--output-dir", str(tmp_path / "out"), str(slow), str(good)) == 1
    printed = capsys.readouterr().out
    assert "FAILED: 01_slow.ipynb" in printed and "timed out after 2 s" in printed
    assert "cell 2 (counting markdown cells from 0): import time; time.sleep(30)" in printed
    assert (tmp_path / "out" / "02_good.ipynb").is_file()
