"""The patch manifest: which diff changes which upstream file, from which sha256 to which.

`patches/manifest.json` is generated from the diffs and pristine upstream files by
`pekit patch manifest`; the engine trusts nothing else.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import List, NamedTuple

from ...core import atomic, jsonfile, location, schema
from ...core.digests import sha256_bytes
from ...core.errors import PekitError
from ...facts import pins
from . import unidiff

TARGETS = ("transformers", "mmf")
SETS = ("compat", "pe", "fast")  # application order


def patches_dir():
    return Path(os.environ.get("PEKIT_PATCHES_DIR", str(location.kit_root() / "patches")))


def target_dirname(target, pin_data=None):
    """Folder under patches/ holding a target's diffs, named for the pinned version."""
    p = pins.load_pins() if pin_data is None else pin_data
    if target == "transformers":
        return f"transformers-{p['transformers']['version']}"
    return f"mmf-{p['mmf']['commit'][:7]}"


_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Longer paths or names no file system takes (the OS would refuse them mid-command).
MAX_PATH, MAX_NAME = 1024, 255


@dataclass(frozen=True)
class PatchEntry:
    """One patched file: which diff turns which upstream file from which sha256 into which."""

    target: str  # transformers or mmf
    set: str  # compat, pe or fast
    path: str  # relative to the target root (the folder holding the package)
    diff: str  # relative to patches/
    sha256_before: str
    sha256_after: str
    pin: str  # transformers version or MMF commit the diff was made against

    def load_diff(self, base=None):
        file = (base or patches_dir()) / self.diff
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as e:
            raise PekitError(f"{file}: cannot read patch: {e.strerror}") from e
        except UnicodeDecodeError as e:
            raise PekitError(f"{file}: not a text diff (byte {e.start} is not UTF-8)") from None
        return unidiff.parse(text, source=str(file))

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, item, where):
        """The entry `item` describes, checked: strings where strings belong, a known target
        and set, and paths that stay inside their trees."""
        fields = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(item, dict):
            raise PekitError(f"{where}: expected an object, got {type(item).__name__}")
        missing = [k for k in fields if k not in item]
        if missing:
            raise PekitError(f"{where} lacks field {missing[0]!r}")
        bad = [k for k in fields if not isinstance(item[k], str)]
        if bad:
            raise PekitError(f"{where}: field {bad[0]!r} is {item[bad[0]]!r}; expected a string")
        entry = cls(**{k: item[k] for k in fields})
        if entry.target not in TARGETS or entry.set not in SETS:
            raise PekitError(
                f"{where}: target {entry.target!r} / set {entry.set!r}; expected one of "
                f"{', '.join(TARGETS)} / {', '.join(SETS)}"
            )
        for field in ("path", "diff"):
            value = getattr(entry, field)
            parts = PurePosixPath(value).parts
            if len(value) > MAX_PATH or any(len(part) > MAX_NAME for part in parts):
                raise PekitError(
                    f"{where}: field {field!r} is {schema.shown(value)}; expected a path of at "
                    f"most {MAX_PATH} characters, {MAX_NAME} per name"
                )
            if not parts or parts[0] == "/" or ".." in parts or "\\" in value:
                raise PekitError(
                    f"{where}: field {field!r} is {value!r}; expected a relative path without '..'"
                )
        for field in ("sha256_before", "sha256_after"):
            if not _SHA256.match(getattr(entry, field)):
                raise PekitError(f"{where}: field {field!r} is not a sha256 (64 hex digits)")
        return entry


class Manifest(NamedTuple):
    entries: List[PatchEntry]
    path: Path

    def select(self, sets=SETS, targets=TARGETS):
        order = {s: i for i, s in enumerate(SETS)}
        chosen = [e for e in self.entries if e.set in sets and e.target in targets]
        return sorted(chosen, key=lambda e: (TARGETS.index(e.target), order[e.set], e.path))


def load(path=None):
    path = Path(path) if path else patches_dir() / "manifest.json"
    raw = jsonfile.load(path, "the patch manifest")
    if not isinstance(raw.get("patches"), list):
        raise PekitError(
            f"{path}: field 'patches' is {schema.shown(raw.get('patches'))}; expected a list"
        )
    if not raw["patches"]:
        raise PekitError(f"{path}: 'patches' is empty; regenerate it with `pekit patch manifest`")
    entries = [
        PatchEntry.from_dict(item, f"{path}: patches[{i}]") for i, item in enumerate(raw["patches"])
    ]
    return Manifest(entries, path)


def build(pristine_roots, base=None, pin_data=None):
    """Compute manifest entries from the diffs under `base` and pristine target roots.

    pristine_roots: {"transformers": Path, "mmf": Path}, each the folder holding the package.
    """
    base = base or patches_dir()
    p = pins.load_pins() if pin_data is None else pin_data
    entries = []
    owner = {}
    for target in TARGETS:
        tdir = base / target_dirname(target, p)
        pin = p["transformers"]["version"] if target == "transformers" else p["mmf"]["commit"]
        for set_name in SETS:
            sdir = tdir / set_name
            for diff_file in sorted(sdir.rglob("*.diff")) if sdir.is_dir() else []:
                rel = diff_file.relative_to(sdir).as_posix()[: -len(".diff")]
                parsed = unidiff.parse(diff_file.read_text(encoding="utf-8"), str(diff_file))
                if parsed.old_path != rel:
                    raise PekitError(
                        f"{diff_file}: header names '{parsed.old_path}', expected '{rel}'"
                    )
                if (target, rel) in owner:
                    raise PekitError(
                        f"{diff_file}: {rel} is already patched by set '{owner[(target, rel)]}'; "
                        "a file may belong to one set only"
                    )
                owner[(target, rel)] = set_name
                if target not in pristine_roots:
                    raise PekitError(f"no pristine {target} root given to hash {rel}")
                before = (Path(pristine_roots[target]) / rel).read_bytes()
                after = unidiff.apply(parsed, before, source=str(diff_file))
                entries.append(
                    PatchEntry(
                        target=target,
                        set=set_name,
                        path=rel,
                        diff=diff_file.relative_to(base).as_posix(),
                        sha256_before=sha256_bytes(before),
                        sha256_after=sha256_bytes(after),
                        pin=pin,
                    )
                )
    return entries


def write(entries, path=None):
    path = Path(path) if path else patches_dir() / "manifest.json"
    doc = {
        "format": 1,
        "about": "Generated by `pekit patch manifest` from the diffs and pristine upstream files.",
        "patches": [e.to_dict() for e in entries],
    }
    atomic.write_json(path, doc)
    return path
