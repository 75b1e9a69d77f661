"""Writes that never leave a half-written file: a temporary in the same folder, then rename.

New files get the mode the user's umask gives (a temporary is created 0600); a replaced file
keeps its own. Several files that must change together go through FileSet, a journaled set that
a kill cannot split.
"""

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

from .errors import PekitError


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode():
    """The mode open() would give a new file here: 0666 less the umask."""
    return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_open(path, mode="w", encoding="utf-8", file_mode=None):
    """Open a temporary sibling of `path`; it replaces `path` only if the block succeeds."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix="." + os.path.basename(path) + ".pekit-", suffix=".tmp", dir=folder
    )
    try:
        if "b" in mode:
            f = os.fdopen(fd, mode)
        else:
            f = os.fdopen(fd, mode, encoding=encoding, newline="\n")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, new_file_mode() if file_mode is None else file_mode)
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
    """JSON as the standard has it (NaN and infinities written as null: pekit.core.jsonfile)."""
    from .jsonfile import dumps

    return write_text(path, dumps(obj, indent=2) + "\n")


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


def remove_scratch(folder, keep=()):
    """Remove the kit's scratch files in `folder` (not below): the temporaries and staged files
    of a run killed before it could rename them. Only the kit's own names are touched."""
    try:
        names = os.listdir(os.fspath(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        path = os.path.join(os.fspath(folder), name)
        if (
            _SCRATCH.match(name)
            and path not in keep
            and (os.path.islink(path) or os.path.isfile(path))
        ):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def output_folder(folder):
    """`folder`, made if needed, for output; refused (before anything is written) when it
    cannot be one: a file on its path, or a folder this user cannot write."""
    folder = Path(os.fspath(folder))
    for parent in [folder, *folder.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise PekitError(f"{parent}: exists and is not a folder; expected an output folder")
            break
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(str(folder), os.W_OK | os.X_OK):
        raise PekitError(f"{folder}: not writable by this user; choose another output folder")
    return folder


def output_file(path):
    """`path`, for a file about to be written: refused when it is a folder or its folder cannot
    be one (output_folder)."""
    path = Path(os.fspath(path))
    if path.is_dir():
        raise PekitError(f"{path}: is a folder; expected the file to write")
    output_folder(path.parent)
    return path


def lock_folder(folder):
    """An exclusive lock on `folder` (flock on the folder itself: no lock file is left);
    returns the descriptor to pass to unlock_folder."""
    fd = os.open(os.fspath(folder), os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def unlock_folder(fd):
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def locked(folder):
    fd = lock_folder(folder)
    try:
        yield
    finally:
        unlock_folder(fd)


class FileSetError(PekitError):
    """A journal left by an interrupted change cannot be finished."""


# The kit's own scratch names: FileSet's staged files and atomic_open's temporaries.
_SCRATCH = re.compile(r"^\..+\.pekit-([0-9a-f]{12}\.new|[a-z0-9_]{8}\.tmp)$")
JOURNAL = ".pekit-journal.json"


def _staged_name(path, txid):
    return os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.pekit-{txid}.new")


def _fsync_dir(folder):
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class FileSet:
    """Files replaced as one unit, even if the process is killed part way.

    Every new content is written to a staged sibling (`.<name>.pekit-<id>.new`, same folder, so
    the rename is atomic), then a journal naming them all goes into each of `journal_dirs`,
    then the renames, then the journals are removed. Whoever changes the set next calls
    `recover()` first (FileSet's `__enter__` does): a journal found there is finished (the
    staged contents are complete once a journal exists), and staged files no journal names are
    the leftovers of a run killed before its journal: they are removed. Every file of the set
    must lie under one of `journal_dirs`; the journal folders and `sweep` (more folders) are
    cleaned, not their subfolders. Concurrent writers are serialised with a lock on each
    journal folder.

        with FileSet([out]) as fs:
            fs.add(out / "a.json", data_a)
            fs.add(out / "b.json", data_b)
        # both changed, or (killed before the journal) neither
    """

    def __init__(self, journal_dirs, sweep=()):
        self.dirs = sorted({os.path.realpath(os.fspath(d)) for d in journal_dirs})
        self.sweep = sorted({os.path.realpath(os.fspath(d)) for d in sweep} | set(self.dirs))
        self.txid = uuid.uuid4().hex[:12]
        self._staged = []  # (final, staged)
        self._locks = []
        self.recovered = []

    # -- locking and recovery ----------------------------------------------------------------

    def lock(self):
        for folder in self.dirs:
            self._locks.append(lock_folder(folder))

    def unlock(self):
        for fd in self._locks:
            unlock_folder(fd)
        self._locks = []

    def _inside(self, path):
        real = os.path.realpath(path)
        return any(real == d or real.startswith(d + os.sep) for d in self.dirs)

    def _read_journal(self, path):
        """The journal's entries [(final, staged)], checked: every file inside the set's folders,
        every staged name the one its file would have."""
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            txid, entries = doc["txid"], doc["files"]
            pairs = [(e["file"], e["staged"]) for e in entries]
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
            raise FileSetError(
                f"{path}: unreadable journal of an interrupted change ({e}); remove it and"
                " check the files it would name"
            ) from None
        for final, staged in pairs:
            if not (
                isinstance(final, str)
                and staged == _staged_name(final, txid)
                and self._inside(final)
            ):
                raise FileSetError(f"{path}: journal names {final!r} outside {self.dirs}")
        return pairs, doc.get("journals", [path])

    def recover(self):
        """Finish an interrupted change and remove orphaned staged files; returns the files
        finished."""
        finished = []
        named = set()
        for folder in self.dirs:
            journal = os.path.join(folder, JOURNAL)
            if not os.path.exists(journal):
                continue
            pairs, journals = self._read_journal(journal)
            for final, staged in pairs:
                if os.path.lexists(staged):
                    os.replace(staged, final)
                    finished.append(final)
                named.add(staged)
            for copy in {journal, *[j for j in journals if self._inside(j)]}:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(copy)
        for folder in self.sweep:
            remove_scratch(folder, keep=named)
        self.recovered = finished
        return finished

    # -- staging and publishing -------------------------------------------------------------

    def add(self, path, data, mode=None):
        """Stage `data` for `path` (kept: the existing file's mode, else the umask's). An
        identical existing file is left alone; returns whether anything was staged."""
        path = os.path.realpath(os.fspath(path))
        if not self._inside(path):
            raise ValueError(f"{path} is outside the set's folders {self.dirs}")
        if same_content(path, data):
            return False
        if mode is None:
            mode = os.stat(path).st_mode & 0o7777 if os.path.exists(path) else new_file_mode()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        staged = _staged_name(path, self.txid)
        self._staged.append((path, staged))
        with open(staged, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(staged, mode)
        return True

    @property
    def files(self):
        return [final for final, _ in self._staged]

    def commit(self):
        if not self._staged:
            return []
        journals = [os.path.join(d, JOURNAL) for d in self.dirs]
        doc = {
            "about": "pekit: files being replaced together; the next pekit command that "
            "changes them finishes this (each staged file is renamed onto its file)",
            "txid": self.txid,
            "journals": journals,
            "files": [{"file": f, "staged": s} for f, s in self._staged],
        }
        for folder in {os.path.dirname(s) for _, s in self._staged}:
            _fsync_dir(folder)
        for journal in journals:
            write_json(journal, doc)
        for final, staged in self._staged:
            os.replace(staged, final)
        for journal in journals:
            os.unlink(journal)
        done, self._staged = self.files, []
        return done

    def discard(self):
        for _, staged in self._staged:
            with contextlib.suppress(OSError):
                os.unlink(staged)
        self._staged = []

    def __enter__(self):
        self.lock()
        try:
            self.recover()
        except BaseException:
            self.unlock()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.commit()
            else:
                self.discard()
        finally:
            self.unlock()
        return False


# ---- a folder published in one step ------------------------------------------------------


def replace_link(path, target):
    """Point the link `path` at `target` in one rename; idempotent. A link is replaced; a file
    or folder at `path` is refused (FileExistsError), never removed."""
    path, target = Path(os.fspath(path)), os.fspath(target)
    if path.is_symlink() and os.readlink(str(path)) == target:
        return False
    if path.exists() and not path.is_symlink():
        raise FileExistsError(errno.EEXIST, "exists and is not a link", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.parent / f".{path.name}.pekit-{uuid.uuid4().hex[:12]}.new"
    os.symlink(target, str(staged))
    os.replace(str(staged), str(path))
    return True


def _versions(path):
    return [p for p in path.parent.glob(f".{path.name}-*") if p.is_dir() and not p.is_symlink()]


class Link(str):
    """In publish_folder's contents: a symbolic link to this target, not a file."""


def _holds(folder, contents):
    try:
        names = set(os.listdir(folder))
    except OSError:
        return False

    def same(name, data):
        path = os.path.join(folder, name)
        if isinstance(data, Link):
            return os.path.islink(path) and os.readlink(path) == data
        return not os.path.islink(path) and same_content(path, data)

    return names == set(contents) and all(same(n, d) for n, d in contents.items())


def _exchange(a, b):
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); OSError where unsupported."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available", a)
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), a)


def swap_into_place(new, dest):
    """Put `new` (a file or folder) at `dest` in one step: a rename, or where something is
    there, renameat2 RENAME_EXCHANGE (where the system has none, two renames); what was there is
    removed after."""
    new, dest = str(new), str(dest)
    if not os.path.lexists(dest):
        os.replace(new, dest)
        return
    try:
        _exchange(new, dest)
        old = new  # the exchange left the old folder at the new one's name
    except OSError:
        old = os.path.join(
            os.path.dirname(dest), f".{os.path.basename(dest)}-{uuid.uuid4().hex[:12]}"
        )
        os.replace(dest, old)
        os.replace(new, dest)
    if os.path.isdir(old) and not os.path.islink(old):
        shutil.rmtree(old, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(old)


@contextlib.contextmanager
def staged_folder(dest):
    """A new folder beside `dest` to build a whole folder in; it takes `dest`'s place in one
    step when the block succeeds, and is removed when it fails. Folders a killed run staged
    for `dest` are removed first (one writer of `dest` at a time)."""
    dest = Path(os.fspath(dest))
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.pekit-*.new"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(str(stale), ignore_errors=True)
    new = dest.parent / f".{dest.name}.pekit-{uuid.uuid4().hex[:12]}.new"
    new.mkdir()
    try:
        yield new
        swap_into_place(new, dest)
    except BaseException:
        shutil.rmtree(str(new), ignore_errors=True)
        raise


def link_or_copy(src, target):
    """`target` becomes `src`'s content in one rename: a hard link where the file system allows,
    else a copy."""
    target = Path(os.fspath(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.pekit-{uuid.uuid4().hex[:12]}.new"
    try:
        try:
            os.link(os.fspath(src), str(tmp))
        except OSError:
            shutil.copyfile(os.fspath(src), str(tmp))
        os.replace(str(tmp), str(target))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(str(tmp))
        raise


def clean_versions(path):
    """Remove what publish_folder left beside `path` that `path` does not point to: older
    versions, and the scratch of a run killed before its switch."""
    path = Path(os.fspath(path))
    current = path.resolve() if path.is_symlink() else None
    for version in _versions(path):
        if version.resolve() != current:
            shutil.rmtree(str(version), ignore_errors=True)
    for scratch in path.parent.glob(f".{path.name}.pekit-*"):
        if _SCRATCH.match(scratch.name):
            if scratch.is_dir() and not scratch.is_symlink():
                shutil.rmtree(str(scratch), ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    scratch.unlink()


def publish_folder(path, contents):
    """Make `path` a folder holding exactly `contents` ({file name: bytes, or a Link}),
    switched in one atomic step, so that a reader (or a kill) sees the old folder or the new
    one, never a mix.

    `path` is a link to a versioned sibling (`.<name>-<id>`); a new version is written whole,
    then one rename puts a link to it in the place of `path`. A folder of an older layout (a
    real folder at `path`) is swapped out the same way (renameat2 RENAME_EXCHANGE; where the
    system has none, with two renames). Identical contents change nothing. Old versions are
    removed after the switch, or by the next call after a kill. The caller holds the lock of
    `path`'s parent (`locked`). Returns whether the folder changed.
    """
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and _holds(path, contents):
        clean_versions(path)
        return False
    txid = uuid.uuid4().hex[:12]
    version = path.parent / f".{path.name}-{txid}"
    version.mkdir()
    try:
        mode = new_file_mode()
        for name, data in contents.items():
            if isinstance(data, Link):
                os.symlink(data, str(version / name))
                continue
            with open(str(version / name), "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(str(version / name), mode)
        os.chmod(str(version), 0o777 & ~_umask())
        _fsync_dir(str(version))
    except BaseException:
        shutil.rmtree(str(version), ignore_errors=True)  # a full disk: the old folder stays
        raise
    link = path.parent / f".{path.name}.pekit-{txid}.new"
    os.symlink(version.name, str(link))
    if path.is_dir() and not path.is_symlink():
        swap_into_place(link, path)  # a real folder of an older layout
    else:
        os.replace(str(link), str(path))
    _fsync_dir(str(path.parent))
    clean_versions(path)
    return True
