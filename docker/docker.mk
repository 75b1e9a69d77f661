# Container targets of the kit; the Makefile includes this file.
#
#   make build [PROFILE=modern|paper] [DOCKER=docker|podman|buildah]   make shell   make test-image
#   make image-check DOCKER=podman|buildah   (build on a stand-in base, test inside the image)
#
# Versions are read from scripts/pekit/facts/pins.json and docker/profiles.json by
# docker/profiles.py and passed as --build-arg; nothing here repeats them. What differs between
# engines (GPU and user flags, the host checks) is docker/engine.py's. Targets stay a line or
# two: what decides, loops or refuses is in those scripts and in docker/checks/, which the tests
# run directly.

PROFILE ?= modern
DOCKER ?= docker
IMAGE ?= pekit
IMAGE_TAG ?= $(PROFILE)
IMAGE_REF := $(IMAGE):$(IMAGE_TAG)
# GPUs for the container: all, a count, or "device=0,1"; empty runs without GPUs.
GPUS ?= all
# Host folders mounted as the image's volumes (MMF_DATA_DIR, MMF_CACHE_DIR, results). DATA_DIR
# is the folder every pekit command reads without --data-dir: $MMF_DATA_DIR, else MMF's default.
DATA_DIR ?= $(shell $(HOST_PYTHON) scripts/pekit/data/paths.py)
CACHE_DIR ?= $(or $(MMF_CACHE_DIR),$(CURDIR)/.cache/docker/cache)
RESULTS_DIR ?= $(CURDIR)/results
# Where the build takes things from. BASE_IMAGE: another base than the profile's (a mirror, or
# image-check's stand-in). MMF_FROM: a clone or bundle of MMF at the pinned commit instead of
# MMF's public repository. BUILD_CA: a CA bundle pip trusts while building (a TLS-intercepting
# proxy). MMF_FROM and BUILD_CA are mounted into the build, which needs podman or buildah.
BASE_IMAGE ?=
MMF_FROM ?=
BUILD_CA ?=
# Extra arguments: `make assets ASSETS_ARGS="hmd --allow-unverified"`, `make shell CMD=...`.
ASSETS_ARGS ?=
DOCKER_BUILD_ARGS ?=
DOCKER_RUN_ARGS ?=
CMD ?=
HOST_PYTHON ?= python3

# The scripts behind the targets that are more than a command (the Makefile's too); a script
# gets its make variables by name: $(call _vars,A B) is A='$(A)' B='$(B)'.
CHECKS := docker/checks
_vars = $(foreach v,$(1),$(v)='$($(v))')
_ENGINE = $(shell $(HOST_PYTHON) docker/engine.py name '$(DOCKER)' 2>/dev/null)
# The build's inputs from the host, staged in one folder mounted at /run/pekit-build.
_INPUTS := $(CURDIR)/.cache/docker/build-inputs
_INPUTS_IN := /run/pekit-build
_SOURCES = $(if $(BASE_IMAGE),BASE_IMAGE=$(BASE_IMAGE)) \
	$(if $(MMF_FROM),MMF_REPOSITORY=$(_INPUTS_IN)/$(notdir $(abspath $(MMF_FROM))))
_BUILD_ARGS = $(shell $(HOST_PYTHON) docker/profiles.py build-args $(PROFILE) $(_SOURCES))
_INPUT_FLAGS = $(if $(MMF_FROM)$(BUILD_CA),-v $(_INPUTS):$(_INPUTS_IN):ro) \
	$(if $(BUILD_CA),--build-arg PIP_CERT=$(_INPUTS_IN)/ca.crt)
# podman and buildah read the context filter named by --ignorefile; BuildKit finds
# docker/Dockerfile.dockerignore beside the Dockerfile. The docker format keeps SHELL (OCI's
# drops it, and with it the -e that stops a RUN at its first failing command).
_BUILD_docker = DOCKER_BUILDKIT=1 $(DOCKER) build
_BUILD_podman = $(DOCKER) build --format docker --ignorefile docker/Dockerfile.dockerignore
_BUILD_buildah = $(DOCKER) bud --format docker --ignorefile docker/Dockerfile.dockerignore
_RUN_FLAGS = $(shell $(HOST_PYTHON) docker/engine.py run-flags '$(DOCKER)' '$(GPUS)' 2>/dev/null)
_TTY = $(shell [ -t 0 ] && echo -it)
# The prefix of every command run in the image: the caller's uid, the GPUs, the three volumes.
IN_IMAGE = $(DOCKER) run --rm $(_TTY) $(_RUN_FLAGS) \
	--shm-size 8g -v $(DATA_DIR):/mmf/data -v $(CACHE_DIR):/mmf/cache \
	-v $(RESULTS_DIR):/mmf/results $(DOCKER_RUN_ARGS) $(IMAGE_REF)

.PHONY: build shell test-image assets assets-list run-in-image docker-check run-check gpu-runtime-check \
	profile-check volumes build-inputs standin-base image-check

# PROFILE is a profile, and the build's sources (BASE_IMAGE, MMF_FROM) make build arguments.
profile-check:
	@$(HOST_PYTHON) docker/profiles.py check '$(PROFILE)' $(_SOURCES)

# The engine is installed and answers; Docker needs its daemon, podman and buildah none.
docker-check:
	@$(HOST_PYTHON) docker/engine.py check '$(DOCKER)'

