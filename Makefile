# One command each: `make lab` opens the course, `make test` runs the whole suite.
# Both create .venv and install the pinned stack first; a stamp file makes that step
# instant when requirements.txt and pyproject.toml have not changed.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.crfkit-installed
PYTEST_ARGS ?=
ARGS ?=

.PHONY: setup lab test exercises help

help:
	@echo "make lab        set up (if needed) and open JupyterLab on lectures/;"
	@echo "                ARGS go to JupyterLab: make lab ARGS=\"--no-browser --port 8899\""
	@echo "make test       set up (if needed) and run the whole test suite"
	@echo "make setup      create .venv and install the pinned stack and crfkit"
	@echo "make exercises  regenerate exercises/ from solutions/"

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip setuptools
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --user --name crfkit --display-name "Python (crfkit)" >/dev/null
	@touch $(STAMP)
	@echo "crfkit environment ready in $(VENV)"

lab: setup
	$(PY) -m crfkit.course lab $(ARGS)

exercises: setup
	$(PY) -m crfkit.course exercises

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)
