"""How the course stores its notebooks: the figure policy and JupyterLab's own metadata
(applied by ``tools/run_notebooks.py`` to every notebook it writes, and by its ``--tidy``), and
the solutions block that students' copies and pages leave out."""

from __future__ import annotations

import base64
import binascii
import copy
import io

import nbformat
from PIL import Image


def shrink_png(png: bytes) -> bytes:
    """The figure policy: ``png`` as a 256-colour palette PNG with Floyd-Steinberg dithering
    (same pixels wide and high, text and lines as sharp, the colours of photos kept on average),
    or unchanged when that is not smaller.

    Matplotlib's inline PNGs are 24-bit; most of their bytes encode antialiasing shades nobody
    sees. nbval never compares images, so the policy changes nothing that the tests check.
    """
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        if image.mode == "P":  # a palette image already (shrunk before): nothing to gain
            return png
        rgb = image.convert("RGB")
    palette = rgb.quantize(
        colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG
    )
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True)
    smaller = buffer.getvalue()
    return smaller if len(smaller) < len(png) else png


def shrink_figures(notebook: nbformat.NotebookNode) -> tuple[int, int]:
    """Apply the figure policy to every PNG output of ``notebook``, in place.

    Returns the size of the PNG outputs (base64 bytes) before and after.
    """
    before = after = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if not data.get("image/png"):
                continue
            encoded = data["image/png"]
            try:
                png = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):  # not base64: not a figure this policy knows
                continue
            shrunk = base64.b64encode(shrink_png(png)).decode("ascii")
            before, after = before + len(encoded), after + len(shrunk)
            data["image/png"] = shrunk
    return before, after


KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
# Colab's GPU request; the execution record (tools/records.py) and the small test budget
# (tools/small_budget.py)
NOTEBOOK_METADATA = (
    "accelerator",
    "colab",
    "execution_record",
    "kernelspec",
    "language_info",
    "small_budget",
)


def tidy_metadata(notebook: nbformat.NotebookNode) -> None:
    """Keep the metadata the course uses, as JupyterLab writes it: the kernelspec of ipykernel
    (JupyterLab rewrites any other display name on save), Colab's runtime request, the cell tags
    (``parameters``, ``nbval-ignore-output``); drop anything else (timings, view state)."""
    kept = {key: notebook.metadata[key] for key in NOTEBOOK_METADATA if key in notebook.metadata}
    notebook.metadata = nbformat.from_dict({**kept, "kernelspec": KERNELSPEC})
    for cell in notebook.cells:
        tags = cell.metadata.get("tags")
        cell.metadata = nbformat.from_dict({"tags": tags} if tags else {})


# A notebook's solutions: the collapsed markdown cell after its exercises that begins so.
SOLUTIONS_MARKER = "<details><summary>Solutions</summary>"


def is_solution_cell(cell: nbformat.NotebookNode) -> bool:
    """Whether ``cell`` is a notebook's solutions block."""
    return cell.cell_type == "markdown" and cell.source.lstrip().startswith(SOLUTIONS_MARKER)


def without_solutions(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` without its solutions block (outputs and metadata kept)."""
    kept = copy.deepcopy(notebook)
    kept.cells = [cell for cell in kept.cells if not is_solution_cell(cell)]
    return kept
