# ebsdlake: the two set-up commands are `make demo` and `make test`.
# Each bootstraps .venv with pip on first use; a stamp keyed on pyproject.toml keeps later calls
# from reinstalling anything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ebsdlake-installed
export OMP_NUM_THREADS ?= 2
export RAY_DEDUP_LOGS ?= 1
export RAY_USAGE_STATS_ENABLED ?= 0

.PHONY: demo test bench lint format venv clean

venv: $(STAMP)

# The editable install puts the checkout itself on sys.path (editable_mode=compat) rather than
# an import hook: Ray workers put the working directory first on their import path, and a
# hook-based install would lose every package name to a same-named folder there (a lake
# folder called `lake`, say).
$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet "pip>=24"
	$(BIN)/python -m pip install --quiet -e ".[test,bench]" --config-settings editable_mode=compat
	$(BIN)/python -m infra.app.warmup
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ebsdlake demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests devtools/gpu_kit --ignore=tests/benchmarks --durations=15

bench: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/benchmarks -s

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) demo-report demo-lake .pytest_cache

# EMsoft from source (scripts/emsoft/build.sh; docs/SIMULATE.md): builds EMMC, EMMCOpenCL,
# EMEBSDmaster and EMEBSD into .emsoft/ and prints EMSOFT_BIN; a second call does nothing.
# test-emsoft runs the tests that drive the real programs (they skip without them).
.PHONY: emsoft test-emsoft
EMSOFT_BIN ?= $(CURDIR)/.emsoft/bin

emsoft:
	@scripts/emsoft/build.sh

test-emsoft: emsoft $(STAMP)
	EMSOFT_BIN=$(EMSOFT_BIN) $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/test_simulate_emsoft.py $(wildcard tests/test_emsoft_*.py)
