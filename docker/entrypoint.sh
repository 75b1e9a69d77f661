#!/bin/sh
# The image's entrypoint: runs the given command (default: bash). For an MMF command (mmf_run,
# mmf_predict, ...), it adds env.user_dir=<the kit's MMF plugin>, which registers the MMH
# dataset, unless the command already sets env.user_dir.
set -eu

# `make shell` runs as the caller's uid, which has no home in the image: give it one.
if [ -z "${HOME:-}" ] || [ ! -w "${HOME}" ]; then
    HOME="${TMPDIR:-/tmp}/home-$(id -u)"
    mkdir -p "$HOME"
    export HOME
fi

if [ "$#" -eq 0 ]; then
    set -- bash
fi

case "$(basename "$1")" in
    mmf_*)
        has_user_dir=no
        for arg in "$@"; do
            case "$arg" in
                env.user_dir=*) has_user_dir=yes ;;
            esac
        done
        if [ "$has_user_dir" = no ]; then
            # The plugin's folder, asked of the installed kit (no MMF import needed).
            if plugin=$("${PEKIT_PYTHON:-python}" -c \
                    'from pekit.data import plugin_dir; print(plugin_dir())') \
                && [ -n "$plugin" ]; then
                set -- "$@" "env.user_dir=$plugin"
            else
                echo "pekit-entrypoint: the kit's MMF plugin was not found; running $1 without" \
                     "env.user_dir (the mmh dataset will be unknown to MMF)" >&2
            fi
        fi
        ;;
esac

exec "$@"
