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


def remove_scratch(folder, keep=(), prefixes=None):
    """Remove the kit's scratch files in `folder` (not below): the temporaries and staged files
    of a run killed before it could rename them. Only the kit's own names are touched (files
    and links, never a folder), and with `prefixes` only names starting with one of them."""
    try:
        names = os.listdir(os.fspath(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        path = os.path.join(os.fspath(folder), name)
        if (
            _SCRATCH.match(name)
            and (prefixes is None or name.startswith(tuple(prefixes)))
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
#
# The kit deletes or replaces only what it can prove it wrote (pekit.core.ownership). A folder
# published here is a link to a version folder whose exact name is recorded beside the link
# (`.<name>.pekit.json`); a run about to make a version records its names first, in a pending
# record (`.<name>.pekit-<id>.pending`), so that a kill leaves nothing the next run cannot
# prove its own. A folder staged for staged_folder is recorded the same way. Nothing else
# beside them is removed, whatever its name.


def _refuse(path, why, instead=None):
    from .ownership import refuse

    return refuse(path, why, instead)


def replace_link(path, target, previous=(), instead=None):
    """Point the link `path` at `target` in one rename; idempotent. Only a link the kit made
    is replaced: one to `target` already, or to one of `previous` (targets an earlier kit
    made there); anything else at `path` is refused (OwnershipError), never removed."""
    path, target = Path(os.fspath(path)), os.fspath(target)
    if path.is_symlink():
        now = os.readlink(str(path))
        if now == target:
            return False
        if now not in {os.fspath(p) for p in previous}:
            raise _refuse(path, f"not the link pekit makes there (to {target})", instead)
    elif os.path.lexists(str(path)):
        raise _refuse(path, f"where pekit makes a link (to {target})", instead)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.parent / f".{path.name}.pekit-{uuid.uuid4().hex[:12]}.new"
    os.symlink(target, str(staged))
    os.replace(str(staged), str(path))
    return True


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
    removed after. The caller has proved that what is at `dest` is the kit's."""
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


# -- pending records: the exact names a run is about to make, written before it makes them --


def _pending_path(path, txid):
    return path.parent / f".{path.name}.pekit-{txid}.pending"


def _begin(path, txid, names):
    """Record `names` ({role: name beside `path`}) as this run's before it makes them."""
    doc = {"about": f"pekit: made for {path.name} by a run that had not finished", **names}
    write_json(_pending_path(path, txid), doc)


def _pending(path, roles):
    """The pending records beside `path`: [(record, txid, {role: name})], each checked: its
    names exactly the ones `roles` ({role: function of the id}) give for its id."""
    pattern = re.compile(re.escape(f".{path.name}.pekit-") + r"([0-9a-f]{12})\.pending")
    try:
        entries = sorted(os.listdir(str(path.parent)))
    except OSError:
        return []
    found = []
    for entry in entries:
        match = pattern.fullmatch(entry)
        record = path.parent / entry
        if not match or record.is_symlink() or not record.is_file():
            continue
        txid = match.group(1)
        try:
            doc = json.loads(record.read_text(encoding="utf-8"))
            names = {role: doc[role] for role in roles}
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a record the kit wrote: it names nothing
        if all(names[role] == make(txid) for role, make in roles.items()):
            found.append((record, txid, names))
    return found


def _scratch_prefixes(path):
    """The beginnings of the scratch names of `path`'s records and links: the temporaries of
    `.<name>.pekit.json` and of the pending records, the staged links `.<name>.pekit-<id>.new`
    (a kill between their writing and their rename leaves them)."""
    return (f".{path.name}.pekit-", f"..{path.name}.pekit")


def _remove_folder(folder):
    """Remove a folder the kit recorded: a real folder only (never through a link)."""
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(str(folder), ignore_errors=True)


# -- staged_folder -------------------------------------------------------------------------


def _staged_roles(dest):
    return {"staged": lambda txid: f".{dest.name}.pekit-{txid}.new"}


@contextlib.contextmanager
def staged_folder(dest, replace=False):
    """A new folder beside `dest` to build a whole folder in; it takes `dest`'s place in one
    step when the block succeeds, and is removed when it fails. What is at `dest` is replaced
    only with `replace` (the caller has proved it the kit's); else an empty folder or nothing
    is expected there. Folders a killed run staged for `dest` (named in its pending record)
    are removed first (one writer of `dest` at a time)."""
    dest = Path(os.fspath(dest))
    from .ownership import is_empty_folder

    if os.path.lexists(str(dest)) and not replace and not is_empty_folder(dest):
        raise _refuse(dest, "where pekit writes a new folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    for record, _, names in _pending(dest, _staged_roles(dest)):
        _remove_folder(dest.parent / names["staged"])
        with contextlib.suppress(FileNotFoundError):
            os.unlink(str(record))
    remove_scratch(dest.parent, prefixes=_scratch_prefixes(dest))
    txid = uuid.uuid4().hex[:12]
    new = dest.parent / f".{dest.name}.pekit-{txid}.new"
    _begin(dest, txid, {"staged": new.name})
    new.mkdir()
    try:
        yield new
        swap_into_place(new, dest)
    except BaseException:
        shutil.rmtree(str(new), ignore_errors=True)
        raise
    finally:
        if not os.path.lexists(str(new)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(str(_pending_path(dest, txid)))


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


# -- publish_folder ------------------------------------------------------------------------


def record_path(path):
    """The record of the versions of the folder published at `path`: `.<name>.pekit.json`."""
    path = Path(os.fspath(path))
    return path.parent / f".{path.name}.pekit.json"


def _version_name(path, txid):
    return f".{path.name}-{txid}"


def _version_form(path):
    """The form of the names publish_folder gives `path`'s versions."""
    return re.compile(re.escape(f".{path.name}-") + r"[0-9a-f]{12}")


def _publish_roles(path):
    return {
        "version": lambda txid: _version_name(path, txid),
        "link": lambda txid: f".{path.name}.pekit-{txid}.new",
    }


def _recorded(path):
    """The version names recorded for `path` (None: no record). A record that is not one the
    kit writes is refused: nothing it names can be proved the kit's."""
    record = record_path(path)
    if not os.path.lexists(str(record)):
        return None
    form = _version_form(path)
    try:
        if record.is_symlink() or not record.is_file():
            raise TypeError("not a file")
        doc = json.loads(record.read_text(encoding="utf-8"))
        versions = doc["versions"]
        if not isinstance(versions, list) or not all(
            isinstance(v, str) and form.fullmatch(v) for v in versions
        ):
            raise TypeError("versions")
    except (OSError, ValueError, KeyError, TypeError):
        raise _refuse(record, f"not the record of {path.name}'s versions pekit writes") from None
    return versions


def _write_record(path, versions):
    write_json(
        record_path(path),
        {
            "about": f"pekit: {path.name} is a link to the version named here, which pekit"
            " wrote; only the versions named here are ever removed",
            "versions": list(versions),
        },
    )


def check_published(path, instead=None):
    """Refuse (OwnershipError, nothing written) unless publish_folder may replace what is at
    `path`: nothing, or the kit's link to a version it recorded (or, before records, the link
    it made to its `.<name>-<id>` version). A real folder there is refused whatever it holds:
    an older kit's layout (a real folder) cannot be told from the user's own."""
    path = Path(os.fspath(path))
    recorded = _recorded(path)
    if not os.path.lexists(str(path)):
        return
    if path.is_symlink():
        target = os.readlink(str(path))
        mine = set(recorded or ()) | {
            names["version"] for _, _, names in _pending(path, _publish_roles(path))
        }
        if target in mine:
            return
        earlier = _version_form(path)
        sibling = path.parent / target
        if (
            recorded is None
            and earlier.fullmatch(target)
            and sibling.is_dir()
            and not sibling.is_symlink()
        ):
            return  # the link an earlier kit made; its version is kept (never recorded)
        raise _refuse(
            path,
            f"not a link to a version pekit recorded in {record_path(path).name}",
            instead,
        )
    raise _refuse(
        path,
        "where pekit keeps its link to the folder it publishes; pekit did not write it",
        instead,
    )


def clean_versions(path):
    """Remove what publish_folder recorded beside `path` that `path` does not point to: older
    versions, and what a run killed before its switch had begun (its pending record). Only
    names the kit recorded are removed; the record then names the current version alone."""
    path = Path(os.fspath(path))
    current = os.readlink(str(path)) if path.is_symlink() else None
    recorded = _recorded(path) or []
    pending = _pending(path, _publish_roles(path))
    mine = set(recorded) | {names["version"] for _, _, names in pending}
    for name in sorted(mine - {current}):
        _remove_folder(path.parent / name)
    for _, _, names in pending:
        link = path.parent / names["link"]
        if link.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(str(link))
    keep = [current] if current in mine else []
    if keep != recorded and (keep or os.path.lexists(str(record_path(path)))):
        _write_record(path, keep)
    for record, _, _ in pending:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(str(record))
    remove_scratch(path.parent, prefixes=_scratch_prefixes(path))


def publish_folder(path, contents, instead=None):
    """Make `path` a folder holding exactly `contents` ({file name: bytes, or a Link}),
    switched in one atomic step, so that a reader (or a kill) sees the old folder or the new
    one, never a mix.

    `path` is a link to a versioned sibling (`.<name>-<id>`); a new version is written whole,
    then one rename puts a link to it in the place of `path`. Identical contents change
    nothing. Only what the kit recorded is replaced or removed (check_published: anything else
    at `path` is refused, nothing written); old versions are removed after the switch, or by
    the next call after a kill. The caller holds the lock of `path`'s parent (`locked`).
    Returns whether the folder changed.
    """
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    check_published(path, instead)
    if path.exists() and _holds(str(path), contents):
        clean_versions(path)
        return False
    txid = uuid.uuid4().hex[:12]
    version = path.parent / _version_name(path, txid)
    link = path.parent / f".{path.name}.pekit-{txid}.new"
    _begin(path, txid, {"version": version.name, "link": link.name})
    try:
        version.mkdir()
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
        with contextlib.suppress(OSError):
            os.unlink(str(_pending_path(path, txid)))
        raise
    os.symlink(version.name, str(link))
    os.replace(str(link), str(path))
    _fsync_dir(str(path.parent))
    clean_versions(path)
    return True
