"""Fingerprints of a folder's tree, to assert what was (or was not) written below it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def sha_tree(root: Path):
    """sha256 of every file below root, to assert that nothing was written."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def tree_hash(root):
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root, followlinks=True)):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            h.update(os.path.relpath(path, root).encode())
            with open(path, "rb") as f:
                h.update(f.read())
            h.update(str(os.stat(path).st_mtime_ns).encode())
    return h.hexdigest()
