"""`pekit gpu-bundle DIR --node node.json`: one copy that installs the kit and runs the GPU check
on a node without network.

Made where there is network, for one node (its freeze: `python3 scripts/pekit/setup/node.py freeze`
run there). DIR holds:

    kit/        the kit's code, patches and locks (installed editable on the node)
    wheels/     the wheelhouse for that node (pekit wheelhouse --node), pip's wheel included
    mmf/        MMF at the pinned commit as a pure-Python wheel, built here from a verified
                checkout: the node needs no git and no compiler; `pekit prepare` then pins its
                patched files by sha256
    node.json   the freeze it was made for
    run.sh      on the node: make the kit's venv over the node's Python (node.py venv), apply
                the patches, run `pekit gpu-check`; offline throughout
    bundle.json what is in it and its size

On the node: `bash DIR/run.sh` (NODE_PYTHON, VENV, OUT and MINUTES may be set; extra arguments
go to `pekit gpu-check`; PEKIT_INSTALL_ONLY=1 stops after the install).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ..core import atomic, location, ownership
from ..core.errors import PekitError
from ..facts import pins
from . import mmf_source, wheelhouse
from .node import NodeFreeze

# What of the kit travels: what the installed kit reads at run time (its package, the patches,
# the locks and image profiles the wheelhouse and doctor read), and what pip needs to install it.
KIT_PARTS = ("scripts", "patches", "docker", "pyproject.toml", "README.md")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache")
RECORD = "bundle.json"
PARTS = ("kit", "wheels", "mmf", "node.json", "run.sh", RECORD)

RUN_SH = r"""#!/usr/bin/env bash
# The kit's GPU check on this node, offline: the kit's venv over the node's own Python (its
# torch is never reinstalled; the kit's packages come first), MMF and the patches, then
# `pekit gpu-check`. Made by `pekit gpu-bundle` for the node whose freeze is node.json.
#   NODE_PYTHON  the node's Python (default: python3)
#   VENV         the kit's venv (default: venv/ here; a kit venv there is replaced)
#   OUT          the results (default: results/ here)
#   MINUTES      the time the whole check may take, installation included (default: 8)
#   PEKIT_INSTALL_ONLY  when 1: stop after the venv and the patches, before the check
# Arguments go to `pekit gpu-check`.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
start=$(date +%s)
NODE_PYTHON=${NODE_PYTHON:-python3}
VENV=${VENV:-$here/venv}
OUT=${OUT:-$here/results}
MINUTES=${MINUTES:-8}
export PIP_NO_INDEX=1 PIP_FIND_LINKS="$here/wheels" PIP_DISABLE_PIP_VERSION_CHECK=1
"$NODE_PYTHON" "$here/kit/scripts/pekit/setup/node.py" venv --venv "$VENV" \
    --wheelhouse "$here/wheels" --wheel "$(ls "$here"/mmf/*.whl)" --kit "$here/kit"
"$VENV/bin/python" -m pekit prepare
if [ "${PEKIT_INSTALL_ONLY:-}" = 1 ]; then
    echo "run.sh: installed in $VENV; PEKIT_INSTALL_ONLY=1, gpu-check not run" >&2
    exit 0
