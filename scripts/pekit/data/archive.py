"""Archives the kit unpacks (a user's zip, a downloaded asset's tar or zip): every member checked
before anything is extracted, and the whole archive refused for the first bad one."""

import os
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from ..core.errors import PekitError


class ArchiveError(PekitError):
    """An archive member the kit will not extract."""


def unsafe_member(info):
    """Why a zip member is not extracted, or None: its name must be a plain relative path
    (no absolute path, drive, backslash or '..'), and it must not be a link."""
    name = info.filename
    if not name or "\x00" in name:
        return "an empty name"
    if "\\" in name:
        return "a backslash in its name"
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if any(part in ("..", ".") for part in name.rstrip("/").split("/")) or not path.parts:
        return "'..' or '.' in its path"
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        return "a symbolic link" if kind == stat.S_IFLNK else "not a plain file"
    return None


def check_members(zf, label):
    """Refuse the whole archive for its first unsafe or repeated member; nothing is extracted."""
    seen = set()
    for info in zf.infolist():
        why = unsafe_member(info)
        if why:
            raise ArchiveError(f"{label}: member {info.filename!r} has {why}; refusing the archive")
        key = info.filename.rstrip("/")
        if key in seen:
            raise ArchiveError(f"{label}: member {info.filename!r} appears twice; refusing")
        seen.add(key)


def _refuse_outside(label, names, root):
    root = os.path.realpath(str(root))
    for name in names:
        target = os.path.realpath(os.path.join(root, name))
        if target != root and not target.startswith(root + os.sep):
            raise ArchiveError(f"{label}: refusing to unpack '{name}' outside {root}")


def check_tar_members(tar, label, root):
    """The members of `tar`, checked for extraction into `root`: the whole archive is refused
    for a member, or a link's target, that lands outside `root`, and for anything that is not a
    file, a folder or a link."""
    members = tar.getmembers()
    _refuse_outside(label, [m.name for m in members], root)
    for m in members:
        if m.issym():
            # a symlink's target is relative to its own folder
            _refuse_outside(label, [os.path.join(os.path.dirname(m.name), m.linkname)], root)
        elif m.islnk():
            _refuse_outside(label, [m.linkname], root)
        elif not (m.isfile() or m.isdir()):
            raise ArchiveError(f"{label}: refusing special file '{m.name}'")
    return members


def extract_checked(path, folder):
    """Extract the tar or zip archive at `path` into `folder` once every member is checked
    (check_tar_members, check_members); nothing is extracted from a refused archive."""
    if tarfile.is_tarfile(str(path)):
        with tarfile.open(str(path)) as tar:
            members = check_tar_members(tar, path, folder)
            tar.extractall(str(folder), members=members)
    elif zipfile.is_zipfile(str(path)):
        with zipfile.ZipFile(str(path)) as z:
            check_members(z, str(path))
            z.extractall(str(folder))
    else:
        raise ArchiveError(f"{path}: not a tar or zip archive")


def check_extracted(folder):
    """After an external tool extracted into `folder`: nothing there may be a link (the tool
    was given only checked names, so this is the second line of defence)."""
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            if path.is_symlink():
                raise ArchiveError(f"{path}: the archive extracted a link; refusing")
