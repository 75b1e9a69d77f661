"""`pekit wheelhouse DIR`: every wheel the kit needs on a node without network, in one folder.

The modern profile's locked packages and transformers, for a chosen Python (3.11 or 3.12),
without torch, torchvision and what the node already has (`--have`), nor anything those require
(an environment that has matplotlib has its fonttools too: docker/lock/modern.requires.json is
the lock's dependency graph); source-only packages are built into wheels here. On the node:

    pip install --no-index --no-deps --find-links DIR -r DIR/requirements.txt
    pip install --no-index --no-deps --no-build-isolation -e KIT
    pekit prepare --mmf-from MMF_BUNDLE

DIR/wheelhouse.json records what is there, its size, and what was left out and why.
Maintainers regenerate the graph after changing the lock, in the locked .venv:

    .venv/bin/python -m pekit.wheelhouse graph > docker/lock/modern.requires.json
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

from .core import argtypes, atomic, pins
from .core.errors import PekitError, UsageError

PYTHONS = ("3.11", "3.12")
TEST_TOOLS = "tests/requirements.txt"
# What the node provides in any case: the wheelhouse is for an environment that has PyTorch.
NODE_TORCH = ("torch", "torchvision")
GRAPH = "docker/lock/modern.requires.json"


def _profiles():
    """docker/profiles.py, the one reader of the image profiles and their locks."""
    path = pins.REPO_ROOT / "docker" / "profiles.py"
    spec = importlib.util.spec_from_file_location("pekit_docker_profiles", str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _name(line):
    return re.sub(r"[-_.]+", "-", line.split("==", 1)[0]).lower()


def _marker_envs():
    """The environments the wheelhouse is for: Linux x86_64 with each of PYTHONS."""
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
        for py in PYTHONS
    ]


def _requirements(dist_name, extra=""):
    """The Requires-Dist of an installed distribution that apply on a node (for `extra`)."""
    import importlib.metadata  # Python 3.8+; the graph is made in the modern .venv

    from packaging.requirements import InvalidRequirement, Requirement

    out = []
    for text in importlib.metadata.distribution(dist_name).requires or ():
        try:
            req = Requirement(text)
        except InvalidRequirement:
            # Legacy metadata ("PyYAML (>=5.1.*)", omegaconf 2.1): the graph needs names only.
            req = Requirement(re.sub(r"\([^)]*\)", "", text))
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
    return _profiles().lock_path("modern")


def locked(name):
    """The lock's `name==version` line for one package."""
    for pkg, _, line in _profiles().read_lock(lock_path()):
        if _name(pkg) == _name(name):
            return line
    raise PekitError(f"{lock_path()}: no {name} in the lock")


def lock_graph():
    """The committed graph of the lock's packages and the node's torch/torchvision."""
    path = pins.REPO_ROOT / GRAPH
    return json.loads(path.read_text(encoding="utf-8"))


def provided(roots, graph):
    """`roots` and every package they require, transitively: what a node that has them has."""
    seen, todo = set(), [_name(r) for r in roots]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += graph.get(name, [])
    return seen


def plan(have=(), with_tests=False, profile="modern"):
    """(wanted, left_out): the `name==version` lines the wheelhouse holds, and {line: why} of
    those it leaves out."""
    profiles = _profiles()
    graph = lock_graph()
    node_torch = provided(NODE_TORCH, graph)
    node_has = provided(have, graph)
    lines = profiles.image_requirements(profile)
    lines.append(f"transformers=={pins.get('transformers.version')}")
    if with_tests:
        lines += [t for _, _, t in profiles.read_lock(pins.REPO_ROOT / TEST_TOOLS)]
    wanted, left_out = [], {}
    for line in lines:
        name = _name(line)
        # The build tools stay: the kit and MMF are built on the node, with the lock's own.
        build_tool = name in profiles.BUILD_TOOLS
        if name in node_torch and not build_tool:
            left_out[line] = "torch, torchvision or what they require: the node's own"
        elif name in node_has and not build_tool:
            left_out[line] = "the node has it, or a package it has requires it (--have)"
        elif line not in wanted:
            wanted.append(line)
    return wanted, left_out


def platform_tags(glibc="2.28", arch="x86_64"):
    """pip's --platform values for a Linux with `glibc`: every manylinux tag it accepts."""
    minor = int(glibc.split(".")[1])
    tags = [f"manylinux_2_{m}_{arch}" for m in range(minor, 4, -1)]
    legacy = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
    return tags + [f"{n}_{arch}" for n, m in legacy.items() if m <= minor]


