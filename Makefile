# The two commands of the README: `make run` and `make test`. Both create the virtualenv and
# install what they need; CI runs `.ci/run`, which calls `make test`.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.run-installed
TEST_STAMP := $(VENV)/.test-installed

.PHONY: run test lint typecheck pytest bench bench-quick chaos clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[sim]'
	touch $@

$(TEST_STAMP): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[sim,postgres,test]'
	touch $@ $(RUN_STAMP)

## make run: embedded broker + hub + 6 simulated counters; Ctrl-C prints today's figures
run: $(RUN_STAMP)
	$(BIN)/pingjia demo

## make test: ruff, mypy and the whole test suite (what CI runs)
test: lint typecheck pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

pytest: $(TEST_STAMP)
	$(BIN)/pytest

## make bench: the benchmark figures as one JSON object (see docs/benchmarks.md)
bench: $(TEST_STAMP)
	$(BIN)/pingjia bench --json

bench-quick: $(TEST_STAMP)
	$(BIN)/pingjia bench --quick --json

## make chaos: five minutes of random faults; fails unless nothing was lost or doubled
chaos: $(TEST_STAMP)
	$(BIN)/pingjia chaos --seconds 300 --devices 6

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis
