"""`pekit wheelhouse DIR`: every wheel the kit needs on a node without network, in one folder.

Decided by version from the node's freeze (`--node FILE`, made on the node by `python3
scripts/pekit/setup/node.py freeze`): the modern lock's packages, transformers and pip, less torch,
torchvision and everything they require on the node (by the node's own metadata), and less
every package the node has at a version the kit works with (facts/node_compat.json). A node
package at another version is shadowed: the lock's wheel ships and comes first in the kit's venv.
Source-only packages are built into wheels here. On the node, `node.py venv` installs it
(docs/no-docker.md); `pekit gpu-bundle` puts it in one copy with the kit and MMF.

DIR/wheelhouse.json records what is there, its size, what was left out and why, what it
shadows, and any warnings. Maintainers regenerate the lock's graph (used for a node given as a
plain pip freeze, which has no requirements) after changing the lock, in the locked .venv:

    .venv/bin/python -m pekit.setup.wheelhouse graph > docker/lock/modern.requires.json
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

from ..core import argtypes, atomic, jsonfile, location, ownership, schema
from ..core.errors import PekitError, UsageError
from ..facts import pins
from . import compat
from .node import normalize, read_wheelhouse_record

TEST_TOOLS = "tests/requirements.txt"
# What the node provides in any case: the wheelhouse is for an environment that has PyTorch.
NODE_TORCH = ("torch", "torchvision")
# Shipped whatever the node has: pip (the node's venv is bootstrapped from its wheel) and the
# build tools the kit and MMF are installed with (docker/profiles.py's BUILD_TOOLS).
BOOTSTRAP_PIP = "pip"
GRAPH = "docker/lock/modern.requires.json"


def pythons():
    """The Pythons the wheelhouse is for: those the modern stack is tested on (pins.json), the
    newest last."""
    return tuple(pins.get("test_env.pythons"))


def _name(line):
    """The normalized name of a `name==version` line."""
    return normalize(line.split("==", 1)[0])


def pinned(lines):
    """{normalized name: version} of `name==version` lines."""
    return {_name(line): line.split("==", 1)[1] for line in lines}


def _marker_envs():
    """The environments the wheelhouse is for: Linux x86_64 with each of pythons()."""
    return [
        {
            "python_version": py,
            "python_full_version": py + ".0",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": "x86_64",
            "os_name": "posix",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
        }
        for py in pythons()
    ]


def _requirements(dist_name, extra=""):
    """The Requires-Dist of an installed distribution that apply on a node (for `extra`)."""
    from packaging.requirements import InvalidRequirement, Requirement

    out = []
    for text in compat.installed_requires(dist_name):
        try:
            req = Requirement(text)
        except InvalidRequirement:
            # Legacy metadata ("PyYAML (>=5.1.*)", omegaconf 2.1): the graph needs names only.
            try:
                req = Requirement(re.sub(r"\([^)]*\)", "", text))
            except InvalidRequirement:
                raise compat.MetadataError(
                    f"{compat.metadata_file(dist_name)}: field 'Requires-Dist' holds"
                    f" {text[:60]!r}; expected a requirement: reinstall {dist_name}"
                ) from None
        if req.marker is None or any(
            req.marker.evaluate({**env, "extra": extra}) for env in _marker_envs()
        ):
            if extra and req.marker is None:
                continue  # the base requirements, counted once without the extra
            out.append(req)
    return out


def requires_graph(names):
    """{name: sorted names it requires}, from the installed metadata of `names`; a requirement
    with extras (cuda-toolkit[cublas,...]) counts the extras' requirements too."""
    graph = {}
    for name in sorted({_name(n) for n in names}):
        edges = set()
        todo = [(name, "")]
        while todo:
            dist, extra = todo.pop()
            for req in _requirements(dist, extra):
                dep = _name(req.name)
                if dist == name or extra:
                    edges.add(dep)
                for e in req.extras:
                    todo.append((dep, e))
        graph[name] = sorted(edges - {name})
    return graph


def lock_path():
    """The modern profile's lock, the wheelhouse's list."""
    return location.docker_profiles().lock_path("modern")


