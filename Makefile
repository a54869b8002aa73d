# fsgen — `make demo` and `make test` each set up .venv on a fresh machine first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test lint typecheck bench generate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/fsgen demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check fsgen tests bench scripts featuredefs
	$(BIN)/mypy fsgen generated
	$(BIN)/fsgen generate --check
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check fsgen tests bench scripts featuredefs

typecheck: $(STAMP)
	$(BIN)/mypy fsgen generated

generate: $(STAMP)
	$(BIN)/fsgen generate

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .fsgen .pytest_cache .mypy_cache .ruff_cache
