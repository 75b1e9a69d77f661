"""`pekit doctor`: one screen of findings, each wrong one with its fix, exit 1 when training
cannot run; never a traceback, nothing written."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pekit import doctor
from pekit.core import pins

REPO = pins.REPO_ROOT


def _statuses(findings):
    return {(f.what, f.status) for f in findings}


def test_the_locked_packages_are_checked(monkeypatch):
    real = importlib.metadata.version

    def version(name):
        if name == "omegaconf":
            raise importlib.metadata.PackageNotFoundError(name)
        if name == "regex":
            return "2020.1.1"
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    found = doctor.check_packages()
    missing = [f for f in found if f.status == doctor.FAIL and f.what == "packages"]
    assert missing and "omegaconf" in missing[0].detail and missing[0].fix
    other = [f for f in found if f.status == doctor.WARN]
    assert other and "regex 2020.1.1" in other[0].detail


def test_numpy_2_is_an_error_with_its_fix(monkeypatch):
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda n: "2.1.0" if n == "numpy" else real(n)
    )
    found = doctor.check_packages()
    numpy = [f for f in found if f.what == "numpy"]
    assert numpy and numpy[0].status == doctor.FAIL
    assert "numpy==1.26.4" in numpy[0].fix


def test_an_old_torch_fails_and_a_2_4_torch_warns(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch, "__version__", "2.3.1+cu121")
    assert ("torch", doctor.FAIL) in _statuses(doctor.check_torch())
    monkeypatch.setattr(torch, "__version__", "2.4.1")
    found = doctor.check_torch()
    assert ("torch", doctor.OK) in _statuses(found) and ("torch", doctor.WARN) in _statuses(found)


def test_this_environment_gets_one_screen_with_a_fix_for_each_problem(tmp_path):
    env = {**os.environ, "MMF_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run(
        [sys.executable, "-m", "pekit", "doctor", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode in (0, 1), proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("pekit doctor:") and len(lines) < 60
    assert "Traceback" not in proc.stdout + proc.stderr
    for i, line in enumerate(lines[1:-1], 1):
        if line.lstrip().startswith(("FAIL", "warn")):
            assert "->" in lines[i + 1], line  # the fix follows
    assert "data hmd" in proc.stdout and "pekit data hmd" in proc.stdout
    assert not (tmp_path / "data").exists()


def test_a_python_without_torch_is_told_so_without_a_traceback(tmp_path):
    candidates = [os.environ.get("PEKIT_PYTHON37"), shutil.which("python3.7")]
    candidates += sorted(map(str, Path.home().glob(".pyenv/versions/3.7*/bin/python3.7")))
    runs = [c for c in candidates if c and subprocess.run([c, "-c", ""]).returncode == 0]
    python37 = runs[0] if runs else None
    if not python37:
        pytest.skip("no Python 3.7 here (PEKIT_PYTHON37): the stdlib-only Python doctor runs on")
    proc = subprocess.run(
        [python37, "-m", "pekit", "doctor", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "scripts")},
    )
    if "No module named 'torch'" not in proc.stdout:
        pytest.skip(f"{python37} has torch: this test needs one without")
    assert proc.returncode == 1
    assert "FAIL  torch" in proc.stdout and "install torch 2.4 or newer" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("to fix")
