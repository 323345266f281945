# Two entry points for a newcomer: `make quickstart` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
QSTAMP := $(VENV)/.installed-ladder

.PHONY: install test quickstart bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# tests: everything (fitting, the PyTorch ladder, the Ray executor and the test tools)
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev,ladder,ray]'
	touch $(STAMP) $(QSTAMP)

# quickstart: fitting and the ladder, no test tools
$(QSTAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[ladder]'
	touch $(QSTAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

quickstart: $(QSTAMP)
	$(BIN)/scalinglab quickstart --minutes 10 --out quickstart-out

bench: $(STAMP)
	$(BIN)/python benchmarks/fit_speed.py
	$(BIN)/python benchmarks/ladder_throughput.py

clean:
	rm -rf $(VENV) quickstart-out
