"""Finding the upstream trees to patch and checking that they are the pinned versions."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from ...core import gitinfo, jsonfile, schema
from ...core.errors import PekitError
from ...facts import pins

_VERSION = re.compile(r"""^__version__\s*=\s*['"]([^'"\n]{1,200})['"]""", re.M)
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def find_root(target, explicit=None):
    """The folder holding the `target` package: `explicit`, or where the active Python finds it.

    Returns None when the package cannot be found. Uses find_spec so nothing is imported: an
    unpatched MMF does not even import on a modern stack.
    """
    if explicit is not None:
        root = Path(explicit).resolve()
        if not (root / target / "__init__.py").is_file():
            raise PekitError(
                f"{root}: no '{target}/__init__.py' there; pass the folder that holds the "
                f"'{target}' package (a site-packages, or an MMF checkout root)"
            )
        return root
    try:
        spec = importlib.util.find_spec(target)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]).resolve().parent


def _read_version(file):
    """The `__version__ = "..."` of a package's file (None where it has none or is missing); a
    file that is no text is refused naming it."""
    try:
        text = jsonfile.read_bytes(file, "the package's version file", limit=1 << 20)
    except PekitError:
        if not file.exists():
            return None
        raise
    try:
        m = _VERSION.search(text.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise PekitError(f"{file}: not UTF-8 (byte {e.start}); expected Python source") from None
    return m.group(1) if m else None


def _installed_commit(root):
    """The commit pip recorded for an installed MMF (direct_url.json of a VCS install), checked:
    a broken record is refused naming it."""
    for info in sorted(Path(root).glob("mmf-*.dist-info")):
        path = info / "direct_url.json"
        if not path.exists():
            continue
        url = jsonfile.load(path, "pip's record of where MMF came from")
        check = schema.Fields(path, "; reinstall MMF (pekit prepare)")
        vcs = check.obj(url.get("vcs_info"), "vcs_info", optional=True) or {}
        commit = check.string(
            vcs.get("commit_id"),
            "vcs_info.commit_id",
            optional=True,
            pattern=_COMMIT,
            what="a git commit (40 hex digits)",
        )
        if commit:
            return commit
    return None


def check_version(target, root, pin_data=None):
    """Raise PekitError unless the tree at `root` is the pinned version; return a description.

    For MMF, a git checkout must be at the pinned commit; an installed copy must carry the pinned
    version string (and commit, where pip recorded one). Every patched file's sha256 is checked
    separately, which is what pins a non-git copy to the exact commit.
    """
    p = pins.load_pins() if pin_data is None else pin_data
    root = Path(root)
    if target == "transformers":
        want = p["transformers"]["version"]
        file = root / "transformers" / "__init__.py"
        found = _read_version(file)
        if found != want:
            raise PekitError(f"{file}: transformers version is {found}, expected {want}")
        return f"transformers {found}"
    want_commit = p["mmf"]["commit"]
    head = gitinfo.head(root) or _installed_commit(root)
    if head is not None:
        if head != want_commit:
            raise PekitError(f"{root}: MMF is at commit {head}, expected {want_commit}")
        return f"mmf {head[:7]}"
    file = root / "mmf" / "version.py"
    found = _read_version(file)
    if found != p["mmf"]["version"]:
        raise PekitError(f"{file}: MMF version is {found}, expected {p['mmf']['version']}")
    return f"mmf {found} (files checked against commit {want_commit[:7]})"


def _torch_major():
    try:
        from importlib import metadata
    except ImportError:  # Python 3.7: the paper's stack, torch 1.x
        return 1
    try:
        return int(metadata.version("torch").split(".")[0])
    except Exception:
        return None


def stack_needs_compat():
    """True where the running stack is newer than the paper's (Python >= 3.10 or torch >= 2)."""
    major = _torch_major()
    return sys.version_info >= (3, 10) or (major is not None and major >= 2)


def default_sets(pin_data=None):
    """The patch sets of the profile whose stack is running (pins.json `profiles.*.patch_sets`)."""
    p = pins.load_pins() if pin_data is None else pin_data
    profile = "modern" if stack_needs_compat() else "paper"
    return tuple(p["profiles"][profile]["patch_sets"])
