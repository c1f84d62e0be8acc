# The two commands of the README: `make run` and `make test`. Both create the virtualenv and
# install what they need; CI runs `.ci/run`, which calls `make test`.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.run-installed
TEST_STAMP := $(VENV)/.test-installed

.PHONY: run test lint typecheck pytest bench bench-quick chaos clean system-packages voice screens

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[sim]'
	touch $@

$(TEST_STAMP): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[sim,postgres,test]'
	touch $@ $(RUN_STAMP)

# What the touchscreen needs of the machine (Debian/Ubuntu): its CJK font, and espeak-ng to make its
# voice prompts (device/io/voice; the WAV files are committed, so only changed prompts need it).
# Installed when missing, as root; otherwise the one command to run is printed and make stops.
SYSTEM_PACKAGES := espeak-ng fonts-noto-cjk

system-packages:
	@missing=""; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	{ command -v fc-list >/dev/null 2>&1 && fc-list | grep -q "Noto Sans CJK"; } || missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing:$$missing"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -q && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
		else \
			echo "the touchscreen needs:$$missing; run: sudo apt-get install -y$$missing" >&2; exit 1; \
		fi; \
	fi

## make voice: (re)make the touchscreen's voice prompts that changed (espeak-ng)
voice: $(RUN_STAMP)
	$(BIN)/python -m device.io.voice build

## make screens: draw every touchscreen screen into docs/screens (both sizes, both languages)
screens: $(RUN_STAMP)
	$(BIN)/python -m device.io.touch render docs/screens

## make run: embedded broker + hub + 6 simulated counters; Ctrl-C prints today's figures
run: $(RUN_STAMP)
	-@$(MAKE) --no-print-directory system-packages  # the demo runs without them, with key terminals only
	$(BIN)/pingjia demo

## make test: ruff, mypy and the whole test suite (what CI runs)
test: lint typecheck pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

pytest: system-packages $(TEST_STAMP)
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
