# One-command entry points; the README's first lines use these.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/dsx: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(BIN)/dsx

.PHONY: setup example test lint bench
setup: $(BIN)/dsx

example: setup
	$(BIN)/dsx plan solve examples/dsx-2026.yaml -o plans/dsx-2026.json

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python -m bench.run
