"""git, the one way the kit calls it: fetching MMF, verifying a checkout, a run's provenance."""

import subprocess
import time
from pathlib import Path

from .errors import PekitError


def git(*args, cwd=None, deadline=None):
    """git's output; a PekitError with git's last line when it fails. `deadline`
    (time.monotonic()) bounds it, so an unreachable remote cannot hang."""
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
        raise PekitError("git is not installed; it is needed here") from e
    except subprocess.TimeoutExpired as e:
        raise PekitError(f"git {' '.join(args)} did not finish in time (no network?)") from e
    except subprocess.CalledProcessError as e:
        msg = e.stderr.decode(errors="replace").strip().splitlines()
        raise PekitError(f"git {' '.join(args)} failed: {msg[-1] if msg else e}") from e
    return out.stdout.decode().strip()


def head(root):
    """HEAD commit of a git checkout at `root`, or None if it is not one (or git is absent)."""
    if not (Path(root) / ".git").exists():
        return None
    try:
        return git("-C", str(root), "rev-parse", "HEAD")
    except PekitError:
        return None


def revision(root):
    """{git_revision, git_dirty} of the checkout at `root` (None, None when it is not one)."""
    try:
        rev = git("-C", str(root), "rev-parse", "HEAD")
        dirty = git("-C", str(root), "status", "--porcelain", "--untracked-files=no")
    except PekitError:
        return {"git_revision": None, "git_dirty": None}
    return {"git_revision": rev, "git_dirty": bool(dirty)}
