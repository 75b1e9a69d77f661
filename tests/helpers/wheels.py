"""Where the tests keep the wheels they download (the pinned transformers wheel, setuptools),
and the one way they download one: pip into a private folder, then a rename into the cache, so
test workers running side by side never see another's half-written wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pekit.core import location

WHEEL_CACHE = location.kit_root() / ".cache" / "wheels"


def cached_wheel(requirement, pattern):
    """The cached wheel matching `pattern` (a glob), downloaded from PyPI as `requirement` when
    missing; returns its path, or raises RuntimeError with pip's output."""
    found = sorted(WHEEL_CACHE.glob(pattern))
    if found:
        return found[-1]
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=str(WHEEL_CACHE), prefix=".download-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        cmd += ["--disable-pip-version-check", "--only-binary=:all:", requirement, "-d", tmp]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        got = sorted(Path(tmp).glob(pattern))
        if proc.returncode != 0 or not got:
            raise RuntimeError(
                f"could not download {requirement} from PyPI:\n{proc.stdout.decode()}"
            )
        # A rename within one folder: another worker's copy of the same file is replaced whole.
        for path in got:
            shutil.move(str(path), str(WHEEL_CACHE / path.name))
    return sorted(WHEEL_CACHE.glob(pattern))[-1]
