# The course's commands. Each target builds .venv from the pinned requirements when missing.
#   make run      execute every notebook on the offline dataset -> build/ (tracked files untouched)
#                 with build/index.html, the course pages: every rendered notebook in order
#   make test     lint + unit tests of helpers + strict nbval over notebooks/*.ipynb
#   make lab      JupyterLab on the notebooks
#   make outputs  re-execute the notebooks in place (how committed outputs are produced)
#   make student  student copies (no outputs, no solutions) -> build/student/ + build/student.zip
#   make colab-bundle  the course as one zip for Colab, uploaded to /content -> build/course-bundle.zip
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The Python files ruff checks and formats (notebooks: nbqa)
PY_SOURCES := helpers tests tools benchmarks notebooks/conftest.py

.PHONY: setup run test lint format lab outputs student colab-bundle benchmarks clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@echo "==> setting up $(VENV) from requirements.txt (first time: about a minute)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

run: setup
	@$(BIN)/python tools/run_notebooks.py --output-dir build

test: setup lint
	@echo "==> unit tests of helpers + strict nbval over notebooks/*.ipynb"
	@$(BIN)/python -m pytest

lint: setup
	@echo "==> ruff (code and notebooks)"
	@$(BIN)/ruff check $(PY_SOURCES)
	@$(BIN)/ruff format --check $(PY_SOURCES)
	@$(BIN)/nbqa ruff notebooks

format: setup
	@$(BIN)/ruff check --fix $(PY_SOURCES)
	@$(BIN)/ruff format $(PY_SOURCES)
	@$(BIN)/nbqa ruff --fix notebooks

lab: setup
	@$(BIN)/jupyter lab notebooks

outputs: setup
	@$(BIN)/python tools/run_notebooks.py --in-place

student: setup
	@$(BIN)/python tools/make_student.py --output-dir build

colab-bundle: setup
	@$(BIN)/python tools/make_student.py --colab-bundle --output-dir build

benchmarks: setup
	@for script in benchmarks/*.py; do echo "==> $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf build .pytest_cache .ruff_cache .coverage
