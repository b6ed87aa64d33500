PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test train lint bench clean

install:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e ".[dev]"

test:
	$(BIN)/python -m pytest

train:
	$(BIN)/python -m retentive.train

lint:
	$(BIN)/ruff check src tests bench

bench:
	$(BIN)/python bench/lightning_overhead.py

clean:
	rm -rf outputs .pytest_cache
