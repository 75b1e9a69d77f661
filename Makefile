# pekit — reproduction kit. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
VPY := $(VENV)/bin/python
PEKIT := $(VPY) -m pekit
PIN = $(shell python3 scripts/pekit/pins.py $(1))
PYTEST_ARGS ?=

.PHONY: help venv prepare test lint

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: docker/lock/modern.txt tests/requirements.txt scripts/pekit/facts/pins.json pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check \
	  torch==$(call PIN,profiles.modern.torch) torchvision==$(call PIN,profiles.modern.torchvision)
	$(VPY) -m pip install --quiet --disable-pip-version-check --no-deps \
	  -r docker/lock/modern.txt -r tests/requirements.txt
	$(VPY) -m pip install --quiet --disable-pip-version-check --no-deps \
	  transformers==$(call PIN,transformers.version)
	$(VPY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

venv: $(VENV)/.installed ## create the locked test environment (.venv)

# Installs MMF from MMF_SRC or the kit's cache when one is there, then patches what is installed.
prepare: venv ## install MMF if a checkout is found, and apply the kit's patches to .venv
	@where=$$($(PEKIT) mmf where 2>&1); \
	case "$$where" in \
	  installed:*) echo "MMF $$where";; \
	  checkout:*) echo "MMF $$where: installing into $(VENV)"; $(PEKIT) mmf install || exit 1;; \
	  *) echo "MMF: $${where#pekit mmf: } (MMF tests will be skipped)";; \
	esac
	@if $(VPY) -c 'import importlib.util as u, sys; sys.exit(u.find_spec("mmf") is None)'; then \
	  $(PEKIT) patch apply; else $(PEKIT) patch apply --only transformers; fi

lint: venv ## ruff over the kit and its tests
	$(VENV)/bin/ruff check scripts tests

test: prepare lint ## the test suite (MMF tests run when MMF is found)
	$(VENV)/bin/pytest $(PYTEST_ARGS)