# Running a container: not buildah, and GPUS must be a value the engine takes.
run-check: docker-check
	@$(HOST_PYTHON) docker/engine.py run-flags '$(DOCKER)' '$(GPUS)' >/dev/null

# With GPUS set: an NVIDIA driver, and the engine's way to it (Docker's runtime, Podman's CDI).
gpu-runtime-check: run-check
	@$(HOST_PYTHON) docker/engine.py gpu-runtime '$(DOCKER)' '$(GPUS)' $(MAKECMDGOALS)

volumes:
	@mkdir -p $(DATA_DIR) $(CACHE_DIR) $(RESULTS_DIR)

# Stage MMF_FROM and BUILD_CA for the build's one mount; Docker's build cannot mount host paths.
build-inputs: docker-check
	@$(HOST_PYTHON) docker/engine.py stage-inputs '$(DOCKER)' $(_INPUTS) '$(MMF_FROM)' '$(BUILD_CA)'

build: profile-check build-inputs ## build the image: PROFILE=modern (default) or paper; DOCKER=docker|podman|buildah
	$(_BUILD_$(_ENGINE)) -f docker/Dockerfile -t $(IMAGE_REF) \
	  $(_BUILD_ARGS) $(_INPUT_FLAGS) $(DOCKER_BUILD_ARGS) .

shell: profile-check gpu-runtime-check volumes ## a shell in the image (GPUS=all, your uid, data/cache/results volumes)
	$(IN_IMAGE) $(or $(CMD),bash)

run-in-image: profile-check gpu-runtime-check volumes ## run CMD="..." in the image, e.g. CMD="pekit assets list"
	@$(CHECKS)/require.sh CMD '$(CMD)'
	$(IN_IMAGE) $(CMD)

# The suite is written for the modern stack; in the paper image, the check is that
# the pinned stack imports and the PE patches are in place.
_TEST_IMAGE_modern = cd /opt/pekit && python -m pytest -p no:cacheprovider $(PYTEST_ARGS)
_TEST_IMAGE_paper = pekit patch check --sets pe && pekit mmf where \
	&& python -c "import mmf.models.visual_bert, mmf.models.vilbert; print(\"MMF models import\")"

test-image: profile-check gpu-runtime-check volumes ## the test suite inside the image (modern: full suite, MMF present)
	$(IN_IMAGE) bash -c '$(_TEST_IMAGE_$(PROFILE))'

# ---- the image checked without a registry: a stand-in base, a real build, tests inside ----
# The stand-in for the modern profile's debian:bookworm-slim: Debian 12 from Debian's archive
# (debootstrap, as root), imported as a local image. Built once; remove the image to rebuild.
STANDIN_REF ?= localhost/pekit-standin:bookworm

standin-base: docker-check
	@$(HOST_PYTHON) docker/engine.py standin-base '$(DOCKER)' '$(STANDIN_REF)'

# BASE_IMAGE, when given, is used instead of the stand-in (for example the real debian base).
# The tests around the image need pytest only: a small venv of tests/requirements.txt, not the
# 6 GB .venv, leaves the disk to the build (a 7 GB image is held three times while committed).
IMAGE_CHECK_VENV ?= .venv-image-check
$(IMAGE_CHECK_VENV)/.installed: tests/requirements.txt
	$(HOST_PYTHON) -m venv $(IMAGE_CHECK_VENV)
	$(IMAGE_CHECK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
	  -r tests/requirements.txt
	touch $@

image-check: $(IMAGE_CHECK_VENV)/.installed ## needs DOCKER=podman or DOCKER=buildah (not docker): build the modern image on a stand-in base, run Table I + the smoke in it
	$(if $(BASE_IMAGE),,$(MAKE) --no-print-directory standin-base)
	$(MAKE) --no-print-directory build PROFILE=modern BASE_IMAGE=$(or $(BASE_IMAGE),$(STANDIN_REF))
	PEKIT_IMAGE=$(IMAGE):modern PEKIT_IMAGE_DOCKER='$(DOCKER)' \
	  PEKIT_IMAGE_BASE=$(or $(BASE_IMAGE),$(STANDIN_REF)) \
	  PEKIT_IMAGE_MMF_FROM=$(if $(MMF_FROM),$(abspath $(MMF_FROM))) \
	  PEKIT_IMAGE_BUILD_CA=$(if $(BUILD_CA),$(abspath $(BUILD_CA))) \
	  PYTHONPATH=$(CURDIR)/scripts $(IMAGE_CHECK_VENV)/bin/pytest -p no:cacheprovider -m image \
	  tests/test_image.py $(PYTEST_ARGS)

assets: volumes ## download + verify checkpoints, features, BERT into DATA_DIR/CACHE_DIR (no Docker needed)
	PYTHONPATH=$(CURDIR)/scripts TRANSFORMERS_CACHE=$(CACHE_DIR)/transformers \
	  $(HOST_PYTHON) -m pekit assets fetch --data-dir $(DATA_DIR) --cache-dir $(CACHE_DIR) \
	  $(ASSETS_ARGS)

assets-list: ## which assets are in DATA_DIR
	@PYTHONPATH=$(CURDIR)/scripts $(HOST_PYTHON) -m pekit assets list \
	  --data-dir $(DATA_DIR) --cache-dir $(CACHE_DIR)
