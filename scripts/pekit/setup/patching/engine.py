"""status / check / apply / revert over every file of every selected target, all or nothing.

All or nothing holds under a kill too: apply and revert publish their files as one journaled
set (atomic.FileSet), and every command first finishes a set a killed run left.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, NamedTuple, Optional

from ...core import atomic
from ...core.digests import sha256_bytes
from ...core.errors import PekitError
from . import unidiff
from .manifest import PatchEntry
from .targets import check_version

PRISTINE, PATCHED, MODIFIED, MISSING = "pristine", "patched", "modified", "missing"


class FileState(NamedTuple):
    entry: PatchEntry
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
        try:
            if not file.is_file():
                states.append(FileState(e, file, MISSING, None))
                continue
            digest = sha256_bytes(file.read_bytes())
        except OSError as err:
            raise PekitError(f"{file}: cannot read it ({err.strerror or err})") from None
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


def transaction(entries, roots):
    """The journaled set of the entries' files (atomic.FileSet): its journal in each target
    root, its scratch files swept from every patched file's folder."""
    dirs = {Path(roots[e.target]) for e in entries if roots.get(e.target) is not None}
    sweep = {(Path(roots[e.target]) / e.path).parent for e in entries if roots.get(e.target)}
    return atomic.FileSet(dirs, sweep)


def recover(entries, roots):
    """Finish a change a killed `pekit patch apply|revert` left (every command runs this first);
    returns the files it finished."""
    with transaction(entries, roots) as fs:
        return fs.recovered


def mixed(states):
    """{set: (patched, pristine)} when the selected files are part patched, part pristine (a
    state no complete apply or revert leaves); {} otherwise."""
    counts = {}
    for s in states:
        patched, pristine = counts.get(s.entry.set, (0, 0))
        counts[s.entry.set] = (patched + (s.state == PATCHED), pristine + (s.state == PRISTINE))
    totals = [sum(c[i] for c in counts.values()) for i in (0, 1)]
    return counts if all(totals) else {}


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


def _run(entries, roots, pin_data, reverse):
    """Check, compute every new content, then publish them as one journaled set: a kill leaves
    the old files or a journal the next command finishes."""
    done_state = PRISTINE if reverse else PATCHED
    with transaction(entries, roots) as fs:
        states = check(entries, roots, pin_data)
        if all(s.state == done_state for s in states):
            return Outcome("already pristine" if reverse else "already applied", [])
        try:
            planned = _transform(states, reverse)
        except unidiff.DiffError as e:
            raise PekitError(f"{e}; nothing written") from e
        try:
            for file, data in planned:
                fs.add(file, data)
        except OSError as e:
            raise PekitError(f"staging the patched files failed: {e}; nothing written") from e
    return Outcome("reverted" if reverse else "applied", [file for file, _ in planned])


def apply(entries, roots, pin_data=None):
    return _run(entries, roots, pin_data, reverse=False)


def revert(entries, roots, pin_data=None):
    return _run(entries, roots, pin_data, reverse=True)
