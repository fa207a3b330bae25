# The two commands of the README: `make run` and `make test`; `make bench` for the benchmarks.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ACCEPTANCE := ../shared/acceptance
# Acceptance files join as their issue is built.
ACCEPTANCE_FILES := $(ACCEPTANCE)/test_sync.py $(ACCEPTANCE)/test_daemon.py $(ACCEPTANCE)/test_hardening.py
DEMO := demo

.PHONY: run test venv deps lint typecheck unit acceptance bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python
	$(BIN)/pip install -q -e .

deps:
	PYTHON=$(PYTHON) bash packaging/system-deps.sh

run: deps venv
	mkdir -p $(DEMO)/local $(DEMO)/remote
	[ -e $(DEMO)/local/welcome.txt ] || echo "Edit me: changes here reach $(DEMO)/remote." > $(DEMO)/local/welcome.txt
	@echo "syncing $(DEMO)/local <-> $(DEMO)/remote; edit files in either, Ctrl-C to stop"
	$(BIN)/syncagent run $(DEMO)/local $(DEMO)/remote --state-dir $(DEMO)/state --poll-interval 5

test: deps $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/ruff check syncagent tests bench hatch_build.py
	$(BIN)/mypy
	$(BIN)/python -m pytest -q tests
	# the pure-Python loops the native module replaces: the engine's tests once more without it
	SYNCAGENT_NATIVE=0 $(BIN)/python -m pytest -q tests/unit/engine
	SYNCAGENT_CMD=$(abspath $(BIN)/syncagent) $(BIN)/python -m pytest -q -p no:cacheprovider $(ACCEPTANCE_FILES)

# Every benchmark with small parameters (a few minutes; not part of `make test`).
# The documented numbers: make bench BENCH_ARGS="--full --write" (an hour or more).
bench: deps venv
	PYTHON=$(PYTHON) bash packaging/system-deps.sh --bench
	$(BIN)/python -m bench.run_all $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEMO) .mypy_cache .ruff_cache syncagent/native/*.so
