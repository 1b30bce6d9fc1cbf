# The course's commands. Each target builds .venv from the pinned requirements when missing.
#   make run      execute every notebook at its lesson budget -> build/ (tracked files untouched)
#                 with build/index.html, the course pages: every rendered notebook in order, and
#                 build/student-pages/, the same pages without the solutions (to publish)
#   make test     lint + unit tests + every notebook at its small budget (nbval) + the freshness
#                 of each notebook's execution record: minutes, on any machine
#   make verify   the notebooks at their lesson budgets, compared strictly with their committed
#                 outputs (nbval), and the slow unit tests; NB="03 04": only those notebooks
#   make outputs  re-execute the notebooks in place and write their execution records (how
#                 committed outputs are produced); NB="03 04": only those notebooks
#   make tidy     store the notebooks as the course does (figure policy, JupyterLab's metadata):
#                 run it after saving a notebook from JupyterLab, before committing
#   make lab      JupyterLab on the notebooks
#   make colab-check  make test's fast tier in a second environment (.venv-colab) with Colab's
#                 versions of TensorFlow, Keras, NumPy, ... (requirements-colab.txt)
#   make student  student copies (no outputs, no solutions) -> build/student/ + build/student.zip
#   make colab-bundle  the course as one zip for Colab, uploaded to /content: the instructor's
#                 build/course-bundle.zip and the students' build/student-colab/course-bundle.zip
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The Python files ruff checks and formats (notebooks: nbqa)
PY_SOURCES := helpers tests tools benchmarks conftest.py

# NB="03 04" -> the committed notebooks with those numbers (all of them when NB is empty)
NOTEBOOK_FILES = $(if $(NB),$(foreach n,$(NB),$(wildcard notebooks/$(n)_*.ipynb)),notebooks)
SMALL_BUDGET := build/small-budget
TEST_ARTIFACTS := build/test-artifacts
# Colab's environment: its Python (3.13, else the newest of 3.12 and 3.11 that runs here, on the
# PATH or installed by pyenv), its package versions
COLAB_PYTHON ?= $(shell for v in 3.13 3.12 3.11; do \
	for p in python$$v $$(pyenv root 2>/dev/null)/versions/$$v*/bin/python$$v; do \
	$$p -c '' 2>/dev/null && { echo $$p; exit; }; done; done)
COLAB_VENV := .venv-colab
COLAB_STAMP := $(COLAB_VENV)/.installed
# the packages requirements-colab.txt pins, as a pattern of requirement lines
COLAB_PINNED = ^($(shell sed -n 's/^\([A-Za-z0-9_.-]*\)==.*/\1/p' requirements-colab.txt | paste -sd'|' -))==

.PHONY: setup run test verify colab-check tidy lint format lab outputs student colab-bundle benchmarks clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-pages.txt pyproject.toml
	@echo "==> setting up $(VENV) from requirements.txt (first time: about a minute)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
		-r requirements-pages.txt
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

run: setup
	@$(BIN)/python tools/run_notebooks.py --output-dir build

test: setup lint
	@$(BIN)/python tools/small_budget.py $(SMALL_BUDGET)
	@rm -rf $(TEST_ARTIFACTS)
	@echo "==> unit tests, the notebooks at their small budgets (nbval), the execution records"
	@$(BIN)/python -m pytest -m "not slow" $(SMALL_BUDGET) tests

verify: setup
	@rm -rf $(TEST_ARTIFACTS)
	@echo "==> $(if $(NB),notebooks $(NB),every notebook and the slow unit tests) at full budget"
	@$(BIN)/python -m pytest -m slow --no-cov $(NOTEBOOK_FILES) $(if $(NB),,tests)

$(COLAB_STAMP): requirements-colab.txt requirements.txt requirements-pages.txt pyproject.toml
	@echo "==> setting up $(COLAB_VENV): Colab's versions (requirements-colab.txt) on $(COLAB_PYTHON)"
	@test -x $(COLAB_VENV)/bin/python || $(COLAB_PYTHON) -m venv $(COLAB_VENV)
	@$(COLAB_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-colab.txt
	@grep -v -i -E '$(COLAB_PINNED)' requirements.txt > $(COLAB_VENV)/test-tools.txt
	@$(COLAB_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-c requirements-colab.txt -r $(COLAB_VENV)/test-tools.txt
	@$(COLAB_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
		-r requirements-pages.txt
	@$(COLAB_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

colab-check: $(COLAB_STAMP)
	@$(COLAB_VENV)/bin/python -c "import helpers, platform, tensorflow, keras, numpy; \
		print('==> Colab check: Python', platform.python_version(), '| TensorFlow', \
		tensorflow.__version__, '| Keras', keras.__version__, '| NumPy', numpy.__version__)"
	@$(COLAB_VENV)/bin/python tools/small_budget.py $(SMALL_BUDGET)
	@rm -rf $(TEST_ARTIFACTS)
	@$(COLAB_VENV)/bin/python -m pytest -m "not slow" $(SMALL_BUDGET) tests

lint: setup
	@echo "==> ruff (code and notebooks)"
	@$(BIN)/ruff check $(PY_SOURCES)
	@$(BIN)/ruff format --check $(PY_SOURCES)
	@$(BIN)/nbqa ruff notebooks

format: setup
	@$(BIN)/ruff check --fix $(PY_SOURCES)
	@$(BIN)/ruff format $(PY_SOURCES)
	@$(BIN)/nbqa ruff --fix notebooks

tidy: setup
	@$(BIN)/python tools/run_notebooks.py --tidy

lab: setup
	@$(BIN)/jupyter lab notebooks

outputs: setup
	@$(BIN)/python tools/run_notebooks.py --in-place $(if $(NB),$(NOTEBOOK_FILES))

student: setup
	@$(BIN)/python tools/make_student.py --output-dir build

colab-bundle: setup
	@$(BIN)/python tools/make_student.py --colab-bundle --output-dir build

benchmarks: setup
	@for script in benchmarks/*.py; do echo "==> $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf build .pytest_cache .ruff_cache .coverage