def _check_destination(out):
    """`out` may be new, empty, or an earlier wheelhouse (replaced whole); anything else is the
    user's and is left alone."""
    out = Path(out)
    atomic.output_folder(out.parent)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise PekitError(f"{out}: exists and is not a folder; expected the wheelhouse's folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "wheelhouse.json").is_file():
        raise PekitError(
            f"{out}: a folder with other files and no wheelhouse.json; expected a new or empty"
            " folder, or an earlier wheelhouse to replace"
        )
    return out


def build(out, python="3.12", have=(), with_tests=False, glibc="2.28", echo=print):
    """Fill `out` with the wheels, in one step (a failed or killed build leaves `out` as it
    was); returns the record written to out/wheelhouse.json."""
    if python not in PYTHONS:
        raise UsageError(f"--python {python}: expected one of {', '.join(PYTHONS)}")
    out = _check_destination(out)
    wanted, left_out = plan(have, with_tests)
    sdist_only = {_name(n) for n in _profiles().profile("modern")["sdist_only"]}
    binary = [line for line in wanted if _name(line) not in sdist_only]
    source = [line for line in wanted if _name(line) in sdist_only]
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    with atomic.staged_folder(out) as stage:
        cmd = [*pip, "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        cmd += ["--dest", str(stage), "--python-version", python, "--implementation", "cp"]
        for abi in ("cp" + python.replace(".", ""), "abi3", "none"):
            cmd += ["--abi", abi]
        for tag in platform_tags(glibc) + ["any"]:
            cmd += ["--platform", tag]
        echo(f"wheelhouse: downloading {len(binary)} wheels for Python {python} into {out}")
        _run([*cmd, *binary], "downloading the wheels")
        if source:
            echo(f"wheelhouse: building {len(source)} source-only packages: {', '.join(source)}")
            _run(
                [*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(stage), *source],
                "building the source-only packages",
            )
        files = sorted(stage.glob("*.whl"))
        record = {
            "python": python,
            "glibc": glibc,
            "requirements": wanted,
            "left_out": left_out,
            "files": [{"file": p.name, "bytes": p.stat().st_size} for p in files],
            "bytes": sum(p.stat().st_size for p in files),
        }
        atomic.write_text(stage / "requirements.txt", "\n".join(wanted) + "\n")
        atomic.write_json(stage / "wheelhouse.json", record)
    return record


def _run(cmd, what):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stdout.decode(errors="replace").splitlines() if ln.strip()]
        raise PekitError(f"{what} failed: {lines[-1] if lines else proc.returncode}")


def register(subparsers):
    p = subparsers.add_parser(
        "wheelhouse",
        help="every wheel the kit needs, for installing on a node without network",
        description=__doc__.strip().splitlines()[0],
    )
    p.add_argument("out", metavar="DIR", help="the folder to fill (made if needed)")
    p.add_argument("--python", default="3.12", choices=PYTHONS, help="the node's Python")
    p.add_argument(
        "--have",
        default="",
        metavar="NAMES",
        help="comma-separated packages the node already has (numpy,matplotlib,...)",
    )
    p.add_argument(
        "--with-tests",
        action="store_true",
        help="also the test tools (pytest, ...), for `make gpu-check`",
    )
    p.add_argument("--glibc", default="2.28", help="the node's glibc (default 2.28)")
    p.add_argument("--list", action="store_true", help="print what would go in, download nothing")
    p.set_defaults(func=_main)


def have_names(items):
    """Package names from --have: names, or @FILE for a `pip freeze` of the node."""
    names = []
    for item in items:
        if item.startswith("@"):
            path = Path(item[1:])
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as e:
                raise PekitError(
                    f"{path}: cannot read the node's package list: {e.strerror}"
                ) from None
            for line in text.splitlines():
                line = line.split("#", 1)[0].strip()
                match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)", line)
                if match and not line.startswith("-"):
                    names.append(match.group(1))
        else:
            names.append(item)
    return names


def _main(args):
    have = have_names(argtypes.names(args.have, None, (), "--have"))
    if args.list:
        wanted, left_out = plan(have, args.with_tests)
        for line in wanted:
            print(line)
        for line, why in left_out.items():
            print(f"# left out: {line}  ({why})")
        return 0
    record = build(
        args.out,
        args.python,
        have,
        args.with_tests,
        args.glibc,
        echo=lambda text: print(text, file=sys.stderr),
    )
    print(
        f"wrote {args.out}: {len(record['files'])} wheels, {record['bytes'] / 1e6:.1f} MB "
        f"for Python {record['python']} ({len(record['left_out'])} packages left out)"
    )
    return 0


def _graph_main():
    """Print the lock's dependency graph from this (locked) environment's metadata."""
    profiles = _profiles()
    names = [n for n, _, _ in profiles.read_lock(lock_path())]
    print(json.dumps(requires_graph([*names, *NODE_TORCH]), indent=1, sort_keys=True))


if __name__ == "__main__" and sys.argv[1:] == ["graph"]:
    _graph_main()
