# Two entry points for a newcomer: `make quickstart` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
QSTAMP := $(VENV)/.installed-ladder

.PHONY: install test test-quick lint quickstart screenshot bench clean

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

# lint: ruff on all Python, mypy --strict on src/ (files and strictness live in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

# test-quick: lint and every test but the slow end-to-end ones (CI runs `make test`)
test-quick: lint
	$(BIN)/python -m pytest -q -m "not slow"

# the bundled datasets against a rebuild from the published files (needs ../shared/data)
check-datasets: $(STAMP)
	$(BIN)/python -m scalinglab.datasets._build --check ../shared/data

quickstart: $(QSTAMP)
	$(BIN)/scalinglab quickstart --minutes 10 --out quickstart-out

# screenshot: the quickstart report as a full-page PNG (headless Chromium), for a human to look at;
# runs `make quickstart` first when there is no report yet
CHROMIUM ?= $(shell command -v chromium || command -v chromium-browser || command -v google-chrome)
SHOT_HEIGHT ?= 7000
quickstart-out/index.html:
	$(MAKE) quickstart

screenshot: quickstart-out/index.html
	@test -n "$(CHROMIUM)" || { echo "no chromium: apt-get install chromium"; exit 2; }
	$(CHROMIUM) --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,$(SHOT_HEIGHT) \
		--screenshot=quickstart-out/report.png "file://$(CURDIR)/quickstart-out/index.html" 2>/dev/null
	@echo "screenshot: quickstart-out/report.png"

bench: $(STAMP)
	$(BIN)/python benchmarks/fit_speed.py
	$(BIN)/python benchmarks/ladder_throughput.py

clean:
	rm -rf $(VENV) quickstart-out
