"""A node's Python as the kit sees it (pekit/setup/node.py): its freeze, read back field by field, and
the kit's venv over it — for a system Python, a venv and a conda environment — where the kit's
packages come first and the node's packages after them, offline."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.node_shapes import (
    PY,
    conda_python,
    fake_wheel,
    install_fake,
    pip_wheel,
    site_packages,
    system_python,
    venv_python,
)
from helpers.trees import sha_tree
from pekit.core import location
from pekit.setup import node

NODE_PY = location.kit_root() / "scripts" / "pekit" / "setup" / "node.py"


def _freeze_of(python):
    proc = subprocess.run(
        [str(python), str(NODE_PY), "freeze"], capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout)


def test_the_freeze_lists_every_package_with_its_requirements_and_the_site_folders():
    doc = _freeze_of(sys.executable)
    assert doc["kind"] == node.KIND and doc["python"]["version"].startswith(PY)
    pytest_entry = doc["packages"]["pytest"]
    assert pytest_entry["version"] and any(r.startswith("pluggy") for r in pytest_entry["requires"])
    assert doc["markers"]["python_version"] == PY and doc["markers"]["sys_platform"] == sys.platform
    # The interpreter's own site folder is there; the kit's scripts/ (sys.path[0]) and the
    # standard library are not.
    assert str(site_packages(Path(sys.executable)).resolve()) in doc["site_dirs"]
    assert not any(d.endswith(("scripts", "pekit")) for d in doc["site_dirs"])
    freeze = node.NodeFreeze.from_dict(doc, "node.json")
    assert freeze.python == PY and freeze.version("PyTest") == pytest_entry["version"]


def _valid():
    return _freeze_of(sys.executable)


MUTATIONS = {
    "kind": lambda d: d.update(kind="something-else"),
    "format": lambda d: d.update(format=2),
    "python": lambda d: d.update(python=["3.12"]),
    "python.version": lambda d: d["python"].update(version=312),
    "glibc": lambda d: d.update(glibc="glibc-2.x"),
    "markers": lambda d: d.update(markers={"python_version": 3.12}),
    "site_dirs": lambda d: d.update(site_dirs="/usr/lib"),
    "packages": lambda d: d.update(packages=[]),
    "packages.pytest": lambda d: d["packages"].update(pytest="9.0"),
    "packages.pytest.name": lambda d: d["packages"]["pytest"].update(name="not-pytest"),
    "packages.pytest.version": lambda d: d["packages"]["pytest"].update(version=["1"]),
    "packages.pytest.requires": lambda d: d["packages"]["pytest"].update(requires="pluggy"),
}


@pytest.mark.parametrize("field", sorted(MUTATIONS))
def test_a_wrong_field_is_refused_in_one_line_naming_it(field):
    doc = copy.deepcopy(_valid())
    MUTATIONS[field](doc)
    with pytest.raises(node.NodeError) as err:
        node.NodeFreeze.from_dict(doc, "node.json")
    message = str(err.value)
    assert message.startswith(f"node.json: {field} is ") and "expected" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"\xff\xfe{", "not UTF-8"),
        (b"{" * 100000, "not valid JSON"),
        (b'{"kind": NaN}', "NaN is not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b"numpy==1.26.4\n", "does not say the node's Python"),
    ],
)
def test_a_file_that_is_no_freeze_is_refused_in_one_line(tmp_path, content, expected):
    path = tmp_path / "node.json"
    path.write_bytes(content)
    with pytest.raises(node.NodeError) as err:
        node.NodeFreeze.read(path)
    assert str(err.value).startswith(str(path)) and expected in str(err.value)


def test_a_plain_pip_freeze_gives_names_and_versions_but_no_requirements(tmp_path):
    path = tmp_path / "freeze.txt"
    path.write_text(
        "# from the node\nnumpy==2.5.2\ntorch==2.11.0+cu130\n-e git+https://x/y#egg=z\n"
        "PyYAML @ file:///build/pyyaml\n\nmatplotlib==3.11.2  # plots\n"
    )
    freeze = node.NodeFreeze.read(path, python="3.12")
    assert freeze.version("numpy") == "2.5.2" and freeze.version("torch") == "2.11.0+cu130"
    assert freeze.version("pyyaml") is None and not freeze.has_requirements
    path.write_text("numpy=2.5\n")
    with pytest.raises(node.NodeError, match=r"freeze.txt:1: expected 'name==version'"):
        node.NodeFreeze.read(path, python="3.12")


# ---- the kit's venv over each shape of node Python --------------------------------------------


def _wheelhouse(folder, kept=None):
    folder.mkdir()
    fake_wheel(folder, "kitpkg", "2.0")  # the kit's version of a package the node has at 1.0
    fake_wheel(folder, "kitonly", "1.0")
    (folder / pip_wheel().name).write_bytes(pip_wheel().read_bytes())
    (folder / "requirements.txt").write_text("kitpkg==2.0\nkitonly==1.0\n")
    record = {"python": PY, "kept": kept or {}, "files": []}
    (folder / "wheelhouse.json").write_text(json.dumps(record))
    return folder


SHAPES = {"system": system_python, "conda": conda_python, "venv": venv_python}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_kits_venv_sees_its_own_packages_first_and_the_nodes_after(tmp_path, shape):
    python = SHAPES[shape](tmp_path / "node")
    site = site_packages(python)
    install_fake(site, "kitpkg", "1.0")
    install_fake(site, "nodeonly", "3.0")
    doc = _freeze_of(python)
    assert doc["python"]["venv"] is (shape == "venv")
    assert doc["python"]["conda"] is (shape == "conda")
    assert str(site.resolve()) in doc["site_dirs"]
    wheels = _wheelhouse(tmp_path / "wheels", kept={"nodeonly": {"version": "3.0", "exact": "3.0"}})
    before = sha_tree(site)

    venv = tmp_path / "kit-venv"
    vpy = node.make_venv(venv, wheels, python=str(python), echo=lambda _: None)
    probe = (
        "import json, sys, kitpkg, kitonly, nodeonly\n"
        "print(json.dumps([kitpkg.VERSION, kitonly.VERSION, nodeonly.VERSION, nodeonly.__file__,"
        " sys.path]))"
    )
    out = subprocess.run([vpy, "-c", probe], capture_output=True, text=True, check=True)
    kit_version, kit_only, node_version, where, path = json.loads(out.stdout)
    assert (kit_version, kit_only, node_version) == ("2.0", "1.0", "3.0")
    assert Path(where).resolve().parent == site.resolve()
    own = str(site_packages(Path(vpy)))
    assert path.index(own) < path.index(str(site.resolve()))
    assert sha_tree(site) == before  # the node's packages are untouched
    pip_there = subprocess.run([vpy, "-m", "pip", "--version"], capture_output=True, text=True)
    assert pip_there.returncode == 0 and str(venv) in pip_there.stdout


def test_a_node_that_lost_what_the_wheelhouse_keeps_is_refused_before_anything_is_made(tmp_path):
    python = system_python(tmp_path / "node")
    site = site_packages(python)
    install_fake(site, "numpy", "1.26.4")
    install_fake(site, "pandas", "1.5.0")
    kept = {
        "numpy": {"version": "2.5.2", "major": "2"},
        "pandas": {"version": "3.1.1", "min": "2.2.3", "max": "3.1.1"},
        "scipy": {"version": "1.18.1", "min": "1.15.3", "max": "1.18.1"},
    }
    wheels = _wheelhouse(tmp_path / "wheels", kept=kept)
    venv = tmp_path / "kit-venv"
    with pytest.raises(node.NodeError) as err:
        node.make_venv(venv, wheels, python=str(python), echo=lambda _: None)
    message = str(err.value)
    assert "made for another node" in message and "\n" not in message
    assert "numpy is 1.26.4" in message and "pandas is 1.5.0 (the kit works with 2.2.3 to 3.1.1)"
    assert "scipy is missing" in message
    assert not venv.exists()


def test_a_wheelhouse_for_another_python_or_a_users_folder_is_refused(tmp_path):
    wheels = _wheelhouse(tmp_path / "wheels")
    record = json.loads((wheels / "wheelhouse.json").read_text())
    (wheels / "wheelhouse.json").write_text(json.dumps({**record, "python": "3.9"}))
    with pytest.raises(node.NodeError, match="python is '3.9'"):
        node.make_venv(tmp_path / "v", wheels, echo=lambda _: None)
    (wheels / "wheelhouse.json").write_text(json.dumps(record))
    users = tmp_path / "mine"
    users.mkdir()
    (users / "notes.txt").write_text("keep me")
    with pytest.raises(node.NodeError, match="not a kit venv"):
        node.make_venv(users, wheels, echo=lambda _: None)
    assert (users / "notes.txt").read_text() == "keep me"


def test_node_py_runs_as_a_plain_script_with_one_line_errors(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(NODE_PY),
            "venv",
            "--venv",
            str(tmp_path / "v"),
            "--wheelhouse",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and proc.stderr.startswith("node.py venv: ")
    assert "no requirements.txt" in proc.stderr and "Traceback" not in proc.stderr
