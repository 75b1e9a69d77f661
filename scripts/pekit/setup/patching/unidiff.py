"""A strict unified-diff applier for single-file diffs.

Strict on purpose: every hunk must apply at its stated line with its context matching exactly.
The engine already checks the file's sha256 before applying, so fuzz would only hide mistakes.
"""

from __future__ import annotations

import re
from typing import List, NamedTuple

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_NO_EOL = "\\ No newline at end of file"


class DiffError(ValueError):
    """The diff is malformed or does not apply."""


class Hunk(NamedTuple):
    old_start: int
    new_start: int
    # (tag, line) with tag in " -+" and line including its end-of-line (or none after "\ No newline")
    lines: List[tuple]


class FileDiff(NamedTuple):
    old_path: str
    new_path: str
    hunks: List[Hunk]


def _strip_prefix(path):
    path = path.split("\t", 1)[0].strip()
    if path.startswith(("a/", "b/")):
        path = path[2:]
    return path


def parse(text, source="<diff>"):
    """Parse a unified diff holding exactly one file."""
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and not lines[i].startswith("--- "):
        i += 1
    if i + 1 >= len(lines) or not lines[i + 1].startswith("+++ "):
        raise DiffError(f"{source}: no '---'/'+++' header found")
    old_path = _strip_prefix(lines[i][4:])
    new_path = _strip_prefix(lines[i + 1][4:])
    i += 2
    hunks = []
    while i < len(lines):
        m = _HUNK.match(lines[i])
        if not m:
            if lines[i].startswith("--- "):
                raise DiffError(
                    f"{source}: holds more than one file; one diff per file is expected"
                )
            raise DiffError(f"{source}:{i + 1}: expected a '@@' hunk header, found {lines[i]!r}")
        old_len = int(m.group(2)) if m.group(2) is not None else 1
        new_len = int(m.group(4)) if m.group(4) is not None else 1
        hunk = Hunk(int(m.group(1)), int(m.group(3)), [])
        i += 1
        seen_old = seen_new = 0
        while i < len(lines) and (seen_old < old_len or seen_new < new_len):
            line = lines[i]
            tag = line[:1]
            if tag not in (" ", "-", "+"):
                if line == "\n":  # some tools drop the space of empty context lines
                    tag, line = " ", " \n"
                else:
                    raise DiffError(f"{source}:{i + 1}: unexpected line in hunk: {line!r}")
            hunk.lines.append((tag, line[1:]))
            seen_old += tag in " -"
            seen_new += tag in " +"
            i += 1
            if i < len(lines) and lines[i].rstrip("\r\n") == _NO_EOL:
                t, body = hunk.lines[-1]
                hunk.lines[-1] = (t, body.rstrip("\r\n"))
                i += 1
        if seen_old != old_len or seen_new != new_len:
            raise DiffError(f"{source}: hunk at line {hunk.old_start} is truncated")
        hunks.append(hunk)
    if not hunks:
        raise DiffError(f"{source}: no hunks")
    return FileDiff(old_path, new_path, hunks)


def apply(diff, data, reverse=False, source="<diff>"):
    """Apply `diff` (a FileDiff) to `data` (bytes) and return the new bytes."""
    text = data.decode("utf-8")
    old = text.splitlines(keepends=True)
    take, give = ("+", "-") if reverse else ("-", "+")
    out = []
    pos = 0  # index into old
    for hunk in diff.hunks:
        start = (hunk.new_start if reverse else hunk.old_start) - 1
        if hunk_is_pure_insert(hunk, take):
            start += 1  # "@@ -N,0" means insert after line N
        if start < pos:
            raise DiffError(f"{source}: overlapping or unordered hunks near line {start + 1}")
        out.extend(old[pos:start])
        pos = start
        for tag, body in hunk.lines:
            if tag == " " or tag == take:
                if pos >= len(old) or old[pos] != body:
                    found = old[pos] if pos < len(old) else "<end of file>"
                    raise DiffError(
                        f"{source}: does not apply at line {pos + 1}: "
                        f"expected {body!r}, found {found!r}"
                    )
                if tag == " ":
                    out.append(body)
                pos += 1
            elif tag == give:
                out.append(body)
    out.extend(old[pos:])
    return "".join(out).encode("utf-8")


def hunk_is_pure_insert(hunk, take):
    return all(tag not in (" ", take) for tag, _ in hunk.lines)
