"""Zip archives a user hands the kit: every member name checked before anything is extracted."""

import os
import stat
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


def check_extracted(folder):
    """After an external tool extracted into `folder`: nothing there may be a link (the tool
    was given only checked names, so this is the second line of defence)."""
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            if path.is_symlink():
                raise ArchiveError(f"{path}: the archive extracted a link; refusing")
