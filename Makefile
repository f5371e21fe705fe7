# make run  : set up .venv on a fresh machine and start the bot on its embedded defaults
# make test : set up .venv and run the whole test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-deps clean image-test fuzz-deep chaos proof

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found; set PYTHON=python3.x (3.11 or newer)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,ml]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python run_bot.py run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -m "not replicas and not deploy and not rate" --ignore=tests/e2e --durations=15

# Build the container image with podman on a local Debian base and run its entry point as the
# task definition does (needs podman, buildah and mmdebstrap; .ci/run installs them). Bounded.
image-test: $(STAMP)
	IMAGE_TEST=1 timeout 480 $(BIN)/python -m pytest -q -p no:cacheprovider tests/image

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/storm.py
	$(BIN)/python bench/storm.py --groups 10000
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/scheduler.py
	$(BIN)/python bench/rules.py
	$(BIN)/python bench/interactions.py
	$(BIN)/python bench/rca.py
	$(BIN)/python bench/paging.py
	$(BIN)/python bench/playbooks.py
	$(BIN)/python bench/failover.py
	$(BIN)/python bench/peer.py
	$(BIN)/python bench/storm_delivery.py
	$(BIN)/python bench/similar.py
	$(BIN)/python bench/chaos.py
	$(BIN)/python bench/search_cost.py

# the slower proof runs CI adds: the whole loop through run_bot.py processes (tests/e2e), several
# bots on one PostgreSQL database (kill -9, SIGSTOP), the deploy script against a moto server
proof: $(STAMP)
	timeout 300 $(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e
	timeout 600 $(BIN)/python -m pytest -q -p no:cacheprovider -m "replicas or deploy or rate" tests/integration

# outside services failing and the bot killed mid-storm (a real bot on PostgreSQL; about a minute)
chaos: $(STAMP)
	CHAOS_TEST=1 timeout 300 $(BIN)/python -m pytest -q tests/chaos

# the fuzz tests with 500 examples per operation and parser instead of the suite's 40
fuzz-deep: $(STAMP)
	FUZZ_EXAMPLES=500 $(BIN)/python -m pytest -q tests/fuzz

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache .mypy_cache

# Alertmanager and amtool for bench/peer.py and the amtool test (Debian's prometheus-alertmanager)
bench-deps:
	command -v amtool >/dev/null 2>&1 || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus-alertmanager)