def locked(name):
    """The lock's `name==version` line for one package."""
    for pkg, _, line in location.docker_profiles().read_lock(lock_path()):
        if _name(pkg) == _name(name):
            return line
    raise PekitError(f"{lock_path()}: no {name} in the lock")


def lock_graph():
    """The committed graph of the lock's packages and the node's torch/torchvision."""
    path = location.kit_root() / GRAPH
    graph = jsonfile.load(path, "the lock's requirement graph")
    check = schema.Fields(path, "; regenerate it (python -m pekit.setup.wheelhouse graph)")
    for name, deps in graph.items():
        check.strings(deps, schema.key(name))
    return graph


def provided(roots, graph):
    """`roots` and every package they require, transitively: what a node that has them has."""
    seen, todo = set(), [_name(r) for r in roots]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += graph.get(name, [])
    return seen


@dataclass
class Plan:
    """What a wheelhouse holds for one node, and why each other package is left out."""

    wanted: List[str]  # `name==version` lines to download
    left_out: Dict[str, str]  # line: why
    shadows: Dict[str, str] = field(default_factory=dict)  # name: "node's -> shipped"
    warnings: List[str] = field(default_factory=list)
    # What the kit takes from the node, checked again on the node before installing
    # (node.py venv): name -> {"version": the freeze's, "min"/"max" or "exact"}.
    kept: Dict[str, Dict[str, str]] = field(default_factory=dict)


def _lock_lines(with_tests, profile="modern"):
    profiles = location.docker_profiles()
    lines = profiles.image_requirements(profile)
    lines.append(f"transformers=={pins.get('transformers.version')}")
    # pip itself: the node's venv is bootstrapped from its wheel (no ensurepip needed there).
    lines.append(f"pip=={profiles.profile(profile)['pip']}")
    if with_tests:
        lines += [t for _, _, t in profiles.read_lock(location.kit_root() / TEST_TOOLS)]
    out = []
    for line in lines:
        if line not in out:
            out.append(line)
    return out


def _torch_side(node, warnings):
    """The node's torch, torchvision and all they require: the node's own, never shipped."""
    if node is None or not node.has_requirements:
        return provided(NODE_TORCH, lock_graph())
    missing = [n for n in NODE_TORCH if n not in node.packages]
    if missing:
        raise PekitError(
            f"{node.source}: no {' and no '.join(missing)} on the node; the wheelhouse is for a"
            " node's own PyTorch (torch and torchvision installed there)"
        )
    return compat.closure(node, NODE_TORCH, warn=warnings.append) | _lock_torch_only()


def _lock_torch_only():
    """What the lock holds only because its own torch needs it (the CUDA wheels, triton,
    sympy, ...): a node's torch brings its own, or none of it (a CPU or ROCm build)."""
    graph = lock_graph()
    torch_side = provided(NODE_TORCH, graph)
    # What the rest of the lock requires, without walking into torch (pytorch-lightning needs
    # torch, not what torch needs).
    rest = {n: [d for d in deps if d not in NODE_TORCH] for n, deps in graph.items()}
    needed = set()
    for name, deps in rest.items():
        if name not in torch_side:
            needed |= provided(deps, rest)
    return torch_side - needed


