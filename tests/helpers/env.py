"""The environments of the processes the tests start: a `make`, a training `pekit`."""

from __future__ import annotations

import os
import sys

# Make variables of the kit a caller's environment may hold (CI exports MMF_FROM; `make test
# VENV=.venv-3.12` exports its command-line variables to the tests), and make's own channel for
# passing command-line variables on to sub-makes.
KIT_MAKE_VARIABLES = (
    "PYTHON",
    "VENV",
    "PYTEST_ARGS",
    "TEST_WORKERS",
    "OWN_PYTHON",
    "NODE_PYTHON",
    "WHEELHOUSE",
    "GPU_CHECK_VENV",
    "PAPER_VENV",
    "PYTHON37",
    "PYTHON312",
    "TWIN_VENV",
    "GPU_BUNDLE",
    "NODE_FREEZE",
    "MINUTES",
    "HOST_PYTHON",
    "MMF_FETCH_TIMEOUT",
    "MODELS",
    "MODES",
    "SEEDS",
    "BATCH",
    "SETTINGS",
    "SRC",
    "REPORT_ARGS",
    "BENCH_ARGS",
    "MMF_FROM",
    "BUILD_CA",
    "BASE_IMAGE",
    "DOCKER",
    "GPUS",
    "PROFILE",
    "IMAGE",
    "IMAGE_TAG",
    "LOCAL",
    "DATA_DIR",
    "CACHE_DIR",
    "RESULTS_DIR",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
)


def make_env(**overrides):
    """The environment for a `make` the tests run: the caller's, without the kit's variables."""
    env = {k: v for k, v in os.environ.items() if k not in KIT_MAKE_VARIABLES}
    env.update(overrides)
    return env


def pekit_env(world):
    """The environment of a `pekit` subprocess that trains in `world` (pekit.workflows.synthetic): MMF
    offline with every cache in the world, run by this Python, this test session's imports."""
    from pekit.run import command, record
    from pekit.workflows import synthetic

    env = synthetic.run_env(world)
    env[command.ENV_MMF_RUN] = f"{sys.executable} -m mmf_cli.run"
    env.pop(record.ENV_PROFILE, None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env
