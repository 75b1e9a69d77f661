"""Writes that never leave a half-written file: a temporary in the same folder, then rename."""

import contextlib
import json
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_open(path, mode="w", encoding="utf-8", file_mode=None):
    """Open a temporary sibling of `path`; it replaces `path` only if the block succeeds."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        if "b" in mode:
            f = os.fdopen(fd, mode)
        else:
            f = os.fdopen(fd, mode, encoding=encoding, newline="\n")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if file_mode is not None:
            os.chmod(tmp, file_mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def open_binary(path):
    """atomic_open(path, "wb")."""
    return atomic_open(path, "wb")


def write_bytes(path, data, mode=None):
    """Atomically write `data`, keeping `mode` (default: the existing file's).

    An identical existing file is left untouched, so re-runs are idempotent; returns whether it wrote.
    """
    if same_content(path, data):
        return False
    if mode is None and os.path.exists(path):
        mode = os.stat(path).st_mode & 0o7777
    with atomic_open(path, "wb", file_mode=mode) as f:
        f.write(data)
    return True


def write_text(path, text, mode=None):
    return write_bytes(path, text.encode("utf-8"), mode=mode)


def write_json(path, obj):
    return write_text(path, json.dumps(obj, indent=2) + "\n")


def same_content(path, data):
    try:
        if os.path.getsize(path) != len(data):
            return False
        with open(path, "rb") as f:
            return f.read() == data
    except OSError:
        return False


def copy_file(src, dst, fsrc=None):
    """Copy a file (or an open binary stream `fsrc`) to `dst` atomically; `src` is only read."""
    with atomic_open(dst, "wb") as fout:
        if fsrc is None:
            with open(src, "rb") as fin:
                shutil.copyfileobj(fin, fout, 1 << 20)
        else:
            shutil.copyfileobj(fsrc, fout, 1 << 20)


class Staged:
    """Several files written to temporaries first and renamed together only once all are complete.

    Validation that can fail happens while staging, so a refusal leaves no output changed.
    """

    def __init__(self):
        self._pending = []  # (tmp, final)

    def add_bytes(self, path, data):
        path = os.fspath(path)
        if same_content(path, data):
            return
        folder = os.path.dirname(path) or "."
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder
        )
        self._pending.append((tmp, path))
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    def commit(self):
        for tmp, final in self._pending:
            os.replace(tmp, final)
        self._pending = []

    def discard(self):
        for tmp, _ in self._pending:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._pending = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.discard()
        return False


def symlink(target, link):
    """Point `link` at `target`, replacing an existing link atomically; idempotent."""
    target = os.fspath(target)
    link = os.fspath(link)
    if os.path.islink(link) and os.readlink(link) == target:
        return False
    if os.path.exists(link) and not os.path.islink(link):
        raise FileExistsError(link)
    folder = os.path.dirname(link) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, "." + os.path.basename(link) + f".{os.getpid()}.tmp")
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, link)
    return True
