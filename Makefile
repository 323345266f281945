# Two entry points for a newcomer: `make quickstart` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test quickstart bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

quickstart: $(STAMP)
	$(BIN)/scalinglab quickstart --out quickstart-out

bench: $(STAMP)
	$(BIN)/python benchmarks/fit_speed.py

clean:
	rm -rf $(VENV) quickstart-out
