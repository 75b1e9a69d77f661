"""`pekit prepare`: the environment the kit's tests and LOCAL runs need, made ready in one step.

MMF at the pinned commit installed (fetched into the kit's cache first when no checkout is
found: from a clone or bundle, or MMF's public repository under a time limit), then the kit's
patches applied. Files that match neither the pristine nor the patched upstream files (an
older kit's patches, a hand edit) are replaced by pristine ones before patching.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from ..core.errors import PekitError
from ..facts import pins
from . import mmf_source
from .patching import engine, manifest, targets


def _reinstall_transformers():
    version = pins.get("transformers.version")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--force-reinstall",
        f"transformers=={version}",
    ]
    if subprocess.run(cmd).returncode != 0:
        raise PekitError(f"reinstalling transformers {version} failed ({' '.join(cmd)})")


def _mmf_importable():
    return importlib.util.find_spec("mmf") is not None


def prepare(mmf_from=None, timeout=None, echo=print):
    """Install MMF (fetching it if needed) and apply the kit's patches; returns whether MMF is
    there. Without MMF (offline, nothing given to fetch from) transformers is patched alone."""
    kind, where = mmf_source.locate()
    if kind is None:
        echo(
            f"MMF: not found; fetching it into the kit's cache from {mmf_from or 'its public repository'}"
        )
        try:
            mmf_source.fetch(mmf_from, timeout=timeout)
        except PekitError as e:
            if mmf_from:
                raise
            echo(f"MMF: could not be fetched ({e}): the tests that need MMF will be skipped")
        kind, where = mmf_source.locate()
    if kind == "checkout":
        echo(f"MMF checkout {where}: installing it")
        mmf_source.install(where)
    elif kind == "installed":
        echo(f"MMF installed: {where}")
    have_mmf = _mmf_importable()
    wanted = manifest.TARGETS if have_mmf else ("transformers",)
    roots = {t: targets.find_root(t) for t in wanted}
    entries = manifest.load().select(sets=targets.default_sets(), targets=wanted)
    try:
        engine.check(entries, roots)
    except PekitError as e:
        echo(
            f"patched files do not match this kit's manifest ({str(e).splitlines()[-1].strip()}): "
            "reinstalling pristine upstream files"
        )
        _reinstall_transformers()
        if have_mmf:
            mmf_source.install()
        roots = {t: targets.find_root(t) for t in wanted}
    outcome = engine.apply(entries, roots)
    echo(f"patches: {outcome.action} ({len(outcome.files)} files written)")
    return have_mmf
