"""`pekit wheelhouse`: what goes in for a node that has torch (and what else it has), the lock's
dependency graph kept true, and a folder that is not a wheelhouse left alone."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import pytest

from conftest import sha_tree
from pekit import wheelhouse
from pekit.core import pins
from pekit.core.errors import PekitError

REPO = pins.REPO_ROOT


def _names(lines):
    return {wheelhouse._name(line) for line in lines}


def test_the_committed_graph_is_the_locked_environments_metadata():
    """docker/lock/modern.requires.json matches what the installed lock (this test environment)
    says it requires; a lock change without regenerating it fails here."""
    graph = wheelhouse.lock_graph()
    try:
        fresh = wheelhouse.requires_graph(list(graph))
    except importlib.metadata.PackageNotFoundError as e:
        pytest.fail(f"{e.name} is in the graph but not installed: is this the locked .venv?")
    assert fresh == graph, (
        "regenerate: .venv/bin/python -m pekit.wheelhouse graph > docker/lock/modern.requires.json"
    )
    locked = {
        wheelhouse._name(n)
        for n, _, _ in wheelhouse._profiles().read_lock(REPO / "docker" / "lock" / "modern.txt")
    }
    assert set(graph) == locked | set(wheelhouse.NODE_TORCH)


def test_a_node_with_torch_gets_neither_torch_nor_what_torch_requires():
    wanted, left_out = wheelhouse.plan()
    names = _names(wanted)
    torch_side = wheelhouse.provided(wheelhouse.NODE_TORCH, wheelhouse.lock_graph())
    assert {"torch", "torchvision", "triton", "sympy", "numpy", "pillow"} <= torch_side
    assert not any(n.startswith(("nvidia-", "cuda-")) for n in names)
    assert not (names & torch_side) - {"setuptools"}
    # The kit's own needs are all there, and the build tools stay (the kit is built on the node).
    assert {"transformers", "omegaconf", "scikit-learn", "pandas", "lmdb", "setuptools"} <= names
    assert all("node's own" in why for why in left_out.values())


def test_what_the_node_has_is_left_out_with_everything_it_requires():
    _, before = wheelhouse.plan()
    wanted, left_out = wheelhouse.plan(have=["matplotlib", "Requests"])
    names = _names(wanted)
    for gone in ("matplotlib", "fonttools", "kiwisolver", "contourpy", "cycler", "pyparsing"):
        assert gone not in names
    for gone in ("requests", "urllib3", "idna", "certifi", "charset-normalizer"):
        assert gone not in names
    assert "pandas" in names and "scipy" in names
    assert len(left_out) > len(before)
    # A name the lock does not hold changes nothing.
    assert wheelhouse.plan(have=["not-a-package"])[0] == wheelhouse.plan()[0]


def test_with_tests_adds_the_test_tools():
    names = _names(wheelhouse.plan(with_tests=True)[0])
    assert {"pytest", "ruff"} <= names
    assert "pytest" not in _names(wheelhouse.plan()[0])


def test_have_reads_a_pip_freeze(tmp_path):
    freeze = tmp_path / "freeze.txt"
    freeze.write_text(
        "# from the node\nnumpy==1.26.4\ntorch==2.6.0+cu124\n-e git+https://x/y#egg=z\n"
        "PyYAML @ file:///build/pyyaml\n\nmatplotlib==3.9.0  # plots\n"
    )
    assert wheelhouse.have_names([f"@{freeze}", "tqdm"]) == [
        "numpy",
        "torch",
        "PyYAML",
        "matplotlib",
        "tqdm",
    ]
    with pytest.raises(PekitError, match="cannot read the node's package list"):
        wheelhouse.have_names([f"@{tmp_path}/missing.txt"])


def test_platform_tags_cover_older_manylinux():
    tags = wheelhouse.platform_tags("2.28")
    assert tags[0] == "manylinux_2_28_x86_64" and "manylinux_2_17_x86_64" in tags
    assert "manylinux2014_x86_64" in tags and "manylinux1_x86_64" in tags
    assert "manylinux_2_31_x86_64" not in tags


def _pekit(*args):
    return subprocess.run(
        [sys.executable, "-m", "pekit", *args], capture_output=True, text=True, cwd=str(REPO)
    )


def test_a_folder_of_other_files_is_refused_and_left_alone(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    before = sha_tree(tmp_path)
    proc = _pekit("wheelhouse", str(mine), "--python", "3.12")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "no wheelhouse.json" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sha_tree(tmp_path) == before


def test_an_unknown_python_is_a_usage_error(tmp_path):
    proc = _pekit("wheelhouse", str(tmp_path / "wh"), "--python", "3.9")
    assert proc.returncode == 2 and "3.9" in proc.stderr
    assert not (tmp_path / "wh").exists()


def test_list_prints_the_plan_and_writes_nothing(tmp_path):
    proc = _pekit("wheelhouse", str(tmp_path / "wh"), "--have", "matplotlib", "--list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("transformers==") for line in lines)
    assert any(line.startswith("# left out: matplotlib==") for line in lines)
    assert not (tmp_path / "wh").exists()


def test_a_failed_build_leaves_the_earlier_wheelhouse(tmp_path, monkeypatch):
    out = tmp_path / "wh"
    out.mkdir()
    (out / "wheelhouse.json").write_text(json.dumps({"python": "3.11"}))
    (out / "a-1.0-py3-none-any.whl").write_bytes(b"earlier")
    before = sha_tree(out)

    def offline(cmd, what):
        raise PekitError(f"{what} failed: no network")

    monkeypatch.setattr(wheelhouse, "_run", offline)
    with pytest.raises(PekitError, match="no network"):
        wheelhouse.build(out, "3.12", echo=lambda text: None)
    assert sha_tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["wh"]
