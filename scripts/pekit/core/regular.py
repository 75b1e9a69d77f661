"""Reading a file a user handed over as a regular file of bounded size, never as whatever a path
can lead to: a link to /dev/zero (endless), a FIFO (an open that never returns), a device, a
link out of the folder the file belongs to. Each is refused in one line before a byte is read.
"""

import os
import stat

from .errors import PekitError

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode):
    """What a stat mode is, in words ('a regular file', 'a FIFO (named pipe)', ...)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    for test, words in _KINDS:
        if test(mode):
            return words
    return "not a regular file"


def inside(path, folder):
    """Whether `path`, its links followed, lies in `folder` (its links followed too)."""
    real = os.path.realpath(os.fspath(path))
    root = os.path.realpath(os.fspath(folder))
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def check_regular(path, what="file"):
    """`path` (links followed) is a regular file: its size; a one-line PekitError otherwise.
    For files read by another library (torch.load): stat opens nothing, so a FIFO cannot hang."""
    try:
        st = os.stat(os.fspath(path))
    except OSError as e:
        raise PekitError(f"{path}: cannot read the {what}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise PekitError(f"{path}: is {kind_of(st.st_mode)}; expected the {what} as a regular file")
    return st.st_size


def read_regular(path, limit, what="file", folder=None, size=None, size_from=None):
    """The bytes of `path`, refused in one line (PekitError) unless it is a regular file (links
    followed, but when `folder` is given only to a file inside it) of at most `limit` bytes, and
    of exactly `size` bytes when `size` is given (as `size_from` records). The file is opened without blocking and
    checked on the open descriptor, so a FIFO or device swapped in after a check is refused too.
    """
    path = os.fspath(path)
    if folder is not None and not inside(path, folder):
        raise PekitError(
            f"{path}: leads to {os.path.realpath(path)}, outside {folder}; expected the {what} "
            "in that folder"
        )
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise PekitError(f"{path}: cannot read the {what}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PekitError(
                f"{path}: is {kind_of(st.st_mode)}; expected the {what} as a regular file"
            )
        if st.st_size > limit:
            raise PekitError(
                f"{path}: {st.st_size} bytes; expected the {what} to hold at most {limit}"
            )
        if size is not None and st.st_size != size:
            raise PekitError(
                f"{path}: {st.st_size} bytes; expected the {what} of {size} bytes"
                + (f" ({size_from})" if size_from else "")
            )
        chunks, left = [], st.st_size
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        if left or os.read(fd, 1):
            raise PekitError(f"{path}: changed size while it was read; expected the {what} whole")
        return b"".join(chunks)
    except OSError as e:
        raise PekitError(f"{path}: cannot read the {what}: {e.strerror}") from None
    finally:
        os.close(fd)
