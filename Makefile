# shelfedge — the two commands are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

BOOTSTRAP := .toolchain/bootstrap
UV := $(shell command -v uv 2>/dev/null || echo $(BOOTSTRAP)/bin/uv)
RUN := $(UV) run --frozen

.PHONY: help run test setup lint format types pytest bench edge-worker edge-bundle wasm wasm-toolchain kafka-jars clean

help:
	@echo "make run     start the local stack (Redis, broker, origin, edge, consumer) with a status view"
	@echo "make test    lint, types and the whole test suite"
	@echo "make bench   benchmarks (BENCH_SHORT=1 for the short CI mode)"
	@echo "make wasm    the WASI build of the edge core: dist/shelfedge-edge.wasm"
	@echo "make edge-bundle  the deployable Cloudflare Python Worker in build/worker/"

$(BOOTSTRAP)/bin/uv:
	python3 -m venv $(BOOTSTRAP)
	$(BOOTSTRAP)/bin/pip install --quiet uv

# Bytecode compiled once at install: every Python process the suite starts (servers, consumers,
# CLI runs) then loads it instead of compiling the dependencies again, which matters where
# PYTHONDONTWRITEBYTECODE is set (about 1.1 s against 0.5 s to import the CLI on a CI machine).
.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet --compile-bytecode
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

wasm-toolchain: | $(UV)
	UV="$(abspath $(UV))" bash tools/wasi/install-toolchain.sh

# Apache Kafka's broker jars from Maven Central into .toolchain/kafka/<version>/libs (once).
kafka-jars:
	bash tools/kafka/fetch.sh

setup: .venv/.synced node_modules/.installed wasm-toolchain kafka-jars

run: .venv/.synced
	@command -v redis-server >/dev/null || [ -n "$$REDIS_URL" ] || { echo "redis-server not found on PATH: install it with 'apt-get install -y redis-server' (Debian/Ubuntu)"; exit 1; }
	$(RUN) shelfedge dev

lint: .venv/.synced
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports --no-cache

format: .venv/.synced
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

types: .venv/.synced
	$(RUN) mypy

# The WASI module is built (or found up to date) before the suite, so no test's time budget,
# e.g. bench.wasm's short mode, contains a cold build of a minute or two.
pytest: setup wasm
	$(RUN) pytest $(PYTEST_ARGS)

test: lint types pytest

bench: setup
	$(RUN) python -m bench.origin
	$(RUN) python -m bench.edge
	$(RUN) python -m bench.invalidation
	$(RUN) python -m bench.ingest
	$(RUN) python -m bench.compose
	$(RUN) python -m bench.context
	$(RUN) python -m bench.wasm

wasm: wasm-toolchain
	bash tools/wasi/build.sh edge/wasi_main.py dist/shelfedge-edge.wasm

edge-worker edge-bundle: setup
	$(RUN) python -m tools.workerd.build_pyodide_bundle
	$(RUN) python -m tools.workerd.build_worker

clean:
	rm -rf build dist .mypy_cache .ruff_cache .pytest_cache
