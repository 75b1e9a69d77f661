"""The kit's core runs on the paper profile's Python 3.7: its image patches MMF with it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pekit.core import location
from pekit.facts import pins


def _find_python37():
    """A working Python 3.7: $PEKIT_PYTHON37, python3.7 on PATH, or a pyenv-installed one."""
    pyenv = Path(os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv")))
    candidates = [os.environ.get("PEKIT_PYTHON37"), shutil.which("python3.7")]
    candidates += sorted(str(p) for p in pyenv.glob("versions/3.7*/bin/python3.7"))
    for cand in filter(None, candidates):
        try:
            out = subprocess.run(
                [cand, "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == b"(3, 7)":
            return cand
    return None


PY37 = _find_python37()
pytestmark = pytest.mark.skipif(
    PY37 is None, reason="no Python 3.7 found (set PEKIT_PYTHON37): the paper profile's Python"
)


def _run37(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(location.kit_root() / "scripts"))
    return subprocess.run(
        [PY37, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_every_kit_module_compiles_on_37():
    files = sorted(str(p) for p in (location.kit_root() / "scripts" / "pekit").rglob("*.py"))
    proc = _run37("-m", "py_compile", *files)
    assert proc.returncode == 0, proc.stdout.decode()


def test_patch_apply_and_revert_on_37(pristine_transformers):
    root = str(pristine_transformers)
    common = ["--transformers", root, "--only", "transformers", "--sets", "pe"]
    for action, expect in (
        ("apply", b"applied: "),
        ("apply", b"already applied"),
        ("check", b"ok: 1 patched"),
        ("revert", b"reverted: "),
    ):
        proc = _run37("-m", "pekit", "patch", action, *common)
        assert proc.returncode == 0 and expect in proc.stdout, proc.stdout.decode()


def test_pins_script_on_37():
    proc = _run37(
        str(location.kit_root() / "scripts" / "pekit" / "facts" / "pins.py"), "mmf.commit"
    )
    assert proc.stdout.decode().strip() == pins.get("mmf.commit")


def _module_level_imports(path):
    """Top-level names of the modules a file imports outside functions (what loading it needs)."""
    import ast

    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_kit_loads_with_the_standard_library_alone():
    """`pekit` (every command's module) must load on the paper image's bare Python 3.7: what
    needs torch, numpy or MMF imports it inside the function that uses it. The MMF plugin is
    loaded by MMF, with MMF."""
    package = location.kit_root() / "scripts" / "pekit"
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    offenders = {}
    for path in sorted(package.rglob("*.py")):
        if "mmf_plugin" in path.parts:
            continue
        extra = _module_level_imports(path) - stdlib - {"pekit"}
        if extra:
            offenders[str(path.relative_to(package))] = sorted(extra)
    assert not offenders, offenders