def plan(node=None, with_tests=False, profile="modern"):
    """The wheelhouse for `node` (a node.NodeFreeze, or None: a node with torch and nothing
    else the kit needs). A node package is kept where its version is one the kit works with
    (compat); otherwise the lock's wheel ships and shadows it in the kit's venv. Never shipped:
    torch, torchvision and what they require on the node."""
    warnings = []
    torch_side = _torch_side(node, warnings)
    lines = _lock_lines(with_tests, profile)
    locked_versions = pinned(lines)
    bootstrap = {BOOTSTRAP_PIP, *location.docker_profiles().BUILD_TOOLS}

    def node_version(name):
        return None if node is None else node.version(name)

    def usable(name):
        have = node_version(name)
        return have is not None and compat.accepts(name, have, locked_versions[name])

    # numpy decides which builds of the compiled packages ship (compat's with_numpy_2).
    numpy = node_version("numpy") if ("numpy" in torch_side or usable("numpy")) else None
    wanted, left_out, shadows, kept = [], {}, {}, {}
    for line in lines:
        name = _name(line)
        have = node_version(name)
        # The build tools and pip stay: the kit and MMF are built on the node with the lock's own.
        if name in bootstrap:
            wanted.append(line)
        elif name in torch_side:
            left_out[line] = "torch, torchvision or what they require: the node's own"
            if have and name == "numpy":  # the builds shipped depend on its major version
                kept[name] = {"version": have, "major": have.split(".")[0]}
            if (
                have
                and not compat.accepts(name, have, locked_versions[name])
                and compat.accepted_range(name)
            ):
                warnings.append(
                    f"the node's {name} {have} comes with its torch; the kit is tested with "
                    f"{compat.describe(name, locked_versions[name])}"
                )
        elif usable(name):
            left_out[line] = (
                f"the node's {have} (the kit works with {compat.describe(name, locked_versions[name])})"
            )
            span = compat.accepted_range(name)
            kept[name] = (
                {"version": have, "min": span[0], "max": span[1]}
                if span
                else {"version": have, "exact": locked_versions[name]}
            )
        else:
            line = (
                f"{line.split('==', 1)[0]}=={compat.build_for(name, locked_versions[name], numpy)}"
            )
            wanted.append(line)
            if have is not None:
                shadows[name] = f"the node's {have} -> {line.split('==', 1)[1]}"
    if node is not None:
        final = {name: pkg.version for name, pkg in node.packages.items()}
        final.update(pinned(wanted))
        for line in left_out:
            name = _name(line)
            if node_version(name) is not None and name not in torch_side:
                warnings += compat.unmet(node, name, final, warn=warnings.append)
    return Plan(wanted, left_out, shadows, warnings, kept)


def platform_tags(glibc="2.28", arch="x86_64"):
    """pip's --platform values for a Linux with `glibc`: every manylinux tag it accepts."""
    minor = int(check_glibc(glibc).split(".")[1])
    tags = [f"manylinux_2_{m}_{arch}" for m in range(minor, 4, -1)]
    legacy = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
    return tags + [f"{n}_{arch}" for n, m in legacy.items() if m <= minor]


def check_glibc(text, source="--glibc"):
    """`text`, a glibc version MAJOR.MINOR (argtypes.glibc's rule); a UsageError naming
    `source` (the option, or the node's freeze it came from) otherwise."""
    try:
        return argtypes.glibc(text)
    except argparse.ArgumentTypeError as e:
        raise UsageError(f"{source}: {e}") from None


RECORD = "wheelhouse.json"
OWN_FILES = ("wheelhouse.json", "requirements.txt")


def read_record(path, hint=""):
    """The wheelhouse record at `path` (node.WheelhouseRecord), every field checked by the one
    reader of wheelhouse records (node.py's, which the node runs without the kit): a refusal
    names the file, the field and what was expected, then `hint`."""
    return read_wheelhouse_record(path, hint)


def _check_destination(out):
    """`out` may be new, empty, or an earlier wheelhouse holding exactly what its record lists
    (each listed file at its recorded size, and the record's own files): replaced whole.
    Anything else is the user's: refused in one line, left alone."""
    out = Path(out)
    atomic.output_folder(out.parent)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ownership.refuse(
            out, "exists and is not a folder; expected the wheelhouse's folder", INSTEAD
        )
    if not out.is_dir() or not any(out.iterdir()):
        return out
    record = out / RECORD
    if record.is_symlink() or not record.is_file():
        raise ownership.refuse(
            out,
            f"no {RECORD}: not a wheelhouse pekit wrote; expected a new or empty folder, or"
            " an earlier wheelhouse to replace",
            INSTEAD,
        )
    doc = read_record(
        record,
        "; not a wheelhouse record this kit wrote: the folder is left alone, move it away or"
        " name another folder",
    )
    sizes = {f["file"]: f["bytes"] for f in doc.files}
    there = {p.name: p for p in out.iterdir()}
    others = sorted(set(there) - set(sizes) - set(OWN_FILES))
    changed = sorted(
        name
        for name, path in there.items()
        if name in sizes
        and (path.is_symlink() or not path.is_file() or path.stat().st_size != sizes[name])
    )
    changed += [
        name
        for name in OWN_FILES
        if name in there and (there[name].is_symlink() or not there[name].is_file())
    ]
    for names, what in (
        (others, f"holds files its {RECORD} does not list"),
        (changed, f"holds files that differ from its {RECORD} (their size or kind)"),
    ):
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            raise ownership.refuse(
                out,
                f"{what}: {shown}; a wheelhouse is replaced only as pekit wrote it",
                INSTEAD,
            )
    return out


