# pekit — reproduction kit. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
VPY := $(VENV)/bin/python
# OWN_PYTHON: the Python of an environment you manage (your own torch; docs/no-docker.md). The
# kit's commands and LOCAL=1 targets run there, and the kit builds no .venv for them.
OWN_PYTHON ?=
PEKIT := $(or $(OWN_PYTHON),$(VPY)) -m pekit
KIT_ENV = $(if $(OWN_PYTHON),,venv)
PIN = $(shell python3 scripts/pekit/facts/pins.py $(1))
PYTEST_ARGS ?=

.PHONY: help venv prepare test lint

help: ## list the targets
	@grep -hE '^[a-zA-Z_ -]+:.*?## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  %-28s %s\n", $$1, $$2}'

# The modern stack, installed as the image installs it: one list, no dependency resolution.
$(VENV)/.installed: docker/lock/modern.txt tests/requirements.txt scripts/pekit/facts/pins.json \
		pyproject.toml docker/profiles.py docker/profiles.json
	$(PYTHON) -m venv $(VENV)
	$(VPY) docker/profiles.py image-requirements modern > $(VENV)/stack.txt
	$(VPY) -m pip install --quiet --disable-pip-version-check --no-deps \
	  -r $(VENV)/stack.txt -r tests/requirements.txt
	$(VPY) -m pip install --quiet --disable-pip-version-check --no-deps \
	  transformers==$(call PIN,transformers.version)
	$(VPY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

venv: $(VENV)/.installed ## create the locked test environment (.venv)

# MMF installed (fetched into the kit's cache from MMF_FROM, a clone or bundle, or its public
# repository under a two-minute limit, when no checkout is found), then the kit's patches.
# Offline, the MMF tests are skipped and say why. MMF_FROM is docker/docker.mk's too.
MMF_FETCH_TIMEOUT ?= 120
prepare: $(KIT_ENV) ## install MMF (fetched if needed), and apply the kit's patches to .venv (or OWN_PYTHON's)
	$(PEKIT) prepare $(if $(MMF_FROM),--mmf-from $(MMF_FROM)) --timeout $(MMF_FETCH_TIMEOUT)

lint: venv ## ruff (lint and format check) over the kit, its tests and docker helpers
	$(VENV)/bin/ruff check scripts tests docker
	$(VENV)/bin/ruff format --check scripts tests docker

# TEST_WORKERS: pytest-xdist workers; the suite's MMF runs use about one core each
# (tests/conftest.py says how the tests are shared among them).
TEST_WORKERS ?= 2
test: prepare lint ## the test suite (MMF tests run when MMF is found)
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15 $(PYTEST_ARGS)

include docker/docker.mk

# ---- the paper profile's install, checked without its base image ----------------------------
# Its install steps (docker/install.sh, as the image runs them) in a Python 3.7 venv, with
# PyPI's torch and torchvision standing in for the base image's CUDA 11.1 builds; then Table I
# and a few `mmf_run` updates of each mode.
# The steps are docker/checks/paper-check.sh. PYTHON37: the interpreter; left empty,
# $PEKIT_PYTHON37, else the first python3.7 that runs (PATH, then pyenv).
PYTHON37 ?=
PAPER_VENV ?= .venv-paper
.PHONY: paper-check
paper-check: prepare ## the paper profile's install on Python 3.7 (PyPI torch for the base's): Table I, mmf_run
	@$(call _vars,PYTHON37 PAPER_VENV) $(CHECKS)/paper-check.sh \
	  '$(or $(MMF_FROM),$(MMF_SRC),$(call PIN,mmf.repository))' $(PYTEST_ARGS)

# ---- the pipeline: data -> run -> report -------------------------------------------------
# Targets run in the image by default; LOCAL=1 runs them in .venv (MMF installed by `prepare`),
# or in OWN_PYTHON's environment when it is set.
LOCAL ?=
MODELS ?=
MODES ?=
SEEDS ?=
BATCH ?=
SETTINGS ?=
SRC ?=
REPORT_ARGS ?=
BENCH_ARGS ?=
# GPUS is docker's `--gpus` (all, a count, "device=0,1"); the runner trains on GPUS GPUs when it is
# a count, else on one.
RUN_GPUS = $(shell echo '$(GPUS)' | grep -xE '[0-9]+')
PEKIT_IN = $(if $(LOCAL),$(PEKIT),$(IN_IMAGE) pekit)
IN_DEPS = $(if $(LOCAL),prepare,profile-check gpu-runtime-check volumes)
DATA_ARG = $(if $(LOCAL),--data-dir $(DATA_DIR))
# In the image RESULTS_DIR is mounted at /mmf/results, the working dir's results/.
RESULTS_IN = $(if $(LOCAL),$(RESULTS_DIR),/mmf/results)
HOST_PEKIT = PYTHONPATH=$(CURDIR)/scripts $(HOST_PYTHON) -m pekit

.PHONY: data-hmd data-mmh features-mmh reproduce-hmd reproduce-mmh study-hmd study-mmh report smoke demo \
	bench src-check

src-check:
	@$(CHECKS)/require.sh SRC '$(SRC)' $(MAKECMDGOALS)

# Dataset layout is plain Python (3.7+) on the host, writing into DATA_DIR (the image's /mmf/data).
data-hmd: src-check volumes ## lay out Hateful Memes from SRC (challenge zip or folder) into DATA_DIR
	$(HOST_PEKIT) data hmd $(SRC) --data-dir $(DATA_DIR) $(if $(PASSWORD),--password '$(PASSWORD)')

data-mmh: src-check volumes ## convert MMHS150K at SRC into MMF annotations in DATA_DIR (images copied)
	$(HOST_PEKIT) data mmh $(SRC) --data-dir $(DATA_DIR) --images copy

features-mmh: $(IN_DEPS) ## MMH region features with MMF's Faster R-CNN (GPU; resumable)
	$(PEKIT_IN) features mmh $(DATA_ARG)

# One rule for every dataset; each option reaches the runner only when set.
_opt = $(if $(strip $(2)),$(1) '$(strip $(2))')
RUN_OPTS = $(call _opt,--models,$(MODELS)) $(call _opt,--modes,$(MODES)) \
	$(call _opt,--seeds,$(SEEDS)) $(call _opt,--gpus,$(RUN_GPUS)) $(call _opt,--batch,$(BATCH)) \
	$(call _opt,--settings,$(SETTINGS))
reproduce-hmd reproduce-mmh: reproduce-%: $(IN_DEPS) ## the paper's runs (MODELS MODES SEEDS GPUS BATCH SETTINGS), then the report
	$(PEKIT_IN) reproduce --dataset $* $(RUN_OPTS) --results $(RESULTS_IN) $(DATA_ARG)

# The study: FC, PE at PE_REDUCTIONS, LoRA at LORA_RANKS, BitFit and Full-FT, then the report
# with its study section. DRY_RUN=1 prints the matrix and its GPU time (plain Python, no image),
# and checks what the runs need in DATA_DIR and RESULTS_DIR as the real run does.
PE_REDUCTIONS ?=
LORA_RANKS ?=
DRY_RUN ?=
STUDY_OPTS = $(RUN_OPTS) $(call _opt,--pe-reductions,$(PE_REDUCTIONS)) \
	$(call _opt,--lora-ranks,$(LORA_RANKS))
study-hmd study-mmh: study-%: $(if $(DRY_RUN),,$(IN_DEPS)) ## FC, PE sizes, LoRA ranks, BitFit, Full-FT + the report (DRY_RUN=1: matrix, GPU hours)
	$(if $(DRY_RUN),$(HOST_PEKIT),$(PEKIT_IN)) study --dataset $* $(STUDY_OPTS) \
	  $(if $(DRY_RUN),--dry-run --results $(RESULTS_DIR) --data-dir $(DATA_DIR),--results $(RESULTS_IN) $(DATA_ARG))

report: GPUS :=
report: $(if $(LOCAL),$(KIT_ENV),profile-check run-check volumes) ## tables + plots from the runs in results/ (REPORT_ARGS="--paper-log hmd:pe=LOG")
	$(PEKIT_IN) report --results $(RESULTS_IN) $(REPORT_ARGS)

# The demo keeps everything in RESULTS_DIR/demo: runs, logs, checkpoints, report, plots, adapters.
demo: prepare ## the pipeline on CPU in minutes on synthetic data, kept in RESULTS_DIR/demo (needs MMF)
	$(PEKIT) demo --results $(RESULTS_DIR)/demo

smoke: prepare ## the smoke tests: the pipeline on CPU (demo, resume, failure), checked
	$(or $(OWN_PYTHON),$(VPY)) -m pytest -rs -m smoke tests/test_smoke.py

bench: $(IN_DEPS) ## training, loader and extraction throughput, paper vs fast settings (BENCH_ARGS=...)
	$(PEKIT_IN) bench --out $(RESULTS_IN)/bench/bench.json $(BENCH_ARGS)

# ---- the GPU check: on a node's own PyTorch, offline -----------------------------------------
# A node's freeze (`node.py freeze`, run with the node's Python) decides by version what the kit
# ships; `pekit gpu-bundle` writes one copy (kit, wheelhouse, MMF, run.sh); the copy's run.sh
# makes the kit's venv over the node's Python (its torch never reinstalled), applies the patches
# and runs `pekit gpu-check`, offline. gpu-check does all of it here for NODE_PYTHON (the
# wheelhouse is downloaded unless WHEELHOUSE names one made for that node); the steps are
# docker/checks/gpu-check.sh and gpu-bundle.sh.
NODE_PYTHON ?= python3
NODE_FREEZE ?=
WHEELHOUSE ?=
GPU_BUNDLE ?= .cache/gpu-bundle
GPU_CHECK_VENV ?= .venv-gpu-check
MINUTES ?=
.PHONY: gpu-bundle gpu-check
_BUNDLE_VARS = GPU_BUNDLE MMF_FROM WHEELHOUSE HOST_PYTHON
gpu-bundle: ## one copy for an offline GPU node (NODE_FREEZE=node.json from the node): kit, wheels, MMF, run.sh
	@$(call _vars,NODE_FREEZE $(_BUNDLE_VARS)) $(CHECKS)/gpu-bundle.sh

gpu-check: ## offline, on a node's torch (NODE_PYTHON): Table I, mmf_run FC/PE (paper, fast), bench -> RESULTS_DIR/gpu-check
	@$(call _vars,NODE_PYTHON GPU_CHECK_VENV RESULTS_DIR MINUTES $(_BUNDLE_VARS)) $(CHECKS)/gpu-check.sh

# ---- the node twin: today's GPU node's Python, on CPU ----------------------------------------
# A Python 3.12 venv holding tests/node_twin.txt (torch 2.11, numpy 2, transformers 5,
# huggingface_hub 1.x), then gpu-check on it with run.sh cut off from the network (a network
# namespace of its own where `unshare -n` works; pip's --no-index in any case): the steps are
# docker/checks/twin-check.sh. PYTHON312: the interpreter; left empty, the first python3.12
# that runs (PATH, then pyenv).
PYTHON312 ?=
TWIN_VENV ?= .venv-node-twin
.PHONY: twin-check
twin-check: ## today's GPU node's Python (tests/node_twin.txt) on CPU: gpu-bundle for it, run.sh offline
	@$(call _vars,PYTHON312 TWIN_VENV RESULTS_DIR MINUTES MMF_FROM WHEELHOUSE HOST_PYTHON) \
	  $(CHECKS)/twin-check.sh
