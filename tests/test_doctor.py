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

from pekit.core import location
from pekit.facts import pins
from pekit.workflows import doctor

REPO = location.kit_root()


def _statuses(findings):
    return {(f.what, f.status) for f in findings}


def _reported(monkeypatch, versions, probe=True):
    """importlib.metadata.version reporting `versions` ({name: version, or None: not
    installed}) over the real ones; the import probe (probe=False) finding nothing."""
    real = importlib.metadata.version

    def version(name):
        if name in versions:
            if versions[name] is None:
                raise importlib.metadata.PackageNotFoundError(name)
            return versions[name]
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    if not probe:
        monkeypatch.setattr(doctor, "probe_imports", lambda *a, **k: [])


def test_the_locked_packages_are_checked(monkeypatch):
    _reported(monkeypatch, {"omegaconf": None, "regex": "2020.1.1"}, probe=False)
    found = doctor.check_packages()
    missing = [f for f in found if f.status == doctor.FAIL and f.what == "packages"]
    assert missing and "omegaconf" in missing[0].detail and missing[0].fix
    other = [f for f in found if f.status == doctor.WARN]
    assert other and "regex 2020.1.1" in other[0].detail


def test_numpy_2_in_the_tested_range_is_no_error(monkeypatch):
    _reported(monkeypatch, {"numpy": "2.5.2"}, probe=False)
    found = doctor.check_packages()
    assert not [f for f in found if f.status == doctor.FAIL], found
    assert not [f for f in found if "numpy" in f.detail], found


def test_the_torch_sides_packages_only_warn_and_only_outside_a_tested_range(monkeypatch):
    # numpy and pillow come with torch and torchvision: the environment's own.
    _reported(monkeypatch, {"numpy": "2.6.0", "pillow": "9.0.0"}, probe=False)
    found = doctor.check_packages()
    assert not [f for f in found if f.status == doctor.FAIL], found
    (warn,) = [f for f in found if f.status == doctor.WARN]
    assert "numpy 2.6.0 (tested: 1.26.4 to 2.5.2)" in warn.detail
    assert "numpy==2.5.2" in warn.fix and "pillow" not in warn.detail + warn.fix


@pytest.mark.parametrize("name, have", [("transformers", "5.17.0"), ("huggingface-hub", "1.33.0")])
def test_another_version_of_a_package_needed_exactly_fails_with_why_and_fix(
    monkeypatch, name, have
):
    from pekit.setup import compat, wheelhouse

    _reported(monkeypatch, {name: have}, probe=False)
    found = doctor.check_packages()
    (fail,) = [f for f in found if f.status == doctor.FAIL]
    locked = (
        pins.get("transformers.version")
        if name == "transformers"
        else wheelhouse.locked(name).split("==")[1]
    )
    assert fail.what == name and have in fail.detail
    assert compat.exact_why(name) in fail.detail
    assert fail.fix == f"pip install --no-deps {name}=={locked}"


def test_another_version_of_any_other_package_warns_with_the_tested_one(monkeypatch):
    from pekit.setup import wheelhouse

    # pandas has a tested range (to 3.1.1), regex only the lock's version.
    _reported(monkeypatch, {"regex": "2020.1.1", "pandas": "3.0.0"}, probe=False)
    found = doctor.check_packages()
    assert not [f for f in found if f.status == doctor.FAIL], found
    (warn,) = [f for f in found if f.status == doctor.WARN]
    regex = wheelhouse.locked("regex").split("==")[1]
    assert warn.what == "packages" and "pandas" not in warn.detail
    said = f"other versions than the kit is tested with: regex 2020.1.1 (tested: {regex} only)"
    assert warn.detail == said
    assert warn.fix == f"pip install --no-deps regex=={regex}"
    monkeypatch.undo()
    _reported(monkeypatch, {"pandas": "3.2.0"}, probe=False)
    (warn,) = [f for f in doctor.check_packages() if f.status == doctor.WARN]
    assert "pandas 3.2.0 (tested: 2.2.3 to 3.1.1)" in warn.detail
    assert warn.fix == "pip install --no-deps pandas==3.1.1"


def test_the_paper_pythons_packages_are_not_judged_here(monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 7, 16, "final", 0))
    assert doctor.check_packages() == []


def _modules(folder, **sources):
    for name, source in sources.items():
        (folder / f"{name}.py").write_text(source, encoding="utf-8")


