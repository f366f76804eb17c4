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

# SIPp comes from Debian (package sip-tester); tests that need it must run, not skip. So do
# docker-compose (v1: validates docker/compose.yaml without an engine) and iproute2 (`ip`,
# `tc`: the network-namespace lab, tests/netns). Only what is missing is installed.
sipp:
	@PATH="$$PATH:/usr/sbin:/sbin"; missing=; \
	command -v sipp >/dev/null 2>&1 || missing="$$missing sip-tester"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

lab: $(STAMP)
	$(BIN)/b2bua lab --config configs/lab.toml

test: $(STAMP) sipp
	$(BIN)/python -m pytest -q -p no:cacheprovider

# `make bench` runs both benchmarks in full (cps: about 35-40 minutes); `make bench QUICK=1`
# runs their short versions (cps: under 3 minutes). cps installs Kamailio (apt-get) and
# Sippy (benchmarks/.venv-sippy) itself the first time it needs them.
bench: $(STAMP) sipp
	$(BIN)/python benchmarks/parse.py $(if $(QUICK),--quick,)
	$(BIN)/python benchmarks/cps.py $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
