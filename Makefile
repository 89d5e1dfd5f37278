# One-command entry points; the README's first lines use these.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/dsx: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(BIN)/dsx

.PHONY: setup example test lint bench kube
setup: $(BIN)/dsx

# The real Kubernetes API server of the test suite (v1.20.2 from Debian's source package): built
# once into ${DSX_CACHE_DIR:-~/.cache/dsx}/kube/, a no-op afterwards (tools/kube/build.sh).
kube:
	tools/kube/build.sh >/dev/null

example: setup
	$(BIN)/dsx plan solve examples/dsx-2026.yaml -o plans/dsx-2026.json

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# Two worker processes (pytest-xdist), each with its own real API server: the operator tests
# mostly wait on servers and timers, so the suite takes about half as long on two cores.
# `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 2

test: lint kube
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist worksteal

bench: setup
	$(BIN)/python -m bench.run
