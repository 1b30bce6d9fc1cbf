"""Execute the course's notebooks top to bottom (used by `make run` and `make outputs`).

python tools/run_notebooks.py --output-dir build   # executed copies + HTML under build/
python tools/run_notebooks.py --in-place           # refresh the committed outputs
python tools/run_notebooks.py --in-place notebooks/01_preprocessing.ipynb
python tools/run_notebooks.py --tidy               # only apply figure policy and format (below)

With --output-dir, also writes index.html there: the course's notebooks in order, each with its
title, goal and run time (read from its opening markdown cell) and a link to its rendered page,
so a class can read the course without running it. A notebook whose run failed is listed as
failed (its page stops at the failing cell); one not rendered yet is listed without a link.

Prints each code cell as it starts, so a long run shows where it is. A notebook that fails is
reported (notebook, cell, error in plain text) and kept with its outputs up to the failing cell
(never over a committed notebook); the remaining notebooks still run, and the exit status says
that something failed.

Every notebook it writes is tidied: its figures stored by the course's figure policy
(``shrink_png``: 256-colour palette PNGs, every figure kept, about a third of matplotlib's
bytes) and its metadata what JupyterLab itself writes (``tidy_metadata``), so that opening and
saving a notebook changes nothing in git.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import html
import io
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError
from nbconvert import HTMLExporter
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO_ROOT / "notebooks"
# The longest cell (05's side-by-side training runs) takes about 25 minutes on a slow 2-core
# machine; under load it can take twice that. nbval uses the same limit (pyproject.toml).
CELL_TIMEOUT_SECONDS = 3600
ANSI_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
HEADING = re.compile(r"^#+\s+(.+)$", re.MULTILINE)
RUN_TIME = "**Run time:**"
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z*`])")
# The sentence of a notebook's opening that says what the reader does there.
GOAL_OPENINGS = ("This notebook", "Here you", "You ")


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


def execute(path: Path) -> tuple[nbformat.NotebookNode, str | None]:
    """Run one notebook in a fresh kernel, with the notebook's folder as working directory.

    Returns the notebook (executed up to the first failing cell) and, if a cell failed, a
    plain-text report of the failure.
    """
    notebook = nbformat.read(path, as_version=4)
    code_indices = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    start = time.perf_counter()
    running: list[int] = []  # the index of the cell that runs now

    def on_cell_start(cell: nbformat.NotebookNode, cell_index: int, **_: object) -> None:
        if cell.cell_type != "code":
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
        return notebook, failure_report(path, notebook, error)
    except CellTimeoutError:
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
NOTEBOOK_METADATA = ("accelerator", "colab", "kernelspec", "language_info")  # Colab's GPU kept


def tidy_metadata(notebook: nbformat.NotebookNode) -> None:
    """Keep the metadata the course uses, as JupyterLab writes it: the kernelspec of ipykernel
    (JupyterLab rewrites any other display name on save), Colab's runtime request, the cell tags
    (``parameters``, ``nbval-ignore-output``); drop anything else (timings, view state)."""
    kept = {key: notebook.metadata[key] for key in NOTEBOOK_METADATA if key in notebook.metadata}
    notebook.metadata = nbformat.from_dict({**kept, "kernelspec": KERNELSPEC})
    for cell in notebook.cells:
        tags = cell.metadata.get("tags")
        cell.metadata = nbformat.from_dict({"tags": tags} if tags else {})


def write(notebook: nbformat.NotebookNode, path: Path, args: argparse.Namespace) -> list[Path]:
    """Save the executed notebook, tidied (in place, or as a copy + HTML under
    ``--output-dir``)."""
    shrink_figures(notebook)
    tidy_metadata(notebook)
    shrink_figures(notebook)
    if args.in_place:
        nbformat.write(notebook, path)
        return [path]
    executed = args.output_dir / path.name
    nbformat.write(notebook, executed)
    html, _ = HTMLExporter().from_notebook_node(notebook)
    rendered = executed.with_suffix(".html")
    rendered.write_text(html, encoding="utf-8")
    return [executed, rendered]


@dataclass(frozen=True)
class NotebookSummary:
    """What the course index says about one notebook, read from its opening markdown cell."""

    title: str
    goal: str
    run_time: str | None


def paragraphs(markdown: str) -> list[str]:
    """The paragraphs of ``markdown``, each on one line."""
    return [" ".join(part.split()) for part in re.split(r"\n\s*\n", markdown) if part.strip()]


def summarize(notebook: nbformat.NotebookNode, fallback_title: str) -> NotebookSummary:
    """Title (first heading), one-sentence goal and stated run time of ``notebook``.

    The goal is the opening's first sentence that begins like "This notebook", "Here you" or
    "You ...", else the last sentence of its first paragraph of prose.
    """
    markdown = [cell.source for cell in notebook.cells if cell.cell_type == "markdown"]
    heading = next((match for text in markdown if (match := HEADING.search(text))), None)
    title = heading.group(1).strip() if heading else fallback_title
    opening = paragraphs(markdown[0]) if markdown else []
    run_time = next(
        (p.removeprefix(RUN_TIME).strip() for p in opening if p.startswith(RUN_TIME)), None
    )
    prose = [p for p in opening if not p.startswith(("#", "<", "*", "-", "$"))]
    sentences = [s for p in prose for s in SENTENCE_END.split(p)]
    fallback_goal = SENTENCE_END.split(prose[0])[-1] if prose else ""
    goal = next((s for s in sentences if s.startswith(GOAL_OPENINGS)), fallback_goal)
    return NotebookSummary(title, goal, run_time)


def inline_html(markdown: str) -> str:
    """One line of markdown as HTML: escaped, with `code`, **bold** and *italics*."""
    text = html.escape(markdown, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)


def has_failed(notebook: nbformat.NotebookNode) -> bool:
    """Whether an executed notebook stopped at an error."""
    return any(
        output.get("output_type") == "error"
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


def index_entry(source: Path, output_dir: Path) -> str:
    """The index's list item for one notebook (its executed copy in ``output_dir`` if any)."""
    executed, rendered = output_dir / source.name, output_dir / f"{source.stem}.html"
    try:
        notebook = nbformat.read(executed if executed.is_file() else source, as_version=4)
    except (OSError, ValueError):  # unreadable (being rewritten?): listed by its file name
        notebook = nbformat.v4.new_notebook()
    summary = summarize(notebook, source.stem)
    title = inline_html(summary.title)
    if rendered.is_file():
        title = f'<a href="{html.escape(rendered.name)}">{title}</a>'
        if executed.is_file() and has_failed(notebook):
            title += ' <span class="failed">failed: the page stops at the failing cell</span>'
    else:
        title += ' <span class="missing">not rendered yet (make run)</span>'
    lines = [f"<li><h2>{title}</h2>", f'<p class="goal">{inline_html(summary.goal)}</p>']
    if summary.run_time:
        lines.append(
            f'<p class="time"><strong>Run time:</strong> {inline_html(summary.run_time)}</p>'
        )
    return "\n".join([*lines, "</li>"])


