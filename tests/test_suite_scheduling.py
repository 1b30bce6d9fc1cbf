"""conftest.py: how the suite shares its two workers (pytest-xdist), which tests are slow, and
where notebooks under test keep their models."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).parents[1]
NOTEBOOKS = REPO_ROOT / "notebooks"
RULES = REPO_ROOT / "conftest.py"
# Read before this module runs the conftest itself (which would set it when missing): under
# `make test` pytest has loaded conftest.py already, and it must have set this.
THREADS_BEFORE_THIS_MODULE = os.environ.get("TF_NUM_INTRAOP_THREADS")
spec = importlib.util.spec_from_file_location("notebook_units", RULES)
notebook_units = importlib.util.module_from_spec(spec)
spec.loader.exec_module(notebook_units)


def test_a_notebook_that_loads_03s_model_runs_in_03s_unit_and_the_others_alone():
    unit = notebook_units.work_unit
    maker = "notebooks/03_build_and_train.ipynb"
    assert unit(f"{maker}::Cell 4") == maker
    assert unit("notebooks/04_evaluation.ipynb::Cell 3") == maker
    assert unit("notebooks/06_hard_cases.ipynb::Cell 0") == maker
    # the small-budget copies (make test) keep the rule in their own folder
    if (REPO_ROOT / "build/small-budget/04_evaluation.ipynb").is_file():
        copy = "build/small-budget/04_evaluation.ipynb::Cell 3"
        assert unit(copy) == "build/small-budget/03_build_and_train.ipynb"
    for alone in (
        "01_preprocessing",
        "02_softmax",
        "05_troubleshooting_slow_training",
        "07_transfer_learning_and_your_photos",
        "08_scaling_out",
    ):
        assert unit(f"notebooks/{alone}.ipynb::Cell 2") == f"notebooks/{alone}.ipynb"
    assert unit("tests/test_metrics.py::test_iou[case]") == "tests/test_metrics.py"


def test_every_notebook_that_loads_03s_model_comes_after_03():
    notebooks = sorted(path.name for path in NOTEBOOKS.glob("[0-9]*.ipynb"))
    loaders = [
        name for name in notebooks if notebook_units.loads_the_saved_model(f"notebooks/{name}")
    ]
    assert loaders and all(name > "03" for name in loaders), loaders


def test_each_worker_gets_its_share_of_the_cores_and_at_least_one_thread():
    threads = notebook_units.tensorflow_threads
    assert threads(cores=2, workers=2) == 1
    assert threads(cores=8, workers=2) == 4
    assert threads(cores=1, workers=2) == 1


def test_under_make_test_this_worker_runs_tensorflow_on_its_share_of_the_cores(request):
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if not workers:
        pytest.skip("run without pytest-xdist workers (make test runs two)")
    if not any(item.nodeid.split("::")[0].endswith(".ipynb") for item in request.session.items):
        pytest.skip("no notebook in this run, so no notebook kernel needs the setting")
    loaded = {
        Path(plugin.__file__).resolve()
        for plugin in request.config.pluginmanager.get_plugins()
        if getattr(plugin, "__file__", None)
    }
    assert RULES.resolve() in loaded, "pytest did not load the rules"
    expected = notebook_units.tensorflow_threads(notebook_units.usable_cores(), workers)
    assert str(expected) == THREADS_BEFORE_THIS_MODULE


def test_notebooks_under_test_keep_their_models_out_of_the_readers_artifacts():
    from helpers import ARTIFACTS_DIR

    assert Path(os.environ["COURSE_ARTIFACTS_DIR"]) == ARTIFACTS_DIR
    assert ARTIFACTS_DIR != REPO_ROOT / "artifacts"


def test_the_committed_notebooks_are_slow_and_their_small_budget_copies_are_not():
    """`make verify` (-m slow) runs the lessons at full budget; `make test` the copies."""
    at_lesson_budget = notebook_units.runs_at_lesson_budget
    assert at_lesson_budget(NOTEBOOKS / "03_build_and_train.ipynb")
    assert not at_lesson_budget(REPO_ROOT / "build/small-budget/03_build_and_train.ipynb")
    assert not at_lesson_budget(REPO_ROOT / "tests/test_metrics.py")
