"""tools/records.py: the execution record of each notebook, and the freshness check that names
the notebooks whose committed outputs older code made."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest

from tools import records

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9]*.ipynb"))
BUILD_AND_TRAIN = REPO_ROOT / "notebooks" / "03_build_and_train.ipynb"


def test_every_notebooks_outputs_were_made_by_the_code_it_runs_today():
    """The freshness check of `make test`: a stale record names the notebooks, what changed and
    the command that refreshes them."""
    report = records.stale_report(NOTEBOOKS)
    assert report is None, f"stale notebook outputs:\n{report}"


RECORD = {
    "machine": {"cpu": "Intel Xeon", "cores": 2, "gpu": None},
    "versions": {"python": "3.11.7", "tensorflow": "2.21.0", "keras": "3.15.1"},
    "wall_time_s": 75,
    "date": "2026-12-06",
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_the_header_states_the_run_time_of_the_record(path):
    notebook = nbformat.read(path, as_version=4)
    record = notebook.metadata[records.RECORD_KEY]
    assert records.run_time_line(record) in notebook.cells[0].source.split("\n\n")
    assert record["parameters"] == records.parameters(notebook)


@pytest.fixture
def course_copy(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of `helpers`, the requirements and notebook 03, with a fresh record."""
    shutil.copytree(REPO_ROOT / "helpers", tmp_path / "helpers")
    shutil.copy(REPO_ROOT / "requirements.txt", tmp_path)
    notebook = nbformat.read(BUILD_AND_TRAIN, as_version=4)
    notebook.metadata[records.RECORD_KEY] = {"code": records.fingerprints(notebook, tmp_path)}
    copy = tmp_path / BUILD_AND_TRAIN.name
    nbformat.write(notebook, copy)
    return tmp_path, copy


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_a_fresh_record_is_fresh(course_copy):
    root, notebook = course_copy
    assert records.stale_report([notebook], root) is None


def test_changing_the_code_of_a_function_03_runs_makes_its_outputs_stale(course_copy):
    root, notebook = course_copy
    edit(root / "helpers" / "training.py", "hexdigest()[:8]", "hexdigest()[:9]")  # config_id
    report = records.stale_report([notebook], root)
    assert report == (
        "03: helpers/training.py changed since their outputs were made\nrun `make outputs NB='03'`"
    )


def test_docstrings_comments_and_formatting_leave_the_record_fresh(course_copy):
    root, notebook = course_copy
    training = root / "helpers" / "training.py"
    edit(training, '"""A short name for a configuration', '"""A short, stable name for a setup')
    edit(
        training,
        "    values = dataclasses.asdict(config)\n",
        "    # the fields\n    values = (\n        dataclasses.asdict(config)\n    )\n",
    )
    text = nbformat.read(notebook, as_version=4)
    text.cells[
        next(i for i, c in enumerate(text.cells) if c.cell_type == "code")
    ].source += "\n# a comment added to the first code cell"
    nbformat.write(text, notebook)
    assert records.stale_report([notebook], root) is None


def test_a_changed_cell_a_new_requirement_and_a_missing_record_are_named(course_copy, tmp_path):
    root, notebook = course_copy
    edited = nbformat.read(notebook, as_version=4)
    parameters = next(c for c in edited.cells if "parameters" in c.metadata.get("tags", []))
    parameters.source = parameters.source.replace("SEED = 42", "SEED = 7")
    nbformat.write(edited, notebook)
    with (root / "requirements.txt").open("a") as requirements:
        requirements.write("scipy==1.16.0  # a new dependency\n")
    unrecorded = tmp_path / "01_unrecorded.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), unrecorded)
    report = records.stale_report([unrecorded, notebook], root)
    assert report.splitlines() == [
        "01: no execution record",
        "03: requirements.txt changed since their outputs were made",
        "03: the notebook's code cells changed since their outputs were made",
        "run `make outputs NB='01 03'`",
    ]


def test_a_notebook_runs_the_helpers_modules_it_imports_and_theirs():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("%matplotlib inline\nimport helpers"),
        nbformat.v4.new_code_cell("def f():\n    from helpers.losses import DiceLoss\n"),
    ]
    files = records.code_files(notebook)
    assert files[: files.index("requirements.txt")] == [
        "helpers/__init__.py",
        "helpers/boundaries.py",  # imported by helpers.losses inside a function
        "helpers/losses.py",
        "helpers/runtime.py",  # imported by helpers/__init__.py
    ]


def test_the_run_time_line_and_the_stamp():
    record = {**RECORD, "wall_time_s": 257}
    line = records.run_time_line(record)
    assert line == (
        "**Run time:** 4 min 17 s for the run that made these outputs (2-core Intel Xeon, no GPU; "
        "TensorFlow 2.21.0, Keras 3.15.1; 2026-12-06)."
    )
    assert records.run_time_text(12.4) == "12 s"
    registered = {**record, "machine": {"cpu": "Intel(R) Xeon(R) CPU @ 2.1GHz", "cores": 2}}
    assert records.machine_text(registered) == "2-core Intel Xeon CPU @ 2.1GHz, no GPU"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Title\n\n**Run time:** an old\nhistory.\n\nMore.")
    ]
    records.stamp(notebook, record)
    assert notebook.cells[0].source == f"# Title\n\n{line}\n\nMore."
    records.stamp(notebook, {**record, "machine": {"cpu": "x", "cores": 16, "gpu": "NVIDIA T4"}})
    assert "(16-core x, GPU NVIDIA T4;" in notebook.cells[0].source
    assert notebook.cells[0].source.count("**Run time:**") == 1


