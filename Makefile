# Every target creates .venv if missing and installs what it needs: a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INTEROP := .venv-interop
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
# The rule engine's hot modules compiled by mypyc (smartcity/native.py), rebuilt when a source
# changed.
NATIVE := src/smartcity/_native.json

.PHONY: demo serve test lint typecheck contracts unit bench native interop-env clean help

help:
	@echo "make demo   - install and run the platform with the Changdong district and its simulator"
	@echo "make test   - lint, type checks, import contracts and the tests"
	@echo "make bench  - run the benchmarks and write docs/benchmarks.md"
	@echo "make lint   - ruff (lint and format check)"
	@echo "make native - compile the rule engine's hot modules with mypyc (demo, test and bench do)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[native]'
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,native]'
	touch $@ $(STAMP_RUN)

$(NATIVE): $(wildcard src/smartcity/rules/*.py) src/smartcity/core/entity.py src/smartcity/native.py \
		| $(STAMP_RUN)
	$(BIN)/python -m smartcity.build_native

native: $(NATIVE)

# ngsildclient pins an old httpx, so the third-party client lives in its own environment.
$(INTEROP)/bin/python:
	$(PYTHON) -m venv $(INTEROP)
	$(INTEROP)/bin/pip install --quiet 'ngsildclient>=0.5.2'

interop-env: $(INTEROP)/bin/python

# make demo SCENARIO=concert-night SPEED=60 picks another scenario and speed.
demo: $(STAMP_RUN) $(NATIVE)
	$(BIN)/smartcity demo $(if $(SCENARIO),--scenario $(SCENARIO)) $(if $(SPEED),--speed $(SPEED))

serve: $(STAMP_RUN) $(NATIVE)
	$(BIN)/smartcity serve

lint: $(STAMP_TEST)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP_TEST)
	$(BIN)/mypy

contracts: $(STAMP_TEST)
	$(BIN)/lint-imports

# Most tests wait on a server (PostgreSQL, MQTT, NATS, a subprocess), so one test process per core
# (pytest-xdist, whole files per process) keeps the cores busy; TEST_WORKERS=0 runs them in one.
TEST_WORKERS ?= auto
unit: $(STAMP_TEST) $(NATIVE) interop-env
	SMARTCITY_INTEROP_PYTHON=$(INTEROP)/bin/python $(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=30

test: lint typecheck contracts unit

bench: $(STAMP_TEST) $(NATIVE)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(INTEROP) var .mypy_cache .pytest_cache .ruff_cache src/build src/*__mypyc* \
		src/smartcity/*/*.so $(NATIVE)