INDEX_TEMPLATE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Semantic segmentation with TensorFlow: the course</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 50rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #222; }}
h2 {{ font-size: 1.15rem; margin-bottom: 0.25rem; }}
ol {{ padding-left: 0; list-style: none; }}
li {{ margin-bottom: 1.5rem; }}
p {{ margin: 0.25rem 0; }}
.time {{ color: #555; font-size: 0.9rem; }}
.failed {{ color: #b00020; font-size: 0.85rem; font-weight: normal; }}
.missing {{ color: #777; font-size: 0.85rem; font-weight: normal; }}
code {{ background: #f3f3f3; padding: 0 0.2rem; }}
</style>
</head>
<body>
<h1>Semantic segmentation with TensorFlow: the course</h1>
<p>The notebooks in order, executed top to bottom by <code>make run</code>.
Each page shows one notebook with its outputs.</p>
<ol>
{entries}
</ol>
</body>
</html>
"""


def write_index(output_dir: Path, notebooks: list[Path]) -> Path:
    """Write ``output_dir/index.html`` listing ``notebooks`` in order of their file names."""
    ordered = sorted({path.name: path for path in notebooks}.values(), key=lambda p: p.name)
    entries = "\n".join(index_entry(path, output_dir) for path in ordered)
    index = output_dir / "index.html"
    index.write_text(INDEX_TEMPLATE.format(entries=entries), encoding="utf-8")
    return index


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
    if args.tidy:
        for path in paths:
            notebook = nbformat.read(path, as_version=4)
            before, after = shrink_figures(notebook)
            tidy_metadata(notebook)
            nbformat.write(notebook, path)
            print(f"{shown(path)}: figures {before / 1024:,.0f} -> {after / 1024:,.0f} KiB")
        return 0
    if args.output_dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    total_start = time.perf_counter()
    for path in paths:
        print(f"==> executing {shown(path)} ...", flush=True)
        start = time.perf_counter()
        notebook, failure = execute(path)
        if failure:
            failures.append(failure)
            print(failure, flush=True)
            if args.in_place:
                print("    not written: the committed notebook keeps its outputs", flush=True)
                continue
        written = write(notebook, path, args)
        where = ", ".join(shown(p) for p in written)
        print(f"    done in {time.perf_counter() - start:.0f} s -> {where}", flush=True)
    if args.output_dir:
        course = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
        index = write_index(args.output_dir, [*course, *paths])
        print(f"==> course pages: {shown(index)} links every rendered notebook")
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
