PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test test-fast train lint bench docs clean

install:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e ".[dev]"

test:
	$(BIN)/python -m pytest

test-fast:
	$(BIN)/python -m pytest -m "not slow"

train:  # the default experiment with every view (probes, drift, diagnostics); extra overrides: make train ARGS="..."
	$(BIN)/python -m retentive.train trainer.val_check_interval=0.25 probes=default drift=default callbacks=diagnostics $(ARGS)

lint:
	$(BIN)/ruff check src tests bench

bench:
	$(BIN)/python bench/loop_overhead.py
	$(BIN)/python bench/fisher.py
	$(BIN)/python bench/explanation_cost.py
	$(BIN)/python bench/checkpoint_cost.py

docs:  # the docs site (mkdocs-material + mkdocstrings), strict: a broken link or reference fails
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs build --strict

clean:
	rm -rf outputs .pytest_cache site
