# Sourced by the scripts beside it (bash). They run where make runs them, the kit's root: the
# paths a user gives (venvs, bundles, .cache, RESULTS_DIR) are taken from there as make takes
# them, the kit's own files from $kit.
kit=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# The kit's files these scripts run, named here only: the package's layout may move them.
NODE_PY=scripts/pekit/setup/node.py # a node's freeze, run with the node's Python (stdlib only)
host_pekit() { PYTHONPATH="$kit/scripts" "${HOST_PYTHON:-python3}" -m pekit "$@"; }

# The first Python of VERSION that runs: pythonVERSION on PATH, then one pyenv installed.
first_python() {
    local candidate
    for candidate in "python$1" "${HOME-}"/.pyenv/versions/"$1"*/bin/"python$1"; do
        if "$candidate" -c '' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}
