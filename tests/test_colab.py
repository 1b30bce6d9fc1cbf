"""Colab: badges and bootstrap cells agree with the one repository URL, and the bootstrap works.

The bootstrap is run in a subprocess with a fake ``google.colab`` module, on each of its three
paths: cloning this repository from a local ``file://`` URL into a temporary folder; unpacking a
bundle built by ``make colab-bundle``'s code when a stub ``git`` (first on PATH) fails or hangs;
stopping with one message when there is neither. ``pip`` is recorded, not run (it would change
this machine's environment).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from tools import make_student, stamp_colab
from tools.notebook_format import is_solution_cell

URL = stamp_colab.repository_url()
NOTEBOOK_PATHS = stamp_colab.notebook_paths([])


def _bootstrap_cell(notebook: nbformat.NotebookNode) -> str:
    cells = [c.source for c in notebook.cells if c.cell_type == "code"]
    return next(s for s in cells if s.startswith(stamp_colab.BOOTSTRAP_MARKER))


def test_every_notebook_agrees_with_the_repository_url():
    assert NOTEBOOK_PATHS, "no notebooks found"
    stale = {}
    for path in NOTEBOOK_PATHS:
        notebook = nbformat.read(path, as_version=4)
        relative = path.relative_to(stamp_colab.REPO_ROOT).as_posix()
        changes = stamp_colab.stamp(notebook, relative, URL)
        if changes:
            stale[relative] = changes
    assert not stale, f"stale Colab cells {stale}; fix: .venv/bin/python tools/stamp_colab.py"
    for path in NOTEBOOK_PATHS:  # the same, said plainly
        notebook = nbformat.read(path, as_version=4)
        relative = path.relative_to(stamp_colab.REPO_ROOT).as_posix()
        first_markdown = next(c for c in notebook.cells if c.cell_type == "markdown").source
        colab = URL.replace("https://github.com/", "https://colab.research.google.com/github/")
        assert f'href="{colab}/blob/main/{relative}"' in first_markdown
        assert f'href="{URL}/blob/main/{relative}"' in first_markdown
        assert f'REPOSITORY_URL = "{URL}"' in _bootstrap_cell(notebook)
        trains = path.name[:2] not in ("01", "02")  # 01 and 02 train nothing
        assert stamp_colab.trains(notebook) == trains, path.name
        on_gpu = trains and path.name[:2] != "08"  # 08 leaves a lone GPU unused
        assert stamp_colab.wants_gpu(notebook) == on_gpu, path.name
        assert notebook.metadata.get("accelerator") == ("GPU" if on_gpu else None), path.name
    assert stamp_colab.main(["--check"]) == 0


def _notebook(markdown: str, *code: str) -> nbformat.NotebookNode:
    cells = [nbformat.v4.new_markdown_cell(markdown)]
    cells += [nbformat.v4.new_code_cell(source) for source in code]
    return nbformat.v4.new_notebook(cells=cells)


def test_stamp_replaces_a_stale_badge_and_bootstrap():
    old_url = "https://github.com/someone-else/old-name"
    old = "\n".join(stamp_colab.badge_lines(old_url, "notebooks/09_x.ipynb"))
    notebook = _notebook(
        f"# 09 · X\n\n{old}\n\nText.", stamp_colab.bootstrap_source(old_url), "model.fit(x)"
    )
    notebook.metadata.update(accelerator="None", colab={"gpuType": "A100"})
    changes = stamp_colab.stamp(notebook, "notebooks/09_x.ipynb", URL)
    assert changes == ["badge", "bootstrap cell", "metadata accelerator: GPU"]
    lines = notebook.cells[0].source.split("\n")
    assert lines == [
        "# 09 · X",
        "",
        *stamp_colab.badge_lines(URL, "notebooks/09_x.ipynb"),
        "",
        "Text.",
    ]
    assert old_url not in notebook.cells[1].source and URL in notebook.cells[1].source
    assert notebook.cells[2].source == "model.fit(x)"  # other cells untouched
    assert notebook.metadata["colab"]["gpuType"] == "A100"  # a chosen GPU type is kept
    assert stamp_colab.stamp(notebook, "notebooks/09_x.ipynb", URL) == []  # idempotent


def test_a_notebook_that_trains_nothing_asks_for_a_cpu_runtime():
    notebook = _notebook("# 11 · Z", stamp_colab.bootstrap_source(URL), "import numpy")
    notebook.metadata.update(accelerator="GPU", colab={"gpuType": "T4", "provenance": []})
    changes = stamp_colab.stamp(notebook, "notebooks/11_z.ipynb", URL)
    assert changes == [
        "badge (added)",
        "metadata: a CPU runtime (the notebook trains nothing on a GPU)",
    ]
    assert "accelerator" not in notebook.metadata
    assert notebook.metadata["colab"] == {"provenance": []}
    notebook.cells.append(nbformat.v4.new_code_cell("model.fit(batches)"))
    assert stamp_colab.stamp(notebook, "notebooks/11_z.ipynb", URL) == [
        "metadata accelerator: GPU",
        "metadata colab.gpuType: T4",
    ]
    notebook.cells.append(nbformat.v4.new_code_cell(stamp_colab.HIDES_LONE_GPU))  # as 08 does
    assert stamp_colab.stamp(notebook, "notebooks/11_z.ipynb", URL) == [
        "metadata: a CPU runtime (the notebook trains nothing on a GPU)"
    ]


def test_stamp_adds_a_missing_badge_and_bootstrap():
    notebook = _notebook("# 10 · Y\nWhat you learn.", "import helpers\ntraining.train(data)")
    changes = stamp_colab.stamp(notebook, "notebooks/10_y.ipynb", URL)
    assert changes == [
        "badge (added)",
        "bootstrap cell (added)",
        "metadata accelerator: GPU",
        "metadata colab.gpuType: T4",
    ]
    badges = stamp_colab.badge_lines(URL, "notebooks/10_y.ipynb")
    assert notebook.cells[0].source.split("\n") == ["# 10 · Y", "", *badges, "", "What you learn."]
    assert [c.source.split("\n")[0] for c in notebook.cells[1:]] == [
        stamp_colab.BOOTSTRAP_MARKER + " fetch the course and install `helpers`. On your own "
        "machine this does nothing.",
        "import helpers",
    ]
    assert stamp_colab.stamp(notebook, "notebooks/10_y.ipynb", URL) == []


def test_repository_url_must_be_a_github_repository(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project.urls]\nRepository = "https://example.org/course"\n')
    with pytest.raises(ValueError, match=r"github\.com/<owner>/<repo>"):
        stamp_colab.repository_url(pyproject)


# --- the bootstrap cell itself ------------------------------------------------------------------

DRIVER = """
import importlib.metadata, json, os, subprocess, sys, types

