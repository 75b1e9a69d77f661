"""What the kit may delete or replace: only what it can prove it wrote.

Each kind of output carries its proof: a published folder's versions are named in a record
beside its link (pekit.core.atomic.publish_folder), a wheelhouse or a bundle by the file list
of its record, a venv, a world, a staging folder or an LMDB by a mark file the kit wrote in
it, a run folder by its run.json. Anything else where the kit would delete or replace is
refused with one line that says what is there and how to move it away (`refuse`).
"""

import os
import shlex
import shutil
from pathlib import Path

from .errors import OwnershipError

__all__ = [
    "OwnershipError",
    "check_marked",
    "describe",
    "is_empty_folder",
    "is_marked",
    "make_marked",
    "refuse",
    "remove_marked",
]


def _name(text):
    return text if text.isprintable() else ascii(text)


def describe(path):
    """What is at `path`, in a few words: a link and its target, a file and its size, a
    folder and its first entries, or nothing."""
    path = Path(os.fspath(path))
    if path.is_symlink():
        where = _name(os.readlink(str(path)))
        return f"a link to {where}" + ("" if path.exists() else " that leads nowhere")
    if path.is_dir():
        try:
            names = sorted(os.listdir(str(path)))
        except OSError:
            return "a folder pekit cannot list"
        if not names:
            return "an empty folder"
        shown = ", ".join(_name(n) for n in names[:3])
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        return (
            f"a folder of {len(names)} {'entry' if len(names) == 1 else 'entries'} ({shown}{more})"
        )
    if path.is_file():
        size = path.stat().st_size
        return f"a file of {size} byte{'' if size == 1 else 's'}"
    if path.exists():
        return "something that is neither a file nor a folder"
    return "nothing"


def refuse(path, why, instead=None):
    """The one-line refusal for `path`: what is there, why the kit will not touch it, and how
    to move it away (or `instead`: another way on)."""
    quoted = shlex.quote(str(path))
    fix = f"move it away (mv {quoted} {quoted}.mine)"
    if instead:
        fix += f" or {instead}"
    return OwnershipError(f"{_name(str(path))}: {describe(path)}, {why}; left as it is: {fix}")


def is_marked(folder, mark):
    """True when `folder` is a real folder holding the kit's mark file `mark` (a plain file)."""
    folder = Path(os.fspath(folder))
    path = folder / mark
    return folder.is_dir() and not folder.is_symlink() and path.is_file() and not path.is_symlink()


def is_empty_folder(folder):
    folder = Path(os.fspath(folder))
    try:
        return folder.is_dir() and not folder.is_symlink() and not os.listdir(str(folder))
    except OSError:
        return False


def check_marked(folder, mark, why, instead=None):
    """Refuse unless `folder` is absent, an empty folder, or a folder with the kit's `mark`;
    returns whether it is marked."""
    folder = Path(os.fspath(folder))
    if not os.path.lexists(str(folder)) or is_empty_folder(folder):
        return False
    if is_marked(folder, mark):
        return True
    raise refuse(folder, why, instead)


def remove_marked(folder, mark):
    """Remove `folder` only if it holds the kit's `mark`; returns whether it did."""
    if not is_marked(folder, mark):
        return False
    shutil.rmtree(os.fspath(folder))
    return True


def make_marked(folder, mark, text):
    """Make `folder` (absent or empty) and write the kit's `mark` in it first."""
    folder = Path(os.fspath(folder))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / mark).write_text(text, encoding="utf-8")
    return folder
