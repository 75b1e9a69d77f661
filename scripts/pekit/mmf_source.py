"""MMF at the pinned commit: the per-user cache, `MMF_SRC`, fetching and installing.

MMF is not on PyPI at the pinned commit, so the kit clones it. Where MMF is looked for, in order:
an importable `mmf` (installed), the checkout named by `MMF_SRC`, the kit's cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .core import argtypes, pins
from .core.errors import PekitError
from .patching.targets import find_root, git_head


def cache_dir():
    """The kit's per-user cache: $PEKIT_CACHE_DIR, else $XDG_CACHE_HOME/pekit, else ~/.cache/pekit."""
    if os.environ.get("PEKIT_CACHE_DIR"):
        return Path(os.environ["PEKIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pekit"


def cached_checkout(commit=None):
    commit = commit or pins.get("mmf.commit")
    return cache_dir() / "mmf" / commit


def _git(*args, cwd=None, deadline=None):
    """Run git; `deadline` (time.monotonic()) bounds it, so an unreachable remote cannot hang."""
    timeout = None if deadline is None else max(deadline - time.monotonic(), 1)
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=str(cwd) if cwd else None,
            capture_output=True,
            check=True,
            timeout=timeout,
        )
    except FileNotFoundError as e:
        raise PekitError("git is not installed; it is needed to fetch MMF") from e
    except subprocess.TimeoutExpired as e:
        raise PekitError(f"git {' '.join(args)} did not finish in time (no network?)") from e
    except subprocess.CalledProcessError as e:
        msg = e.stderr.decode(errors="replace").strip().splitlines()
        raise PekitError(f"git {' '.join(args)} failed: {msg[-1] if msg else e}") from e
    return out.stdout.decode().strip()


def verify_checkout(path, commit=None):
    """Raise unless `path` is an MMF checkout whose HEAD is the pinned commit."""
    commit = commit or pins.get("mmf.commit")
    path = Path(path)
    if not (path / "mmf" / "__init__.py").is_file():
        raise PekitError(f"{path}: not an MMF checkout (no mmf/__init__.py)")
    head = git_head(path)
    if head is None:
        raise PekitError(f"{path}: not a git checkout; cannot verify MMF commit {commit}")
    if head != commit:
        raise PekitError(f"{path}: MMF checkout is at {head}, expected {commit}")
    return path


def fetch(source=None, dest=None, commit=None, timeout=None):
    """Clone MMF at the pinned commit into `dest` (default: the cache). Idempotent.

    Returns (path, fetched: bool). The clone goes to a temporary folder beside `dest` and is
    renamed into place only once its commit is verified. `timeout` (seconds) bounds the git
    commands together.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    commit = commit or pins.get("mmf.commit")
    source = source or pins.get("mmf.repository")
    dest = Path(dest) if dest else cached_checkout(commit)
    if dest.exists():
        verify_checkout(dest, commit)
        return dest, False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.partial")
    if tmp.exists():
        shutil.rmtree(str(tmp))
    try:
        if Path(source).exists():
            source = str(Path(source).resolve())
        _git("clone", "--quiet", "--no-checkout", source, str(tmp), deadline=deadline)
        try:
            _git("cat-file", "-e", f"{commit}^{{commit}}", cwd=tmp)
        except PekitError:
            _git("fetch", "--quiet", "origin", commit, cwd=tmp, deadline=deadline)
        _git("-c", "advice.detachedHead=false", "checkout", "--quiet", commit, cwd=tmp)
        verify_checkout(tmp, commit)
        os.replace(str(tmp), str(dest))
    except BaseException:
        shutil.rmtree(str(tmp), ignore_errors=True)
        raise
    return dest, True


def find_checkout():
    """The MMF checkout to use: MMF_SRC if set (must be at the pin), else the cache, else None."""
    env = os.environ.get("MMF_SRC")
    if env:
        return verify_checkout(env)
    cached = cached_checkout()
    if cached.exists():
        return verify_checkout(cached)
    return None


def install(checkout=None, python=None):
    """Install MMF from a verified checkout into `python`'s environment, without dependencies.

    Built from a copy, so the checkout (perhaps the user's own MMF_SRC) gets no build files.
    `pekit patch` later pins the installed copy to the commit through its files' sha256.
    """
    checkout = Path(checkout) if checkout else find_checkout()
    if checkout is None:
        raise PekitError(
            "no MMF checkout: set MMF_SRC to one at the pinned commit, or run `pekit mmf fetch`"
        )
    verify_checkout(checkout)
    with tempfile.TemporaryDirectory(prefix="pekit-mmf-build-") as tmp:
        copy = Path(tmp) / "mmf"
        shutil.copytree(str(checkout), str(copy), ignore=shutil.ignore_patterns(".git"))
        cmd = [
            python or sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--no-build-isolation", "--force-reinstall", str(copy),
        ]  # fmt: skip
        if subprocess.run(cmd).returncode != 0:
            raise PekitError(f"installing MMF from {checkout} failed (command: {' '.join(cmd)})")
    return checkout


def locate():
    """(kind, path) of the MMF this environment would use, or (None, reason)."""
    root = find_root("mmf")
    if root is not None:
        return "installed", root
    try:
        checkout = find_checkout()
    except PekitError as e:
        return None, str(e)
    if checkout is not None:
        return "checkout", checkout
    return None, (
        "MMF not found: not importable, MMF_SRC unset, and no checkout in the kit's cache "
        f"({cached_checkout()}); run `pekit mmf fetch`"
    )


def register(subparsers):
    p = subparsers.add_parser("mmf", help="fetch, install or locate MMF at the pinned commit")
    sub = p.add_subparsers(dest="mmf_action", metavar="ACTION")
    sub.required = True
    f = sub.add_parser("fetch", help="clone MMF at the pinned commit into the kit's cache")
    f.add_argument("--from", dest="source", metavar="URL|PATH", help="another clone or mirror")
    f.add_argument("--dest", metavar="DIR", help="where to put the checkout (default: the cache)")
    f.add_argument("--timeout", type=argtypes.positive_float, metavar="SECONDS",
                   help="give up after this long (default: no limit)")  # fmt: skip
    f.set_defaults(func=_cmd_fetch)
    i = sub.add_parser("install", help="pip-install MMF (no deps) from MMF_SRC or the cache")
    i.add_argument("--src", metavar="DIR", help="the checkout (default: MMF_SRC, else the cache)")
    i.set_defaults(func=_cmd_install)
    w = sub.add_parser("where", help="print where MMF is found, or why not (exit 1)")
    w.set_defaults(func=_cmd_where)


def _cmd_fetch(args):
    path, fetched = fetch(args.source, args.dest, timeout=args.timeout)
    print(f"{'fetched' if fetched else 'already present'}: {path}")
    return 0


def _cmd_install(args):
    print(f"installed MMF from {install(args.src)}")
    return 0


def _cmd_where(args):
    kind, where = locate()
    if kind is None:
        raise PekitError(where)
    print(f"{kind}: {where}")
    return 0
