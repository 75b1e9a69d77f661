#!/usr/bin/env bash
# A variable a target cannot do without:
#
#   docker/checks/require.sh NAME VALUE [GOAL...]
#
# exits 2 with one line saying what to set when VALUE is empty (GOAL: the make goals, shown).
set -euo pipefail

[ "$#" -ge 2 ] || { echo "usage: $0 NAME VALUE [GOAL...]" >&2; exit 2; }
name=$1 value=$2
shift 2
[ -z "$value" ] || exit 0
case $name in
    SRC) echo "make: set SRC to your copy, e.g. make $* SRC=~/Downloads/..." >&2 ;;
    CMD) echo "make: set CMD, e.g. make run-in-image CMD='pekit assets list'" >&2 ;;
    *) echo "require.sh: no message for $name" >&2 ;;
esac
exit 2