def test_the_import_probe_names_each_module_that_does_not_import_or_work(tmp_path, monkeypatch):
    _modules(
        tmp_path,
        pekit_probe_raises="raise RuntimeError('broken on purpose')\n",
        pekit_probe_numpy1="import sys\n"
        "sys.stderr.write('A module that was compiled using NumPy 1.x cannot be run in\\n')\n"
        "raise ImportError('numpy.core.multiarray failed to import')\n",
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    modules = ["json", "pekit_probe_not_there", "pekit_probe_raises", "pekit_probe_numpy1"]
    works = {"json works": "import json\nassert json.loads('1') == 2, 'one is not two'"}
    found = doctor.probe_imports(modules, works, timeout=120)
    assert {f.status for f in found} == {doctor.FAIL} and {f.what for f in found} == {"imports"}
    assert [f.detail for f in found] == [
        "pekit_probe_not_there: ModuleNotFoundError: No module named 'pekit_probe_not_there'",
        "pekit_probe_raises: RuntimeError: broken on purpose",
        "pekit_probe_numpy1: built for NumPy 1.x, cannot run with NumPy 2.x "
        "(ImportError: numpy.core.multiarray failed to import)",
        "json works: AssertionError: one is not two",
    ]
    assert all(f.fix for f in found)
    assert "python -c 'import pekit_probe_raises'" in found[1].fix
    ok = doctor.probe_imports(["json"], {"json works": "import json"}, timeout=120)
    assert [(f.status, f.detail) for f in ok] == [(doctor.OK, "1 modules import and work")]


def test_a_failing_import_of_a_kit_package_is_fixed_by_its_tested_version(monkeypatch):
    fix = doctor._import_fix("sklearn.metrics")
    assert "pip install --no-deps --force-reinstall scikit-learn==1.3.2" in fix
    _reported(monkeypatch, {"numpy": "2.5.2"})
    fix = doctor._import_fix("sklearn.metrics")
    assert "scikit-learn==1.9.1" in fix  # compat's build for numpy 2
    assert "pekit prepare" in doctor._import_fix("mmf.utils.configuration")


@pytest.mark.parametrize(
    "source, ended",
    [
        ("import os\nos._exit(3)\n", "crashed (exit 3)"),
        ("import ctypes\nctypes.string_at(0)\n", "crashed (signal 11)"),
        ("import time\ntime.sleep(60)\n", "did not finish in 3 s"),
    ],
)
def test_a_crash_or_a_hang_in_the_import_probe_is_one_finding(tmp_path, monkeypatch, source, ended):
    _modules(tmp_path, pekit_probe_bad=source)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    found = doctor.probe_imports(["json", "pekit_probe_bad", "csv"], {}, timeout=3)
    assert [(f.status, f.detail) for f in found] == [
        (doctor.FAIL, f"the import probe {ended} importing pekit_probe_bad")
    ]
    assert "import pekit_probe_bad" in found[0].fix


def test_this_environment_the_lock_has_no_package_problem():
    found = doctor.check_packages()
    assert not [f for f in found if f.status != doctor.OK], found
    assert [f.detail for f in found if f.what == "imports"][0].endswith("import and work")


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


def test_the_gpus_and_world_size_of_a_run_are_reported(tmp_path, monkeypatch):
    from pekit.run import devices

    monkeypatch.setattr(devices, "machine_gpus", lambda: 0)
    (refused,) = doctor.check_processes(2, environ={})
    assert refused.status == doctor.FAIL and "--gpus 2, but this machine has 0" in refused.detail
    (ok,) = doctor.check_processes(2, environ={"CUDA_VISIBLE_DEVICES": "3,4,5"})
    assert ok.status == doctor.OK and ok.detail == "CUDA_VISIBLE_DEVICES=3,4; world size 2"
    (cpu,) = doctor.check_processes(2, environ={devices.ENV_CPU: "1"})
    assert cpu.status == doctor.OK and cpu.detail.endswith("2 processes on the CPU; world size 2")
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun
    found = doctor.check_processes(4, 2, environ={"CUDA_VISIBLE_DEVICES": "0,1,2,3"})
    assert [f.status for f in found] == [doctor.OK, doctor.FAIL]
    assert found[0].detail.endswith("on each node; world size 8")
    assert "srun is not on PATH" in found[1].detail
