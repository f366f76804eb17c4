# Two entry points a user needs: `make lab` runs the main job, `make test` passes the tests.
# Both work on a fresh machine: the virtual environment and SIPp are installed on demand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: lab test bench venv sipp clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# SIPp comes from Debian (package sip-tester); tests that need it must run, not skip.
sipp:
	@command -v sipp >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq sip-tester; }

lab: $(STAMP)
	$(BIN)/b2bua lab --config configs/lab.toml

test: $(STAMP) sipp
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(STAMP) sipp
	$(BIN)/python benchmarks/parse.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
