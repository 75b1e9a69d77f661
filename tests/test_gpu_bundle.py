"""`pekit gpu-bundle`: one copy for an offline node — the kit, the node's wheelhouse, MMF as a
pure-Python wheel built offline with the wheelhouse's setuptools, run.sh — and nothing of the
user's replaced."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile

import pytest

from helpers.trees import sha_tree
from helpers.wheels import cached_wheel
from pekit.core.errors import PekitError
from pekit.setup import gpu_bundle, node, wheelhouse

PY = "{}.{}".format(*sys.version_info[:2])


@pytest.fixture(scope="session")
def setuptools_wheel():
    """The lock's setuptools wheel, from PyPI, cached with the tests' other wheels."""
    line = wheelhouse.locked("setuptools")
    version = line.split("==", 1)[1]
    try:
        return cached_wheel(line, f"setuptools-{version}-*.whl")
    except RuntimeError as e:
        pytest.fail(str(e))


@pytest.fixture
def made(tmp_path, setuptools_wheel):
    """A node's freeze (this Python's) and a wheelhouse record made for it."""
    freeze = tmp_path / "node.json"
    freeze.write_text(json.dumps(node.freeze()))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / setuptools_wheel.name).write_bytes(setuptools_wheel.read_bytes())
    (wheels / "requirements.txt").write_text(wheelhouse.locked("setuptools") + "\n")
    record = {
        "python": PY,
        "files": [{"file": setuptools_wheel.name, "bytes": setuptools_wheel.stat().st_size}],
        "kept": {},
        "shadows": {"transformers": "the node's 5.17.0 -> 4.10.1"},
        "warnings": [],
    }
    (wheels / "wheelhouse.json").write_text(json.dumps(record))
    return freeze, wheels


@pytest.mark.mmf
def test_the_bundle_holds_the_kit_its_wheels_mmf_and_run_sh(tmp_path, made, mmf_checkout):
    freeze, wheels = made
    out = tmp_path / "bundle"
    result = gpu_bundle.build(out, freeze, wheels=wheels, echo=lambda _: None)
    assert sorted(p.name for p in out.iterdir()) == sorted(gpu_bundle.PARTS)
    assert (out / "kit" / "scripts" / "pekit" / "setup" / "node.py").is_file()
    assert (out / "kit" / "patches" / "manifest.json").is_file()
    assert not list((out / "kit").rglob("__pycache__"))
    assert sha_tree(out / "wheels") == sha_tree(wheels)
    [mmf] = list((out / "mmf").glob("*.whl"))
    assert mmf.name == result["mmf_wheel"] and mmf.name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(str(mmf)) as z:
        names = z.namelist()
    assert "mmf/__init__.py" in names and not any(n.endswith(".so") for n in names)
    assert any(n.startswith("mmf/configs/") and n.endswith(".yaml") for n in names)
    assert os.stat(out / "run.sh").st_mode & stat.S_IXUSR
    assert json.loads((out / "node.json").read_text()) == json.loads(freeze.read_text())
    record = json.loads((out / gpu_bundle.RECORD).read_text())
    assert record == json.loads(json.dumps(result))
    assert record["total_bytes"] == sum(record["bytes"].values()) > mmf.stat().st_size
    assert record["shadows"] == {"transformers": "the node's 5.17.0 -> 4.10.1"}


def test_a_users_folder_or_a_wheelhouse_for_another_python_is_refused(tmp_path, made):
    freeze, wheels = made
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    before = sha_tree(tmp_path)
    with pytest.raises(PekitError, match="not an earlier bundle"):
        gpu_bundle.build(mine, freeze, wheels=wheels, echo=lambda _: None)
    record = json.loads((wheels / "wheelhouse.json").read_text())
    (wheels / "wheelhouse.json").write_text(json.dumps({**record, "python": "3.9"}))
    with pytest.raises(PekitError, match="python is '3.9'"):
        gpu_bundle.build(tmp_path / "b", freeze, wheels=wheels, echo=lambda _: None)
    (wheels / "wheelhouse.json").unlink()
    with pytest.raises(PekitError, match="no wheelhouse there"):
        gpu_bundle.build(tmp_path / "b", freeze, wheels=wheels, echo=lambda _: None)
    assert not (tmp_path / "b").exists()
    assert (mine / "notes.txt").read_text() == "keep me"
    assert sha_tree(mine) == {k[5:]: v for k, v in before.items() if k.startswith("mine/")}


# A stand-in for the node's Python and the venv's: each call is logged; `node.py venv` makes
# the venv's python, a copy of this script.
RECORDING_PYTHON = r"""#!/usr/bin/env bash
echo "$0 $*" >> "$CALLS"
if [ "${2:-}" = venv ]; then
    mkdir -p "$4/bin" && cp "$0" "$4/bin/python" && chmod +x "$4/bin/python"
fi
"""


@pytest.mark.parametrize("install_only", ["1", None])
def test_run_sh_installs_then_checks_unless_told_to_stop_after_the_install(tmp_path, install_only):
    bundle = tmp_path / "bundle"
    (bundle / "mmf").mkdir(parents=True)
    (bundle / "mmf" / "mmf-1.0-py3-none-any.whl").write_bytes(b"")
    (bundle / "run.sh").write_text(gpu_bundle.RUN_SH)
    node_python = tmp_path / "python3"
    node_python.write_text(RECORDING_PYTHON)
    node_python.chmod(0o755)
    calls, venv = tmp_path / "calls", tmp_path / "venv"
    env = dict(os.environ, NODE_PYTHON=str(node_python), VENV=str(venv), CALLS=str(calls))
    env.pop("PEKIT_INSTALL_ONLY", None)
    if install_only:
        env["PEKIT_INSTALL_ONLY"] = install_only
    proc = subprocess.run(["bash", str(bundle / "run.sh")], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    steps = [line.split()[1:4] for line in calls.read_text().splitlines()]
    installed = [[str(bundle / "kit/scripts/pekit/setup/node.py"), "venv", "--venv"]]
    installed += [["-m", "pekit", "prepare"]]
    if install_only:
        assert steps == installed
        assert "gpu-check not run" in proc.stderr
    else:
        assert steps == installed + [["-m", "pekit", "gpu-check"]]
