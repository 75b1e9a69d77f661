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

from ...core import atomic, gitinfo
from ...core.errors import PekitError
from ...core.gitinfo import git
from ...facts import pins
from ..patching.targets import find_root


def cache_dir():
    """The kit's per-user cache: $PEKIT_CACHE_DIR, else $XDG_CACHE_HOME/pekit, else ~/.cache/pekit."""
    if os.environ.get("PEKIT_CACHE_DIR"):
        return Path(os.environ["PEKIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pekit"


def cached_checkout(commit=None):
    commit = commit or pins.get("mmf.commit")
    return cache_dir() / "mmf" / commit


def verify_checkout(path, commit=None):
    """Raise unless `path` is an MMF checkout whose HEAD is the pinned commit."""
    commit = commit or pins.get("mmf.commit")
    path = Path(path)
    if not (path / "mmf" / "__init__.py").is_file():
        raise PekitError(f"{path}: not an MMF checkout (no mmf/__init__.py)")
    head = gitinfo.head(path)
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
    if Path(source).exists():
        source = str(Path(source).resolve())
    # Cloned beside `dest` and put in its place only once the commit is verified.
    with atomic.staged_folder(dest) as tmp:
        git("clone", "--quiet", "--no-checkout", source, str(tmp), deadline=deadline)
        try:
            git("cat-file", "-e", f"{commit}^{{commit}}", cwd=tmp)
        except PekitError:
            git("fetch", "--quiet", "origin", commit, cwd=tmp, deadline=deadline)
        git("-c", "advice.detachedHead=false", "checkout", "--quiet", commit, cwd=tmp)
        verify_checkout(tmp, commit)
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
            python or sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--force-reinstall",
            str(copy),
        ]
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
