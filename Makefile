# The two commands of the README's quick start: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PROFILE ?= production
PYTEST_ARGS ?=

.PHONY: run test venv test-venv system-deps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Reinstall when the project metadata changes.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(VENV)/.installed $@

venv: $(VENV)/.installed
test-venv: $(VENV)/.installed-test

run: venv
	$(BIN)/devsim-tui --profile $(PROFILE)

# System packages the tests talk to (mosquitto, promtool, ssh): installed when root and missing.
system-deps:
	@sh .ci/system-deps.sh

# The import contracts first (pyproject.toml [tool.importlinter]): seconds, and a broken layer
# is a design error worth reporting before six minutes of tests.
test: test-venv system-deps
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist
