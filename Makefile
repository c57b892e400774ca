# The README's two commands: `make demo` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# Two test processes (pytest-xdist), a test file per process at a time (module fixtures stay
# shared): most of the suite's time waits on servers, JVMs and the browser. JOBS=0 runs in one.
JOBS ?= 2
XDIST := $(if $(filter 0,$(JOBS)),,-n $(JOBS) --dist loadfile)

.PHONY: install system-deps test test-fast demo bench bench-quick lint format clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

## install: create .venv with the package, every extra and the dev tools (pinned by constraints.txt)
install: $(STAMP)

## system-deps: OS packages some tests drive for real (Chromium, redis-server); needs root + apt-get
system-deps:
	./scripts/system-deps.sh

## test: install, then run the whole suite (slow, browser and server tests included)
test: install system-deps
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

## test-fast: the suite without tests marked slow
test-fast: install
	$(BIN)/python -m pytest $(XDIST) -m "not slow" $(PYTEST_ARGS)

## demo: install, then run the main job end to end
demo: install
	$(BIN)/propensity demo

## bench: every benchmark (minutes); bench-quick: the short set (<= 5 minutes)
bench: install
	$(BIN)/python -m benchmarks.run

bench-quick: install
	$(BIN)/python -m benchmarks.run --quick

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
