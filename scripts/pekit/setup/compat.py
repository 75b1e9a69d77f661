"""Which versions of the lock's packages the kit works with, beside the lock's own.

The facts are facts/node_compat.json: a package under `ranges` is accepted from min to max (both
ends proven by tests: the lock by `make test`, the node twin by `make twin-check`); any other
lock package only at the lock's exact version. `pekit wheelhouse` decides from these what a node
keeps and what the kit ships; `pekit doctor` judges an environment by them.
"""

from __future__ import annotations

import functools
from pathlib import Path

from ..core import jsonfile, schema
from ..core.errors import PekitError
from ..facts.pins import FACTS_DIR
from .node import normalize

FACTS = FACTS_DIR / "node_compat.json"


def _packaging():
    """`packaging`, or the copy pip carries (a node's or a login node's bare Python has pip)."""
    try:
        from packaging import markers, requirements, specifiers, version
    except ImportError:
        from pip._vendor.packaging import markers, requirements, specifiers, version
    return markers, requirements, specifiers, version


@functools.lru_cache(maxsize=None)
def facts():
    """facts/node_compat.json: `ranges` (name: {min, max}), `exact_why` (name: why) and
    `with_numpy_2` ({versions: name: version}), checked."""
    doc = jsonfile.load(FACTS, "the kit's compat facts")
    check = schema.Fields(FACTS)
    for name, span in check.obj(doc.get("ranges"), "ranges").items():
        check.obj(span, f"ranges.{schema.key(name)}")
        for end in ("min", "max"):
            value = span.get(end)
            if parse_version(value) is None:
                check.refuse(f"ranges.{schema.key(name)}.{end}", value, "a PEP 440 version")
    for name, why in check.obj(doc.get("exact_why"), "exact_why").items():
        check.string(why, f"exact_why.{schema.key(name)}")
    numpy_2 = check.obj(doc.get("with_numpy_2"), "with_numpy_2")
    for name, version in check.obj(numpy_2.get("versions"), "with_numpy_2.versions").items():
        check.string(version, f"with_numpy_2.versions.{schema.key(name)}")
    return doc


def parse_version(text):
    """A comparable version, or None where `text` is not one (PEP 440)."""
    version = _packaging()[3]
    if not isinstance(text, str) or len(text) > 200:
        return None
    try:
        return version.Version(text)
    except version.InvalidVersion:
        return None


class MetadataError(PekitError):
    """An installed distribution's metadata that cannot be read or holds no version."""


def metadata_file(name):
    """The metadata file of the installed distribution `name`, as a refusal names it."""
    import importlib.metadata

    try:
        folder = getattr(importlib.metadata.distribution(name), "_path", None)
    except Exception:  # importlib.metadata's own reading: whatever it raises, name the package
        folder = None
    if folder is None:
        return f"the metadata of {name}"
    folder = Path(folder)
    for file in ("METADATA", "PKG-INFO"):
        if (folder / file).is_file():
            return str(folder / file)
    return str(folder)


def installed_requires(name):
    """The Requires-Dist lines of the installed distribution `name`, read from its metadata and
    checked (strings of at most 1000 characters); a MetadataError naming the file otherwise."""
    import importlib.metadata

    try:
        lines = list(importlib.metadata.distribution(name).requires or ())
    except importlib.metadata.PackageNotFoundError:
        raise MetadataError(f"{name}: not installed; expected it installed here") from None
    except Exception as e:  # importlib.metadata parsing a broken file: any error it raises
        detail = " ".join(str(e).split())[:80] or type(e).__name__
        raise MetadataError(
            f"{metadata_file(name)}: cannot read {name}'s metadata ({detail}); expected a"
            f" distribution's METADATA: reinstall {name}"
        ) from None
    for line in lines:
        if not isinstance(line, str) or not 0 < len(line) <= 1000:
            raise MetadataError(
                f"{metadata_file(name)}: field 'Requires-Dist' is {schema.shown(line)};"
                f" expected a requirement: reinstall {name}"
            )
    return lines


