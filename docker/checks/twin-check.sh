#!/usr/bin/env bash
# `make twin-check`: today's GPU node's Python, on CPU. A Python 3.12 venv (TWIN_VENV) holding
# tests/node_twin.txt (torch 2.11, numpy 2, transformers 5, huggingface_hub 1.x), the bundle made
# from its freeze, then the bundle's run.sh cut off from the network: a network namespace of its
# own where `unshare -n` works (pip's --no-index in any case).
#
#   TWIN_VENV=DIR RESULTS_DIR=DIR [PYTHON312=PYTHON] [MINUTES=N] [MMF_FROM=...]
#   [WHEELHOUSE=DIR] [HOST_PYTHON=PYTHON] docker/checks/twin-check.sh
#
# PYTHON312: the interpreter; without it the first Python 3.12 that runs (python3.12 on PATH,
# then one pyenv installed), else python3.12, whose failure then says so.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

: "${TWIN_VENV:?}" "${RESULTS_DIR:?}"
python312=${PYTHON312:-$(first_python 3.12 || echo python3.12)}
offline=()
if unshare -n true 2>/dev/null; then offline=(unshare -n); fi
[ -n "${MINUTES:-}" ] || unset MINUTES

set -x # each step shown as it starts, as make shows a recipe's lines
rm -rf "$TWIN_VENV"
"$python312" -m venv "$TWIN_VENV"
venv=$(cd "$TWIN_VENV" && pwd)
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$kit/tests/node_twin.txt"
mkdir -p .cache
"$venv/bin/python" "$kit/$NODE_PY" freeze >.cache/twin-freeze.json
NODE_FREEZE=.cache/twin-freeze.json GPU_BUNDLE=.cache/twin-bundle "$here/gpu-bundle.sh"
NODE_PYTHON=$venv/bin/python VENV=$PWD/.venv-twin-kit OUT=$RESULTS_DIR/twin-check \
    "${offline[@]}" bash .cache/twin-bundle/run.sh