def test_the_run_time_tables_take_each_records_time(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "docs").mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# 03 · Build")]
    notebook.metadata[records.RECORD_KEY] = RECORD
    nbformat.write(notebook, tmp_path / "notebooks" / "03_build.ipynb")
    (tmp_path / "README.md").write_text(
        "| notebook | you learn | run time |\n| --- | --- | --- |\n"
        "| [03_build](notebooks/03_build.ipynb) | U-Nets | an old guess |\n"
        "| [04_eval](notebooks/04_eval.ipynb) | IoU | not recorded yet |\n"
    )
    (tmp_path / "docs" / "teaching.md").write_text("| 03 | 5 min | on a GPU: faster |\n")
    changed = records.write_run_times(tmp_path)
    assert changed == [
        tmp_path / "notebooks" / "03_build.ipynb",
        tmp_path / "README.md",
        tmp_path / "docs" / "teaching.md",
    ]
    header = nbformat.read(changed[0], as_version=4).cells[0].source
    assert header == f"# 03 · Build\n\n{records.run_time_line(RECORD)}"
    cell = "1 min 15 s (2-core Intel Xeon, no GPU)"
    assert f"| U-Nets | {cell} |" in (tmp_path / "README.md").read_text()
    assert "| IoU | not recorded yet |" in (tmp_path / "README.md").read_text()
    teaching = (tmp_path / "docs" / "teaching.md").read_text()
    assert teaching == f"| 03 | {cell} | on a GPU: faster |\n"
    assert records.write_run_times(tmp_path) == [], "a second run changes nothing"


def test_the_committed_tables_show_the_records_run_times():
    run_times = records.table_run_times(NOTEBOOKS)
    for name, pattern in records.RUN_TIME_TABLES.items():
        text = (REPO_ROOT / name).read_text(encoding="utf-8")
        assert records.with_run_times(text, pattern, run_times) == text, (
            f"{name}: run `python tools/records.py --tables`"
        )
        assert len(re.findall(pattern, text, flags=re.MULTILINE)) == len(NOTEBOOKS), name


def test_the_colab_bootstrap_cell_is_left_out_of_the_fingerprint():
    """It does nothing where outputs are made; tests/test_colab.py runs it on each path."""
    from tools import stamp_colab

    assert records.COLAB_BOOTSTRAP == stamp_colab.BOOTSTRAP_MARKER
    notebook = nbformat.read(BUILD_AND_TRAIN, as_version=4)
    before = records.notebook_fingerprint(notebook)
    bootstrap = next(c for c in notebook.cells if c.source.startswith(records.COLAB_BOOTSTRAP))
    bootstrap.source += "\nprint('a changed bootstrap')"
    assert records.notebook_fingerprint(notebook) == before
    bootstrap.source = "print('no longer the bootstrap')"
    assert records.notebook_fingerprint(notebook) != before


def test_the_normalised_code_is_the_same_text_on_every_python_version():
    """ast.dump differs between Python versions (3.12 added empty `type_params` fields), which
    made every record stale on Colab's Python 3.13; empty fields are left out."""
    assert records.normalised_python("def f(x):\n    '''Doc.'''\n    return x  # comment\n") == (
        "Module(body=[FunctionDef(name='f', args=arguments(args=[arg(arg='x')]), "
        "body=[Return(value=Name(id='x', ctx=Load()))])])"
    )


def test_the_readme_figure_is_the_tagged_cells_committed_output():
    figure = records.tagged_figure(NOTEBOOKS)
    assert figure is not None, f"no notebook has a cell tagged {records.FIGURE_TAG!r}"
    assert (REPO_ROOT / records.README_FIGURE).read_bytes() == figure, (
        "run `python tools/records.py --run-times`"
    )
    assert str(records.README_FIGURE) in (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_figure_is_written_from_the_notebook(tmp_path):
    (tmp_path / "notebooks").mkdir()
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plot()")
    cell.metadata["tags"] = [records.FIGURE_TAG]
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
    notebook.cells = [cell]
    nbformat.write(notebook, tmp_path / "notebooks" / "03_build.ipynb")
    (tmp_path / "docs").mkdir()
    for name in records.RUN_TIME_TABLES:
        (tmp_path / name).write_text("no table\n", encoding="utf-8")
    assert records.write_tables(tmp_path) == [tmp_path / records.README_FIGURE]
    assert (tmp_path / records.README_FIGURE).read_bytes() == b"\x89PNG\r\n\x1a\n"
    assert records.write_tables(tmp_path) == [], "a second run changes nothing"
