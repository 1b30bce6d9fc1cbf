"""Stamp the repository URL into every notebook's Colab badge and bootstrap cell.

The URL lives in one place, ``[project.urls] Repository`` in pyproject.toml. This script writes
it into each notebook's first markdown cell ("Open in Colab" and "View on GitHub" links to the
notebook's own path), into its bootstrap code cell (the one that begins ``# Colab only:``), and
asks Colab for a GPU runtime in the notebook metadata when the notebook trains a model on it (a
CPU runtime otherwise: 01 and 02 train nothing; 08 leaves a lone GPU unused). Only those parts
are changed. On Colab the bootstrap cell clones the repository when its URL answers, else
unpacks the bundle that ``make colab-bundle`` writes (uploaded to /content), else stops and says
which of the two to do.

python tools/stamp_colab.py            # update every notebooks/[0-9]*.ipynb that is out of date
python tools/stamp_colab.py --check    # change nothing; list what is stale, exit 1 if anything
python tools/stamp_colab.py notebooks/01_preprocessing.ipynb   # only these notebooks
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

import nbformat

try:  # imported as tools.stamp_colab (the tests)
    from tools.make_student import COLAB_BUNDLE
except ModuleNotFoundError:  # run as a script: tools/ itself is on sys.path
    from make_student import COLAB_BUNDLE

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO_ROOT / "notebooks"
BRANCH = "main"
BOOTSTRAP_MARKER = "# Colab only:"
# The oldest Keras the course is tested on (Colab's, requirements-colab.txt): older ones get the
# course's own pins.
TESTED_KERAS = (3, 13)
# A notebook that calls one of these trains a model, and asks Colab for a GPU runtime...
TRAINING_CALLS = (".fit(", "training.train(", "load_or_train(", "train_loop(")
# ... unless it hides a lone GPU (08 spreads its runs over logical CPU devices when there are
# fewer than two GPUs, so that every run computes on the same CPU): Colab has one GPU at most.
HIDES_LONE_GPU = 'tf.config.set_visible_devices([], "GPU")'
_BADGE_LINE = re.compile(r"colab-badge\.svg|View%20on-GitHub|View on GitHub")

BOOTSTRAP_TEMPLATE = """\
# Colab only: fetch the course and install `helpers`. On your own machine this does nothing.
import os
import shutil
import subprocess
import sys
from importlib.metadata import version

