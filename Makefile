# Everyday commands; .ci/run is what CI runs on a clean machine (it installs everything first).
PYTHON ?= python3

.PHONY: test test-fast lint fmt bench

test:        ## every test (skips, saying why, what the machine lacks)
	$(PYTHON) -m pytest

test-fast:   ## the unit tests only: no servers, browsers, containers or training (about 30 s)
	$(PYTHON) -m pytest -m "not integration and not slow and not container"

lint:        ## ruff and mypy, as CI runs them
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy

fmt:         ## sort imports and apply the fixes ruff is sure of
	$(PYTHON) -m ruff check --fix .

bench:       ## the serving and reliability figures of docs/ (a few minutes; needs wrk)
	$(PYTHON) benchmarks/serve_bench.py --duration 6
	$(PYTHON) benchmarks/slow_clients.py
	$(PYTHON) benchmarks/worst_case_memory.py
	$(PYTHON) benchmarks/hostile_requests.py --n 10000