calls = []
git_prompts = []
run = subprocess.run


def recorded(command, *args, **kwargs):
    if command[:3] == [sys.executable, "-m", "pip"]:
        calls.append(command[3:])  # recorded, not run: it would change this environment
        return subprocess.CompletedProcess(command, 0)
    if command[0] == "git":
        calls.append(command[:2])
        git_prompts.append(kwargs.get("env", os.environ).get("GIT_TERMINAL_PROMPT"))
    return run(command, *args, **kwargs)


subprocess.run = recorded
real_version = importlib.metadata.version


def version(name):
    return KERAS_VERSION if name == "keras" and KERAS_VERSION else real_version(name)


importlib.metadata.version = version
sys.modules["google.colab"] = types.ModuleType("google.colab")
result = {}
try:
    exec(CELL, {})
    exec(CELL, {})  # a second run (the course is there already) only changes directory
except Exception as error:
    result["error"] = f"{type(error).__name__}: {error}"
result.update(calls=calls, git_prompts=git_prompts, cwd=os.getcwd())
if IMPORT_HELPERS:
    import helpers

    result["helpers"] = helpers.__file__
print("RESULT", json.dumps(result))
"""


@pytest.fixture(scope="module")
def local_origin(tmp_path_factory) -> str:
    """A bare copy of this repository's HEAD as branch ``main``, as a file:// URL."""
    origin = tmp_path_factory.mktemp("origin") / "course.git"
    git = ["git", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q", "--bare", str(origin)], check=True)
    subprocess.run(
        [*git, "-C", str(stamp_colab.REPO_ROOT), "push", "-q", str(origin), "HEAD:refs/heads/main"],
        check=True,
    )
    return origin.as_uri()


@pytest.fixture
def unanswering_git(tmp_path) -> Callable[[str], dict[str, str]]:
    """Factory: an environment whose ``git`` is a stub running ``script`` (e.g. ``exit 128``,
    what git does for a repository that does not exist or asks for a login)."""

    def make(script: str) -> dict[str, str]:
        stub = tmp_path / "stub-bin" / "git"
        stub.parent.mkdir(exist_ok=True)
        stub.write_text(f"#!/bin/sh\n{script}\n")
        stub.chmod(0o755)
        return {**os.environ, "PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}"}

    return make


def _run_bootstrap(cell: str, origin: str, course: Path, **options: object) -> dict:
    """Run ``cell`` as on Colab (with ``origin`` as the repository, ``course`` as the course
    folder and ``options["bundle"]`` as the uploaded zip's path) in a fresh interpreter."""
    bundle = options.get("bundle", course.parent / "no-bundle-uploaded.zip")
    cell = re.sub(r'REPOSITORY_URL = ".*"', f"REPOSITORY_URL = {origin!r}", cell)
    cell = re.sub(r'COURSE_DIR = ".*"', f"COURSE_DIR = {str(course)!r}", cell)
    cell = re.sub(r'BUNDLE = "[^"]*"', f"BUNDLE = {str(bundle)!r}", cell)
    if "ls_remote_timeout" in options:
        assert "timeout=20" in cell
        cell = cell.replace("timeout=20", f"timeout={options['ls_remote_timeout']}")
    driver = textwrap.dedent(DRIVER).replace("CELL", repr(cell))
    driver = driver.replace("KERAS_VERSION", repr(options.get("keras_version")))
    driver = driver.replace("IMPORT_HELPERS", repr(options.get("import_helpers", False)))
    completed = subprocess.run(
        [sys.executable, "-c", driver],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=course.parent,
        env=options.get("env"),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result_line = completed.stdout.strip().splitlines()[-1]
    assert result_line.startswith("RESULT ")
    return {**json.loads(result_line.removeprefix("RESULT ")), "stdout": completed.stdout}


def test_bootstrap_on_colab_clones_installs_and_imports_helpers(local_origin, tmp_path):
    cell = _bootstrap_cell(nbformat.read(NOTEBOOK_PATHS[0], as_version=4))
    course = tmp_path / "course"
    result = _run_bootstrap(cell, local_origin, course, import_helpers=True)
    assert result["calls"] == [
        ["git", "ls-remote"],  # the repository answers ...
        ["git", "clone"],  # ... so it is cloned
        ["install", "-q", "--no-deps", "--no-build-isolation", "-e", str(course)],
    ]  # Colab's TensorFlow is kept, and setuptools comes from Colab, not from an index
    assert result["git_prompts"] == ["0", "0"], "git must never wait for a login"
    assert result["cwd"] == str(course / "notebooks")
    assert result["helpers"] == str(course / "helpers" / "__init__.py")
    first_line = result["stdout"].splitlines()[0]  # which versions, and why
    assert first_line.startswith("Using Colab's TensorFlow") and "make colab-check" in first_line
    assert (course / "notebooks" / NOTEBOOK_PATHS[0].name).is_file()


@pytest.mark.parametrize(
    ("git_script", "ls_remote_timeout", "student"),
    # git fails at once; git never answers; the students' bundle, unchanged cell
    [("exit 128", 20, False), ("exec sleep 60", 1, False), ("exit 128", 20, True)],
    ids=["repository-missing", "repository-silent", "students-bundle"],
)
def test_bootstrap_unpacks_the_uploaded_bundle_when_the_repository_does_not_answer(
    tmp_path, unanswering_git, git_script, ls_remote_timeout, student
):
    bundle = make_student.build_colab_bundle(tmp_path / "upload", NOTEBOOK_PATHS[:1], student)
    cell = stamp_colab.bootstrap_source(URL)
    course = tmp_path / "course"
    result = _run_bootstrap(
        cell,
        URL,
        course,
        bundle=bundle,
        env=unanswering_git(git_script),
        ls_remote_timeout=ls_remote_timeout,
        import_helpers=True,
    )
    assert "error" not in result, result["error"]
    assert result["calls"] == [
        ["git", "ls-remote"],  # asked once, with no login prompt; then the bundle is used
        ["install", "-q", "--no-deps", "--no-build-isolation", "-e", str(course)],
    ]
    assert result["git_prompts"] == ["0"]
    assert result["cwd"] == str(course / "notebooks")
    assert result["helpers"] == str(course / "helpers" / "__init__.py")
    assert result["stdout"].startswith("Using Colab's TensorFlow")
    unpacked = nbformat.read(course / "notebooks" / NOTEBOOK_PATHS[0].name, as_version=4)
    assert any(map(is_solution_cell, unpacked.cells)) != student, "the flavour uploaded"
    assert (course / "requirements.txt").is_file()


def test_bootstrap_without_repository_or_bundle_stops_with_one_clear_message(
    tmp_path, unanswering_git
):
    cell = stamp_colab.bootstrap_source(URL)
    course = tmp_path / "course"
    result = _run_bootstrap(cell, URL, course, env=unanswering_git("exit 128"))
    assert result["calls"] == [["git", "ls-remote"]], "nothing cloned, nothing installed"
    error = result["error"]
    assert error.startswith(f"RuntimeError: Cannot reach {URL}.")
    for words in (
        f"Upload {make_student.COLAB_BUNDLE} (made by `make colab-bundle`)",
        "to /content via the Files pane",
        "or set REPOSITORY_URL to a repository you can reach",
        "then run this cell again",
    ):
        assert words in error
    assert not course.exists(), "a second run must try again from the start"
    assert result["stdout"].startswith("RESULT")  # the message is the exception, nothing else


@pytest.mark.parametrize(
    ("keras_version", "pins_installed"),
    [("2.15.0", True), ("3.12.1", True), ("3.13.2", False), ("3.15.1", False)],
)
def test_bootstrap_installs_the_pins_only_when_colab_keras_is_older_than_the_tested(
    local_origin, tmp_path, keras_version, pins_installed
):
    cell = stamp_colab.bootstrap_source(URL)
    course = tmp_path / "course"
    result = _run_bootstrap(cell, local_origin, course, keras_version=keras_version)
    pins = (course / "requirements.txt").read_text().split()
    wanted = [p for p in pins if p.startswith(("tensorflow==", "keras=="))]
    assert len(wanted) == 2
    assert (result["calls"][-1] == ["install", "-q", *wanted]) == pins_installed
    assert ("Restart session" in result["stdout"]) == pins_installed
    assert f"Keras {keras_version}" in result["stdout"]


def test_the_oldest_tested_keras_is_colabs():
    """TESTED_KERAS is the Keras that `make colab-check` installs (requirements-colab.txt)."""
    colab = (stamp_colab.REPO_ROOT / "requirements-colab.txt").read_text()
    pinned = re.search(r"^keras==(\d+)\.(\d+)\.", colab, flags=re.MULTILINE)
    assert (int(pinned.group(1)), int(pinned.group(2))) == stamp_colab.TESTED_KERAS


def test_bootstrap_does_nothing_outside_colab(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    cell = _bootstrap_cell(nbformat.read(NOTEBOOK_PATHS[0], as_version=4))
    path_before = list(sys.path)
    exec(cell, {})
    assert Path.cwd() == tmp_path and sys.path == path_before
    assert capsys.readouterr() == ("", "")


# --- the bundle it unpacks ----------------------------------------------------------------------


def test_colab_bundle_holds_helpers_every_notebook_and_what_pip_needs(tmp_path):
    archive = make_student.build_colab_bundle(tmp_path, NOTEBOOK_PATHS)
    assert archive == tmp_path / make_student.COLAB_BUNDLE
    assert make_student.COLAB_BUNDLE in stamp_colab.bootstrap_source(URL)
    with zipfile.ZipFile(archive) as bundle:
        names = set(bundle.namelist())
        first = NOTEBOOK_PATHS[0]
        assert bundle.read(f"notebooks/{first.name}") == first.read_bytes(), "copied as it is"
    assert "helpers/__init__.py" in names  # at the top: the cell unpacks it as the course folder
    assert {f"notebooks/{path.name}" for path in NOTEBOOK_PATHS} <= names
    assert set(make_student.COLAB_BUNDLED_FILES) <= names
    assert {"pyproject.toml", "README.md", "requirements.txt"} <= names  # pip install -e
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    makefile = (stamp_colab.REPO_ROOT / "Makefile").read_text()
    recipe = makefile.split("\ncolab-bundle:", 1)[1].split("\n\n", 1)[0]
    assert "tools/make_student.py --colab-bundle --output-dir build" in recipe
