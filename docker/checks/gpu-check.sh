#!/usr/bin/env bash
# `make gpu-check`: the kit on a node's own PyTorch (NODE_PYTHON), offline. The node's freeze
# decides what the bundle ships (gpu-bundle.sh); the bundle's run.sh makes the kit's venv over
# NODE_PYTHON (its torch never reinstalled), applies the patches and runs `pekit gpu-check`.
#
#   NODE_PYTHON=PYTHON GPU_BUNDLE=DIR GPU_CHECK_VENV=DIR RESULTS_DIR=DIR [MINUTES=N]
#   [MMF_FROM=...] [WHEELHOUSE=DIR] [HOST_PYTHON=PYTHON] docker/checks/gpu-check.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

: "${GPU_BUNDLE:?}" "${GPU_CHECK_VENV:?}" "${RESULTS_DIR:?}"
node_python=${NODE_PYTHON-}
"$node_python" -c 'import torch' 2>/dev/null || {
    echo "make: $node_python has no torch (or does not run); gpu-check runs on a node's own" \
        "PyTorch (NODE_PYTHON=/path/to/python)" >&2
    exit 2
}
mkdir -p .cache
"$node_python" "$kit/$NODE_PY" freeze >.cache/node-freeze.json
NODE_FREEZE=.cache/node-freeze.json "$here/gpu-bundle.sh"
# run.sh's own default budget unless MINUTES is given.
[ -n "${MINUTES:-}" ] || unset MINUTES
set -x
NODE_PYTHON=$node_python VENV=$GPU_CHECK_VENV OUT=$RESULTS_DIR/gpu-check bash "$GPU_BUNDLE/run.sh"