REPOSITORY_URL = "{url}"
BRANCH = "{branch}"
BUNDLE = "/content/{bundle}"  # the course as one zip, when no repository answers
COURSE_DIR = "/content/course"
if "google.colab" in sys.modules:
    if not os.path.isdir(COURSE_DIR):
        # Does the repository answer? GIT_TERMINAL_PROMPT=0: fail at once, never ask for a login.
        no_login = {{**os.environ, "GIT_TERMINAL_PROMPT": "0"}}
        ls_remote = ["git", "ls-remote", "--exit-code", REPOSITORY_URL, BRANCH]
        try:
            found = subprocess.run(ls_remote, env=no_login, capture_output=True, timeout=20)
            answers = found.returncode == 0
        except subprocess.TimeoutExpired:
            answers = False
        if answers:
            clone = ["git", "clone", "-q", "--depth=1", "--branch", BRANCH, REPOSITORY_URL]
            subprocess.run([*clone, COURSE_DIR], env=no_login, check=True)
        elif os.path.isfile(BUNDLE):
            shutil.unpack_archive(BUNDLE, COURSE_DIR)
        else:
            raise RuntimeError(
                f"Cannot reach {{REPOSITORY_URL}}. Upload {bundle} (made by"
                " `make colab-bundle`) to /content via the Files pane, or set REPOSITORY_URL to a"
                " repository you can reach; then run this cell again."
            )
        # --no-deps keeps the TensorFlow and Keras that Colab ships: nothing to restart;
        # --no-build-isolation builds with Colab's setuptools, not one fetched from an index.
        pip = [sys.executable, "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "--no-deps", "--no-build-isolation", "-e", COURSE_DIR], check=True)
        keras_version = version("keras")
        if tuple(int(part) for part in keras_version.split(".")[:2]) < {tested_keras}:
            # Older than any Keras the course tests: install its pinned TensorFlow and Keras
            # from requirements.txt instead; the runtime then has to restart once.
            with open(os.path.join(COURSE_DIR, "requirements.txt")) as pins:
                wanted = [p.strip() for p in pins if p.startswith(("tensorflow==", "keras=="))]
            subprocess.run([*pip, *wanted], check=True)
            print(f"Colab's Keras {{keras_version}} is older than the course tests: installed",
                  *wanted, "- restart: Runtime > Restart session, then run all.")
        else:
            print(f"Using Colab's TensorFlow {{version('tensorflow')}} and Keras {{keras_version}}"
                  " (`make colab-check` tests the course on Colab's versions).")
    os.chdir(os.path.join(COURSE_DIR, "notebooks"))
    sys.path.insert(0, COURSE_DIR)"""


def repository_url(pyproject: Path = REPO_ROOT / "pyproject.toml") -> str:
    """The GitHub URL under ``[project.urls] Repository``, without a trailing slash."""
    with pyproject.open("rb") as file:
        url = tomllib.load(file)["project"]["urls"]["Repository"].rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"{pyproject}: Repository must be https://github.com/<owner>/<repo>")
    return url


def badge_lines(url: str, notebook: str) -> list[str]:
    """The two badge lines for ``notebook`` (its path relative to the repository root)."""
    owner_repo = url.removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{owner_repo}/blob/{BRANCH}/{notebook}"
    github = f"{url}/blob/{BRANCH}/{notebook}"
    return [
        f'<a href="{colab}"><img src="https://colab.research.google.com/assets/colab-badge.svg"'
        ' alt="Open In Colab"/></a>',
        f'<a href="{github}"><img src="https://img.shields.io/badge/View%20on-GitHub-181717?'
        'logo=github" alt="View on GitHub"/></a>',
    ]


def bootstrap_source(url: str) -> str:
    """The bootstrap cell's code for this repository URL."""
    return BOOTSTRAP_TEMPLATE.format(
        url=url, branch=BRANCH, bundle=COLAB_BUNDLE, tested_keras=TESTED_KERAS
    )


def stamp(notebook: nbformat.NotebookNode, relative_path: str, url: str) -> list[str]:
    """Update ``notebook`` in place; return what changed (empty when it was up to date)."""
    changes = []
    markdown = next((c for c in notebook.cells if c.cell_type == "markdown"), None)
    if markdown is None:
        markdown = nbformat.v4.new_markdown_cell(f"# {Path(relative_path).stem}")
        notebook.cells.insert(0, markdown)
    lines = markdown.source.split("\n")
    badges = badge_lines(url, relative_path)
    found = [i for i, line in enumerate(lines) if _BADGE_LINE.search(line)]
    if found:
        new_lines = (
            lines[: found[0]]
            + badges
            + [line for i, line in enumerate(lines[found[0] :], found[0]) if i not in found]
        )
    else:  # right after the title, as a paragraph of its own
        title = next((i for i, line in enumerate(lines) if line.startswith("# ")), -1)
        head, rest = lines[: title + 1], lines[title + 1 :]
        while rest and not rest[0].strip():
            rest = rest[1:]
        new_lines = [*head, *([""] if head else []), *badges, *(["", *rest] if rest else [])]
    if new_lines != lines:
        markdown.source = "\n".join(new_lines)
        changes.append("badge" if found else "badge (added)")

    code = bootstrap_source(url)
    bootstrap = next(
        (
            c
            for c in notebook.cells
            if c.cell_type == "code" and c.source.lstrip().startswith(BOOTSTRAP_MARKER)
        ),
        None,
    )
    if bootstrap is None:
        first_code = next(
            (i for i, c in enumerate(notebook.cells) if c.cell_type == "code"),
            len(notebook.cells),
        )
        notebook.cells.insert(first_code, nbformat.v4.new_code_cell(code))
        changes.append("bootstrap cell (added)")
    elif bootstrap.source != code:
        bootstrap.source = code
        changes.append("bootstrap cell")

    metadata = notebook.metadata
    colab = metadata.setdefault("colab", {})
    if wants_gpu(notebook):
        if metadata.get("accelerator") != "GPU":
            metadata["accelerator"] = "GPU"
            changes.append("metadata accelerator: GPU")
        if "gpuType" not in colab:
            colab["gpuType"] = "T4"
            changes.append("metadata colab.gpuType: T4")
    elif "accelerator" in metadata or "gpuType" in colab:
        metadata.pop("accelerator", None)
        colab.pop("gpuType", None)
        changes.append("metadata: a CPU runtime (the notebook trains nothing on a GPU)")
    return changes


def _code(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(c.source for c in notebook.cells if c.cell_type == "code")


def trains(notebook: nbformat.NotebookNode) -> bool:
    """Whether a notebook trains a model (calls one of :data:`TRAINING_CALLS`)."""
    code = _code(notebook)
    return any(call in code for call in TRAINING_CALLS)


def wants_gpu(notebook: nbformat.NotebookNode) -> bool:
    """Whether a notebook should open on a Colab GPU runtime: it trains, and does not hide a
    lone GPU (:data:`HIDES_LONE_GPU`)."""
    return trains(notebook) and HIDES_LONE_GPU not in _code(notebook)


def notebook_paths(arguments: list[Path]) -> list[Path]:
    return [p.resolve() for p in arguments] or sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale notebooks, change none")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    args = parser.parse_args(argv)
    url = repository_url()
    stale = 0
    for path in notebook_paths(args.notebooks):
        notebook = nbformat.read(path, as_version=4)
        relative = path.relative_to(REPO_ROOT).as_posix()
        changes = stamp(notebook, relative, url)
        if not changes:
            continue
        stale += 1
        if args.check:
            print(f"{relative}: stale {', '.join(changes)}")
        else:
            nbformat.write(notebook, path)
            print(f"{relative}: stamped {', '.join(changes)}")
    if args.check and stale:
        print("Fix: .venv/bin/python tools/stamp_colab.py")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
