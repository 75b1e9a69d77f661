#!/usr/bin/env bash
# `make paper-check`: the paper profile's install steps (docker/install.sh, as the image runs
# them) in a Python 3.7 venv, PyPI's torch and torchvision standing in for the base image's CUDA
# 11.1 builds; then Table I and a few `mmf_run` updates of each mode.
#
#   PAPER_VENV=DIR [PYTHON37=PYTHON] docker/checks/paper-check.sh MMF_SOURCE [PYTEST_ARG...]
#
# PYTHON37: the interpreter; without it $PEKIT_PYTHON37, else the first Python 3.7 that runs
# (python3.7 on PATH, then one pyenv installed). PAPER_VENV is made anew.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$#" -ge 1 ] || { echo "usage: $0 MMF_SOURCE [PYTEST_ARG...]" >&2; exit 2; }
: "${PAPER_VENV:?}"
source=$1
shift
python37=${PYTHON37:-${PEKIT_PYTHON37:-$(first_python 3.7 || true)}}
[ -n "$python37" ] || { echo "make: no Python 3.7 found: set PYTHON37=/path/to/python3.7" >&2; exit 2; }

set -x # each step shown as it starts, as make shows a recipe's lines
rm -rf "$PAPER_VENV"
"$python37" -m venv "$PAPER_VENV"
venv=$(cd "$PAPER_VENV" && pwd)
pip_pin=$(python3 "$kit/docker/profiles.py" get paper pip)
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "pip==$pip_pin"
# install.sh, pip and pytest are the venv's.
export PATH="$venv/bin:$PATH"
"$kit/docker/install.sh" kit paper "$source"
"$kit/docker/install.sh" stack paper --torch-stand-in
pip install --quiet --disable-pip-version-check --no-deps -r "$kit/tests/requirements-py37.txt"
# VisualBERT's modes through mmf_run directly (PEKIT_DIRECT_RUNS), not through the demo that
# make test shares between its tests.
PEKIT_DIRECT_RUNS=1 python -m pytest -p no:cacheprovider "$kit/tests/test_table1_counts.py" \
    "$kit/tests/test_mmf_train.py" "$@"
