"""Execute the course's notebooks top to bottom (used by `make run` and `make outputs`).

python tools/run_notebooks.py --output-dir build   # executed copies + HTML under build/
python tools/run_notebooks.py --in-place           # refresh the committed outputs
python tools/run_notebooks.py --in-place notebooks/01_preprocessing.ipynb
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO_ROOT / "notebooks"


def execute(path: Path) -> nbformat.NotebookNode:
    """Run one notebook in a fresh kernel, with the notebook's folder as working directory."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=1800,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
    )
    client.execute()
    return notebook


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--output-dir", type=Path, help="write executed copies and HTML here")
    target.add_argument("--in-place", action="store_true", help="overwrite the notebooks")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    args = parser.parse_args()

    paths = [p.resolve() for p in args.notebooks] or sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    if args.output_dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    total_start = time.perf_counter()
    for path in paths:
        print(f"==> executing {path.relative_to(REPO_ROOT)} ...", flush=True)
        start = time.perf_counter()
        notebook = execute(path)
        if args.in_place:
            nbformat.write(notebook, path)
            written = [path]
        else:
            executed = args.output_dir / path.name
            nbformat.write(notebook, executed)
            html, _ = HTMLExporter().from_notebook_node(notebook)
            rendered = executed.with_suffix(".html")
            rendered.write_text(html, encoding="utf-8")
            written = [executed, rendered]
        shown = ", ".join(str(p.resolve().relative_to(REPO_ROOT)) for p in written)
        print(f"    done in {time.perf_counter() - start:.0f} s -> {shown}", flush=True)
    where = "notebooks/ (in place)" if args.in_place else f"{args.output_dir}/"
    elapsed = time.perf_counter() - total_start
    print(f"==> {len(paths)} notebook(s) executed in {elapsed:.0f} s; results in {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
