#!/usr/bin/env bash
# `make gpu-bundle`: one copy for an offline GPU node, made for its freeze: the kit, a
# wheelhouse, MMF, run.sh, in GPU_BUNDLE (`pekit gpu-bundle` with the host's Python).
#
#   NODE_FREEZE=node.json GPU_BUNDLE=DIR [MMF_FROM=CLONE|BUNDLE] [WHEELHOUSE=DIR]
#   [HOST_PYTHON=PYTHON] docker/checks/gpu-bundle.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"

: "${GPU_BUNDLE:?}"
[ -n "${NODE_FREEZE:-}" ] || {
    echo "make: set NODE_FREEZE to the node's freeze, made on the node by:" \
        "python3 $NODE_PY freeze > node.json" >&2
    exit 2
}
set -x
host_pekit gpu-bundle "$GPU_BUNDLE" --node "$NODE_FREEZE" \
    ${MMF_FROM:+--mmf-from "$MMF_FROM"} ${WHEELHOUSE:+--wheelhouse "$WHEELHOUSE"}
