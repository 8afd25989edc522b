# papersift: `make run` installs and serves the bundled sample; `make test` installs and runs every check.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
HOME_DIR ?= $(CURDIR)/.papersift
SAMPLE := src/papersift/data/sample

.PHONY: setup system-deps run test lint typecheck pytest bench-ingest bench-web bench-soak bench-fuzz clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade 'pip>=24'
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,embed]'
	touch $@

# the tests also check the st: path and the export that regenerates the shipped model (PyTorch), and
# embedding on a local Ray (the ray extra: ~240 MB, 6 packages, a few seconds from cached wheels)
$(BIN)/.installed-st: $(BIN)/.installed
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,st,ray]'
	touch $@

setup: $(BIN)/.installed

# Servers the tests start themselves: Debian's PostgreSQL. Installed when missing (needs root or sudo).
system-deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then \
	  echo "installing PostgreSQL (Debian package) for the store tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  ($$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q postgresql) >/dev/null \
	    || echo "warning: could not install PostgreSQL; its tests will be skipped"; \
	fi
	@if [ ! -x /usr/bin/chromium ] || ! command -v wrk >/dev/null 2>&1; then \
	  echo "installing Chromium (browser tests) and wrk (web benchmark), Debian packages"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  ($$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium fonts-dejavu-core wrk) >/dev/null \
	    || echo "warning: could not install chromium/wrk; the browser tests will be skipped"; \
	fi

run: setup
	$(BIN)/papersift --home $(HOME_DIR) ingest $(SAMPLE) || [ $$? -eq 3 ]
	$(BIN)/papersift --home $(HOME_DIR) stats
	$(BIN)/papersift --home $(HOME_DIR) serve

lint: setup
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools

typecheck: setup
	$(BIN)/mypy

pytest: setup $(BIN)/.installed-st system-deps
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

bench-ingest: setup
	$(BIN)/python benchmarks/ingest_bench.py

bench-web: setup system-deps
	$(BIN)/python benchmarks/web_bench.py

bench-soak: setup
	$(BIN)/python benchmarks/soak_bench.py --chunks 1

bench-fuzz: setup
	$(BIN)/python benchmarks/fuzz_bench.py

clean:
	rm -rf $(VENV) .papersift build *.egg-info
