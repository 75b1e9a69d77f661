#!/usr/bin/env bash
# The image's two install steps, as the Dockerfile runs them; `make paper-check` runs the same
# steps in a Python 3.7 venv. `python`, `pip` and `pekit` are the active environment's.
#
#   docker/install.sh kit PROFILE MMF_SOURCE [MMF_DEST]
#       the lock's build tools (for MMF's setup.py), the kit (editable), transformers and MMF
#       without dependencies, then the kit's patches for PROFILE (a refusal exits 1).
#       MMF_SOURCE: MMF's repository URL, or a clone or bundle; MMF_DEST: where the checkout
#       goes (default: the kit's cache).
#   docker/install.sh stack PROFILE [--torch-stand-in]
#       the profile's locked stack without dependency resolution (modern: with the test tools),
#       then docker/verify_stack.py. --torch-stand-in installs PyPI's torch and torchvision in
#       place of the base image's (paper-check; their CUDA build is then not checked).
#
# Order matters: `kit` first, since the pinned transformers imports on the modern stack only once
# the compat patches are applied.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
kit=$(dirname "$here")
pip_install() { pip install --no-cache-dir --disable-pip-version-check "$@"; }

case "${1:-}:${2:-}" in
    kit:?*)
        [ -n "${3:-}" ] || { echo "install.sh kit: MMF_SOURCE is missing" >&2; exit 2; }
        profile=$2 source=$3 dest=${4:-}
        sets=$(python "$kit/scripts/pekit/facts/pins.py" "profiles.$profile.patch_sets" | tr -d '[]" ')
        tools=$(mktemp)
        python "$here/profiles.py" build-requirements "$profile" >"$tools"
        pip_install --no-deps -r "$tools"
        rm -f "$tools"
        # The kit's build isolation stays on: its pyproject needs setuptools 61+, newer than
        # the paper lock's (pytorch-lightning 1.5.10 pins 59.5.0), which builds MMF below.
        pip_install --no-deps -e "$kit"
        pip_install --no-deps "transformers==$(python "$kit/scripts/pekit/facts/pins.py" transformers.version)"
        checkout=$(pekit mmf fetch --from "$source" ${dest:+--dest "$dest"})
        echo "$checkout"
        pekit mmf install --src "${checkout#*: }"
        pekit patch apply --sets "$sets"
        pekit patch check --sets "$sets"
        ;;
    stack:?*)
        profile=$2
        stand_in=${3:-}
        [ -z "$stand_in" ] || [ "$stand_in" = --torch-stand-in ] || {
            echo "install.sh stack: unknown option '$stand_in'" >&2; exit 2; }
        if [ -n "$stand_in" ] && [ "$(python "$here/profiles.py" get "$profile" torch_from)" != base_image ]; then
            echo "install.sh stack: --torch-stand-in is for a profile whose torch is the base image's" >&2
            exit 2
        fi
        list=$(mktemp)
        if [ -n "$stand_in" ]; then
            for name in torch torchvision; do
                echo "$name==$(python "$kit/scripts/pekit/facts/pins.py" "profiles.$profile.$name")"
            done >"$list"
        fi
        python "$here/profiles.py" image-requirements "$profile" >>"$list"
        if [ "$profile" = modern ]; then cat "$kit/tests/requirements.txt" >>"$list"; fi
        pip_install --no-deps -r "$list"
        rm -f "$list"
        python "$here/verify_stack.py" "$profile" ${stand_in:+"$stand_in"}
        ;;
    *)
        sed -n '5,13p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
