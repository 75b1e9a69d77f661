"""Writes that never leave a half-written file: temporary file in the same folder, then rename."""

import json
import os
import tempfile
from pathlib import Path


def write_bytes(path, data, mode=None):
    """Atomically replace `path` with `data`, keeping `mode` (or the existing file's mode)."""
    path = Path(path)
    if mode is None and path.exists():
        mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, str(path))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path, text, mode=None):
    write_bytes(path, text.encode("utf-8"), mode=mode)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
