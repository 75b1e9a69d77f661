"""status / check / apply / revert over every file of every selected target, all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import List, NamedTuple, Optional

from .. import atomic
from ..digests import sha256_bytes
from ..errors import PekitError
from . import unidiff
from .manifest import Entry
from .targets import check_version

PRISTINE, PATCHED, MODIFIED, MISSING = "pristine", "patched", "modified", "missing"


class FileState(NamedTuple):
    entry: Entry
    file: Path
    state: str
    sha256: Optional[str]


class Outcome(NamedTuple):
    action: str  # "applied", "reverted", "already applied", "already pristine", "ok"
    files: List[Path]


def file_states(entries, roots):
    """State of each entry's file under roots[target]; entries whose target has no root are skipped."""
    states = []
    for e in entries:
        root = roots.get(e.target)
        if root is None:
            continue
        file = Path(root) / e.path
        if not file.is_file():
            states.append(FileState(e, file, MISSING, None))
            continue
        digest = sha256_bytes(file.read_bytes())
        state = {e.sha256_before: PRISTINE, e.sha256_after: PATCHED}.get(digest, MODIFIED)
        states.append(FileState(e, file, state, digest))
    return states


def _require_roots(entries, roots):
    missing = sorted({e.target for e in entries if roots.get(e.target) is None})
    if missing:
        names = ", ".join(missing)
        raise PekitError(
            f"{names} not found in the active environment; pass --{missing[0]} DIR "
            f"or limit the targets with --only"
        )


def check(entries, roots, pin_data=None):
    """Verify versions and that every file is pristine or patched; return the file states."""
    _require_roots(entries, roots)
    for target in sorted({e.target for e in entries}):
        check_version(target, roots[target], pin_data)
    states = file_states(entries, roots)
    bad = [s for s in states if s.state in (MODIFIED, MISSING)]
    if bad:
        lines = []
        for s in bad:
            if s.state == MISSING:
                lines.append(f"{s.file}: missing")
            else:
                lines.append(
                    f"{s.file}: sha256 {s.sha256} is neither pristine {s.entry.sha256_before} "
                    f"nor patched {s.entry.sha256_after}"
                )
        raise PekitError("refusing, nothing written:\n  " + "\n  ".join(lines))
    return states


class _Transaction:
    """Replace files one by one; on any error put back every file already replaced."""

    def __init__(self):
        self.done = []

    def replace(self, file, data):
        original = file.read_bytes()
        mode = file.stat().st_mode & 0o7777
        atomic.write_bytes(file, data, mode=mode)
        self.done.append((file, original, mode))

    def rollback(self):
        errors = []
        for file, original, mode in reversed(self.done):
            try:
                atomic.write_bytes(file, original, mode=mode)
            except OSError as e:
                errors.append(f"{file}: {e}")
        return errors


def _transform(states, reverse):
    """Compute every new file content first, so a bad diff fails before anything is written."""
    planned = []
    for s in states:
        if s.state != (PATCHED if reverse else PRISTINE):
            continue
        diff = s.entry.load_diff()
        data = unidiff.apply(diff, s.file.read_bytes(), reverse=reverse, source=s.entry.diff)
        want = s.entry.sha256_before if reverse else s.entry.sha256_after
        if sha256_bytes(data) != want:
            raise PekitError(
                f"{s.entry.diff}: result for {s.file} has sha256 {sha256_bytes(data)}, "
                f"manifest expects {want}; nothing written"
            )
        planned.append((s.file, data))
    return planned


def _run(states, reverse):
    try:
        planned = _transform(states, reverse)
    except unidiff.DiffError as e:
        raise PekitError(f"{e}; nothing written") from e
    txn = _Transaction()
    try:
        for file, data in planned:
            txn.replace(file, data)
    except BaseException as e:
        errors = txn.rollback()
        detail = (
            f"; rollback also failed: {'; '.join(errors)}" if errors else "; all files restored"
        )
        raise PekitError(f"writing failed: {e}{detail}") from e
    return [file for file, _ in planned]


def apply(entries, roots, pin_data=None):
    states = check(entries, roots, pin_data)
    if all(s.state == PATCHED for s in states):
        return Outcome("already applied", [])
    return Outcome("applied", _run(states, reverse=False))


def revert(entries, roots, pin_data=None):
    states = check(entries, roots, pin_data)
    if all(s.state == PRISTINE for s in states):
        return Outcome("already pristine", [])
    return Outcome("reverted", _run(states, reverse=True))
