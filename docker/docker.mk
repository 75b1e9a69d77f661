# Docker targets of the kit; the Makefile includes this file.
#
#   make build [PROFILE=modern|paper]   make shell   make test-image   make assets
#
# Versions are read from scripts/pekit/facts/pins.json and docker/profiles.json by
# docker/profiles.py and passed as --build-arg; nothing here repeats them.

PROFILE ?= modern
DOCKER ?= docker
IMAGE ?= pekit
IMAGE_TAG ?= $(PROFILE)
IMAGE_REF := $(IMAGE):$(IMAGE_TAG)
# GPUs for `docker run --gpus` (all, a count, or "device=0,1"); empty runs without GPUs.
GPUS ?= all
# Host folders mounted as the image's volumes (MMF_DATA_DIR, MMF_CACHE_DIR, results).
DATA_DIR ?= $(or $(MMF_DATA_DIR),$(CURDIR)/.cache/docker/data)
CACHE_DIR ?= $(or $(MMF_CACHE_DIR),$(CURDIR)/.cache/docker/cache)
RESULTS_DIR ?= $(CURDIR)/results
# Extra arguments: `make assets ASSETS_ARGS="hmd --allow-unverified"`, `make shell CMD=...`.
ASSETS_ARGS ?=
DOCKER_BUILD_ARGS ?=
DOCKER_RUN_ARGS ?=
CMD ?=
HOST_PYTHON ?= python3

_PROFILES := modern paper
_BUILD_ARGS = $(shell $(HOST_PYTHON) docker/profiles.py build-args $(PROFILE))
_GPU_FLAGS = $(if $(strip $(GPUS)),--gpus $(GPUS))
_TTY = $(shell [ -t 0 ] && echo -it)
# The prefix of every command run in the image: the caller's uid, the three volumes.
IN_IMAGE = $(DOCKER) run --rm $(_TTY) $(_GPU_FLAGS) --user $(shell id -u):$(shell id -g) \
	--shm-size 8g -v $(DATA_DIR):/mmf/data -v $(CACHE_DIR):/mmf/cache \
	-v $(RESULTS_DIR):/mmf/results $(DOCKER_RUN_ARGS) $(IMAGE_REF)

.PHONY: build shell test-image assets assets-list run-in-image docker-check gpu-check \
	profile-check volumes

profile-check:
	@case " $(_PROFILES) " in *" $(PROFILE) "*) ;; \
	  *) echo "make: PROFILE must be one of: $(_PROFILES) (got '$(PROFILE)')" >&2; exit 2;; esac

docker-check:
	@command -v $(DOCKER) >/dev/null 2>&1 || { \
	  echo "make: '$(DOCKER)' not found. Install Docker Engine (https://docs.docker.com/engine/install/)," \
	       "or use Apptainer/Singularity as the README shows." >&2; exit 1; }
	@$(DOCKER) info >/dev/null 2>&1 || { \
	  echo "make: '$(DOCKER) info' failed: the Docker daemon is not running or not reachable." \
	       "Start it (sudo systemctl start docker) and make sure your user may use it" \
	       "(sudo usermod -aG docker $$(id -un), then log in again)." >&2; exit 1; }

gpu-check: docker-check
	@if [ -n "$(strip $(GPUS))" ]; then \
	  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 || { \
	    echo "make: no NVIDIA GPU or driver on this host (nvidia-smi -L failed). Install the" \
	         "NVIDIA driver, or run without GPUs: GPUS= make $(MAKECMDGOALS)" >&2; exit 1; }; \
	  { $(DOCKER) info 2>/dev/null | grep -qi nvidia || command -v nvidia-container-runtime-hook \
	      >/dev/null 2>&1 || command -v nvidia-ctk >/dev/null 2>&1; } || { \
	    echo "make: Docker has no NVIDIA GPU runtime. Install the NVIDIA Container Toolkit" \
	         "(https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html)," \
	         "run 'sudo nvidia-ctk runtime configure --runtime=docker' and restart Docker;" \
	         "or run without GPUs: GPUS= make $(MAKECMDGOALS)" >&2; exit 1; }; \
	fi

volumes:
	@mkdir -p $(DATA_DIR) $(CACHE_DIR) $(RESULTS_DIR)

build: profile-check docker-check ## build the image: PROFILE=modern (default, CUDA 12) or paper (CUDA 11.1)
	DOCKER_BUILDKIT=1 $(DOCKER) build -f docker/Dockerfile -t $(IMAGE_REF) \
	  $(_BUILD_ARGS) $(DOCKER_BUILD_ARGS) .

shell: profile-check gpu-check volumes ## a shell in the image (GPUS=all, your uid, data/cache/results volumes)
	$(IN_IMAGE) $(or $(CMD),bash)

run-in-image: profile-check gpu-check volumes ## run CMD="..." in the image, e.g. CMD="pekit assets list"
	@[ -n "$(CMD)" ] || { echo "make: set CMD, e.g. make run-in-image CMD='pekit assets list'" >&2; exit 2; }
	$(IN_IMAGE) $(CMD)

# The suite is written for the modern stack; in the paper image, the check is that
# the pinned stack imports and the PE patches are in place.
_TEST_IMAGE_modern = cd /opt/pekit && python -m pytest -p no:cacheprovider $(PYTEST_ARGS)
_TEST_IMAGE_paper = pekit patch check --sets pe && pekit mmf where \
	&& python -c "import mmf.models.visual_bert, mmf.models.vilbert; print(\"MMF models import\")"

test-image: profile-check gpu-check volumes ## the test suite inside the image (modern: full suite, MMF present)
	$(IN_IMAGE) bash -c '$(_TEST_IMAGE_$(PROFILE))'

assets: volumes ## download + verify checkpoints, features, BERT into DATA_DIR/CACHE_DIR (no Docker needed)
	PYTHONPATH=$(CURDIR)/scripts TRANSFORMERS_CACHE=$(CACHE_DIR)/transformers \
	  $(HOST_PYTHON) -m pekit assets fetch --data-dir $(DATA_DIR) --cache-dir $(CACHE_DIR) \
	  $(ASSETS_ARGS)

assets-list: ## which assets are in DATA_DIR
	@PYTHONPATH=$(CURDIR)/scripts $(HOST_PYTHON) -m pekit assets list \
	  --data-dir $(DATA_DIR) --cache-dir $(CACHE_DIR)