INSTEAD = "name another folder"


def build(out, node=None, python=None, with_tests=False, glibc=None, echo=print):
    """Fill `out` with the wheels for `node` (a NodeFreeze, or None), in one step (a failed or
    killed build leaves `out` as it was); returns the record written to out/wheelhouse.json."""
    python = python or (node.python if node else pythons()[-1])
    if python not in pythons():
        raise UsageError(f"--python {python}: expected one of {', '.join(pythons())}")
    if node is not None and node.python != python:
        raise UsageError(
            f"--python {python}: the node's freeze ({node.source}) is Python {node.python}"
        )
    if glibc:
        glibc = check_glibc(glibc)
    elif node is not None and node.glibc:
        glibc = check_glibc(node.glibc, f"{node.source}: glibc")
    else:
        glibc = "2.28"
    out = _check_destination(out)
    made = plan(node, with_tests)
    for line in made.warnings:
        echo(f"wheelhouse: warning: {line}")
    sdist_only = {_name(n) for n in location.docker_profiles().profile("modern")["sdist_only"]}
    binary = [line for line in made.wanted if _name(line) not in sdist_only]
    source = [line for line in made.wanted if _name(line) in sdist_only]
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    with atomic.staged_folder(out, replace=True) as stage:
        cmd = [*pip, "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        cmd += ["--dest", str(stage), "--python-version", python, "--implementation", "cp"]
        for abi in ("cp" + python.replace(".", ""), "abi3", "none"):
            cmd += ["--abi", abi]
        for tag in platform_tags(glibc) + ["any"]:
            cmd += ["--platform", tag]
        echo(f"wheelhouse: downloading {len(binary)} wheels for Python {python} into {out}")
        run_pip([*cmd, *binary], "downloading the wheels")
        if source:
            echo(f"wheelhouse: building {len(source)} source-only packages: {', '.join(source)}")
            run_pip(
                [*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(stage), *source],
                "building the source-only packages",
            )
        files = sorted(stage.glob("*.whl"))
        record = {
            "python": python,
            "glibc": glibc,
            "node": node.source if node else None,
            "requirements": made.wanted,
            "left_out": made.left_out,
            "shadows": made.shadows,
            "warnings": made.warnings,
            "kept": made.kept,
            "files": [{"file": p.name, "bytes": p.stat().st_size} for p in files],
            "bytes": sum(p.stat().st_size for p in files),
        }
        # pip bootstraps the venv and is installed first, by node.py; not from the list.
        listed = [ln for ln in made.wanted if _name(ln) != BOOTSTRAP_PIP]
        atomic.write_text(stage / "requirements.txt", "\n".join(listed) + "\n")
        atomic.write_json(stage / RECORD, record)
    return record


def run_pip(cmd, what, env=None):
    """Run a pip command; a failure is one line: pip's last line that is not a hint."""
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stdout.decode(errors="replace").splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith(("hint:", "note:", "╰"))]
        raise PekitError(f"{what} failed: {lines[-1] if lines else proc.returncode}")


def _graph_main():
    """Print the lock's dependency graph from this (locked) environment's metadata."""
    profiles = location.docker_profiles()
    names = [n for n, _, _ in profiles.read_lock(lock_path())]
    print(json.dumps(requires_graph([*names, *NODE_TORCH]), indent=1, sort_keys=True))


if __name__ == "__main__" and sys.argv[1:] == ["graph"]:
    try:
        _graph_main()
    except PekitError as e:
        print(f"pekit.setup.wheelhouse graph: {e}", file=sys.stderr)
        sys.exit(1)