fi
"$VENV/bin/python" -m pekit gpu-check --out "$OUT" --since "$start" --minutes "$MINUTES" "$@"
"""


def _copy_kit(dest):
    root = location.kit_root()
    for part in KIT_PARTS:
        src = root / part
        if src.is_dir():
            shutil.copytree(str(src), str(dest / part), ignore=SKIP)
        elif src.is_file():
            shutil.copy2(str(src), str(dest / part))
        else:
            raise PekitError(f"{src}: missing from the kit; expected it to copy into the bundle")


def _mmf_wheel(dest, wheels, mmf_from=None, echo=print):
    """MMF at the pin as a wheel in `dest`, built from a verified checkout (fetched from
    `mmf_from`, a clone or bundle, when the kit has none) with the setuptools of the wheelhouse
    `wheels`: offline, and the same build whatever this Python has installed."""
    checkout = mmf_source.find_checkout()
    if checkout is None:
        echo(f"gpu-bundle: fetching MMF from {mmf_from or 'its public repository'}")
        checkout, _ = mmf_source.fetch(mmf_from)
    mmf_source.verify_checkout(checkout)
    tools = sorted(Path(wheels).glob("setuptools-*.whl"))
    if not tools:
        raise PekitError(f"{wheels}: no setuptools wheel; expected one in a kit wheelhouse")
    with tempfile.TemporaryDirectory(prefix="pekit-mmf-wheel-") as tmp:
        copy, site = Path(tmp) / "mmf", Path(tmp) / "site"
        shutil.copytree(str(checkout), str(copy), ignore=shutil.ignore_patterns(".git"))
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
        what = "installing the wheelhouse's setuptools to build MMF's wheel"
        wheelhouse.run_pip(
            [*pip, "install", "--quiet", "--no-index", "--target", str(site), str(tools[-1])], what
        )
        cmd = [*pip, "wheel", "--quiet", "--no-deps", "--no-index", "--no-build-isolation"]
        cmd += ["--wheel-dir", str(dest), str(copy)]
        # MMF's own switch for building without its one C extension (cphoc: the PHOC features
        # of the TextVQA/TextCaps processors, imported by them alone, never by the kit): the
        # wheel is pure Python, so it installs on any node Python with no compiler.
        env = dict(os.environ, READTHEDOCS="1", PYTHONPATH=str(site))
        wheelhouse.run_pip(cmd, "building MMF's wheel", env=env)
    built = sorted(dest.glob("mmf-*.whl"))
    if len(built) != 1:
        raise PekitError(f"building MMF's wheel gave {len(built)} wheels; expected one")
    return built[0]


def _size(path):
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


INSTEAD = "name another folder"


def _files(folder):
    """{relative path: bytes} of every file under `folder` (links as such, never followed),
    but the record."""
    folder = Path(folder)
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_dir():
            rel = path.relative_to(folder).as_posix()
            if rel != RECORD:
                found[rel] = None if path.is_symlink() else path.stat().st_size
    return found


def _read_record(record):
    """(the files a bundle's record lists, None) or (None, why it is not one)."""
    if record.is_symlink() or not record.is_file():
        return None, f"no {RECORD}"
    try:
        doc = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        return None, f"{RECORD} unreadable: {type(e).__name__}"
    if not isinstance(doc, dict) or doc.get("kind") != "pekit-gpu-bundle":
        return None, f"{RECORD} is not a bundle's record"
    listed = doc.get("files")
    if not isinstance(listed, dict):
        return None, f"{RECORD} lists no files: an earlier pekit's bundle"
    return listed, None


def _check_destination(out):
    """`out` may be new, empty, or an earlier bundle holding exactly the files its record
    lists, each at its recorded size: replaced whole. Anything else is refused, left alone."""
    out = Path(out)
    atomic.output_folder(out.parent)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ownership.refuse(
            out, "exists and is not a folder; expected the bundle's folder", INSTEAD
        )
    if not out.is_dir() or not any(out.iterdir()):
        return out
    listed, why = _read_record(out / RECORD)
    if listed is None:
        raise ownership.refuse(
            out,
            f"not an earlier bundle ({why}); expected a new or empty folder, or a bundle"
            " pekit wrote, to replace",
            INSTEAD,
        )
    there = _files(out)
    others = sorted(name for name in there if name not in listed)
    changed = sorted(name for name in there if name in listed and there[name] != listed[name])
    if others or changed:
        names = others or changed
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        what = "not listed in" if others else "changed since"
        raise ownership.refuse(
            out,
            f"not an earlier bundle as pekit wrote it (files {what} its {RECORD}: {shown})",
            INSTEAD,
        )
    return out


def build(out, node_file, mmf_from=None, wheels=None, echo=print):
    """Write the bundle (see the module's doc) in one step; returns its record. `wheels`: an
    existing wheelhouse made for this node, copied instead of downloading one."""
    out = _check_destination(out)
    node = NodeFreeze.read(node_file)
    if node.glibc:  # refused before anything is written, naming the freeze
        wheelhouse.check_glibc(node.glibc, f"{node_file}: glibc")
    if wheels:
        path = Path(wheels) / wheelhouse.RECORD
        if not path.is_file():
            raise PekitError(
                f"{wheels}: no wheelhouse there (no {wheelhouse.RECORD}); make one with: pekit"
                f" wheelhouse {wheels} --node {node_file}"
            )
        record = wheelhouse.read_record(
            path, f"; make the wheelhouse again: pekit wheelhouse {wheels} --node {node_file}"
        )
        if record.python != node.python:
            raise PekitError(
                f"{path}: python is {record.python!r}; the node's freeze ({node_file})"
                f" is Python {node.python}: make the wheelhouse from that freeze"
            )
    with atomic.staged_folder(out, replace=True) as stage:
        (stage / "kit").mkdir()
        _copy_kit(stage / "kit")
        if wheels:
            shutil.copytree(str(wheels), str(stage / "wheels"))
        else:
            wheelhouse.build(stage / "wheels", node, echo=echo)
            record = wheelhouse.read_record(stage / "wheels" / wheelhouse.RECORD)
        (stage / "mmf").mkdir()
        mmf = _mmf_wheel(stage / "mmf", stage / "wheels", mmf_from, echo)
        shutil.copy2(str(node_file), str(stage / "node.json"))
        atomic.write_text(stage / "run.sh", RUN_SH, mode=0o755)
        sizes = {part: _size(stage / part) for part in PARTS if part != RECORD}
        result = {
            "kind": "pekit-gpu-bundle",
            "node": str(node_file),
            "python": node.python,
            "mmf_commit": pins.get("mmf.commit"),
            "mmf_wheel": mmf.name,
            "wheels": len(record.files),
            "shadows": record.shadows,
            "warnings": record.warnings,
            "bytes": sizes,
            "total_bytes": sum(sizes.values()),
            # What a later build may replace: exactly these (pekit.core.ownership).
            "files": _files(stage),
        }
        atomic.write_json(stage / RECORD, result)
    return result
