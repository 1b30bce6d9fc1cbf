"""The test suite's rules: which tests are slow, where notebooks keep their models, and how two
pytest-xdist workers share the notebooks and the unit tests.

`make test` runs the small-budget copies of the notebooks (``tools/small_budget.py`` writes them
to ``build/small-budget/``) and the unit tests not marked ``slow``; `make verify` runs the
committed notebooks at their lesson budgets (each of their cells is marked ``slow`` here) and the
``slow`` unit tests. Notebooks run by the suite keep their models in ``build/test-artifacts/``
(``COURSE_ARTIFACTS_DIR``, emptied by the Makefile before each run), never in the reader's
``artifacts/``.

nbval makes one test per cell, and a notebook's cells must run in order in one kernel: each
notebook is one unit of work, sent whole to one worker. A notebook that loads the model notebook
03 saves (it calls `training.load_or_train`) joins 03's unit and runs after it on the same
worker; run before 03 has finished, it would train a model of its own and print something else
than its committed output. A unit-test file is one unit too (its module fixtures are built once).
Units start in collection order (the Makefile names the notebooks before tests/, so the long
notebooks start at once); a worker takes the next unit when it runs out of work. TensorFlow in
each worker and its kernels runs on its share of the cores (one thread each on two cores; see
below).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def tensorflow_threads(cores: int, workers: int) -> int:
    """Threads for TensorFlow's ops in each of ``workers`` processes that share ``cores``."""
    return max(1, cores // workers)


# Each worker, and each notebook kernel it starts (a kernel inherits its environment), gives
# TensorFlow's ops its share of the cores. By default TensorFlow uses every core in every
# process, and two processes on two cores then fight over them: on 2 cores, two 10-epoch recipe
# trainings side by side took 89 s with the default and 64-68 s with one thread each, while one
# training alone took 42-48 s with either. Set here, before any test module imports TensorFlow.
if workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):
    os.environ.setdefault(
        "TF_NUM_INTRAOP_THREADS", str(tensorflow_threads(usable_cores(), workers))
    )

MODEL_MAKER = "03_build_and_train.ipynb"
LOADS_THE_MODEL = "load_or_train("
REPO_ROOT = Path(__file__).resolve().parent
COMMITTED_NOTEBOOKS = REPO_ROOT / "notebooks"
os.environ.setdefault("COURSE_ARTIFACTS_DIR", str(REPO_ROOT / "build" / "test-artifacts"))


@cache
def loads_the_saved_model(notebook: str) -> bool:
    """Whether a notebook (path relative to the repository) loads the model 03 saves."""
    return LOADS_THE_MODEL in (REPO_ROOT / notebook).read_text(encoding="utf-8")


def work_unit(nodeid: str) -> str:
    """A test's unit of work: its file, or 03's notebook in the same folder for a notebook that
    needs 03's model."""
    path = nodeid.split("::", 1)[0]
    folder, _, name = path.rpartition("/")
    maker = f"{folder}/{MODEL_MAKER}" if folder else MODEL_MAKER
    if path.endswith(".ipynb") and name != MODEL_MAKER and loads_the_saved_model(path):
        return maker
    return path


def runs_at_lesson_budget(path: Path) -> bool:
    """Whether a test file is one of the committed notebooks (not a small-budget copy)."""
    return path.suffix == ".ipynb" and path.resolve().parent == COMMITTED_NOTEBOOKS


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The committed notebooks run at their lesson budgets: every cell of theirs is ``slow``."""
    for item in items:
        if runs_at_lesson_budget(Path(str(item.path))):
            item.add_marker(pytest.mark.slow)


class NotebookUnits(LoadScopeScheduling):
    """xdist's `loadscope` scheduling with the units of :func:`work_unit`."""

    def _split_scope(self, nodeid: str) -> str:
        return work_unit(nodeid)


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: -p no:xdist runs without it
def pytest_xdist_make_scheduler(config, log) -> NotebookUnits:
    return NotebookUnits(config, log)