def installed(name):
    """The version of the installed distribution `name` (None: not installed), read from its
    metadata and checked: a PEP 440 version. A metadata file that cannot be read (not UTF-8, a
    folder, none at all) or holds no such version is a MetadataError naming it, in one line."""
    import importlib.metadata

    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    except Exception as e:  # importlib.metadata parsing a broken file: any error it raises
        detail = " ".join(str(e).split())[:80] or type(e).__name__
        raise MetadataError(
            f"{metadata_file(name)}: cannot read {name}'s metadata ({detail}); expected a"
            f" distribution's METADATA: reinstall {name}"
        ) from None
    if parse_version(version) is None:
        raise MetadataError(
            f"{metadata_file(name)}: field 'Version' is {schema.shown(version)}; expected a"
            f" PEP 440 version: reinstall {name}"
        )
    return version


def accepted_range(name):
    """(min, max) accepted for `name`, or None: the lock's exact version only."""
    entry = facts()["ranges"].get(normalize(name))
    return None if entry is None else (entry["min"], entry["max"])


def accepts(name, have, locked):
    """Whether the kit works with `name` at version `have`, the lock holding `locked`."""
    span = accepted_range(name)
    if span is None:
        return parse_version(have) == parse_version(locked) or have == locked
    v, low, high = parse_version(have), parse_version(span[0]), parse_version(span[1])
    return v is not None and low <= v <= high


def describe(name, locked):
    """What the kit accepts for `name`, in words."""
    span = accepted_range(name)
    return f"{span[0]} to {span[1]}" if span else f"{locked} only"


def exact_why(name):
    return facts()["exact_why"].get(normalize(name))


def with_numpy_2(name):
    """The version shipped instead of the lock's on a node whose numpy is 2.x, or None."""
    return facts()["with_numpy_2"]["versions"].get(normalize(name))


def build_for(name, locked, numpy):
    """The version of `name` to install beside `numpy` (a version, or None: the lock's own):
    the lock's, or on numpy 2 the build proven there where the lock's is for numpy 1."""
    version = parse_version(numpy) if numpy else None
    if version is not None and version.major >= 2:
        return with_numpy_2(name) or locked
    return locked


def requirements(lines, markers, extra="", source="", warn=None):
    """The requirements among Requires-Dist `lines` that apply in an environment of `markers`
    for `extra` (a plain one: ""); lines that do not parse are passed to `warn`."""
    _, req_mod, _, _ = _packaging()
    out = []
    for line in lines:
        try:
            req = req_mod.Requirement(line)
        except req_mod.InvalidRequirement:
            if warn:
                warn(f"{source}: requirement {line!r} does not parse; ignored")
            continue
        if req.marker is not None:
            try:
                if not req.marker.evaluate({**markers, "extra": extra}):
                    continue
            except Exception:  # an undefined marker variable: it cannot apply
                continue
        elif extra:
            continue  # counted once, without the extra
        out.append(req)
    return out


def closure(freeze, roots, warn=None):
    """`roots` and everything they require, transitively, by the node's own metadata (extras
    followed: torch requires cuda-toolkit[cublas,...])."""
    seen, todo = set(), [(normalize(r), "") for r in roots]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        pkg = freeze.packages.get(name)
        if pkg is None:
            continue
        for req in requirements(pkg.requires, freeze.markers, extra, freeze.source, warn):
            dep = normalize(req.name)
            todo.append((dep, ""))
            todo += [(dep, normalize(e)) for e in req.extras]
    return {name for name, _ in seen}


def unmet(freeze, name, final, warn=None):
    """The requirements of the node's `name` that the versions in `final` ({name: version}) do
    not meet, as readable strings."""
    pkg = freeze.packages.get(normalize(name))
    if pkg is None or not freeze.has_requirements:
        return []
    out = []
    for req in requirements(pkg.requires, freeze.markers, "", freeze.source, warn):
        have = final.get(normalize(req.name))
        if have is None or not str(req.specifier):
            continue
        if not req.specifier.contains(have, prereleases=True):
            out.append(f"{pkg.name} {pkg.version} requires {req.name}{req.specifier}")
    return out
