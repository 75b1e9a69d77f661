"""`pekit wheelhouse`: what goes in for a node that has torch (and what else it has), the lock's
dependency graph kept true, and a folder that is not a wheelhouse left alone."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import pytest

from helpers.trees import sha_tree
from pekit.core import location
from pekit.core.errors import PekitError
from pekit.setup import compat, node, wheelhouse

REPO = location.kit_root()


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
        "regenerate: .venv/bin/python -m pekit.setup.wheelhouse graph > docker/lock/modern.requires.json"
    )
    locked = {
        wheelhouse._name(n)
        for n, _, _ in location.docker_profiles().read_lock(REPO / "docker" / "lock" / "modern.txt")
    }
    assert set(graph) == locked | set(wheelhouse.NODE_TORCH)


def test_a_node_with_torch_gets_neither_torch_nor_what_torch_requires():
    made = wheelhouse.plan()
    names = _names(made.wanted)
    torch_side = wheelhouse.provided(wheelhouse.NODE_TORCH, wheelhouse.lock_graph())
    assert {"torch", "torchvision", "triton", "sympy", "numpy", "pillow"} <= torch_side
    assert not any(n.startswith(("nvidia-", "cuda-")) for n in names)
    assert not (names & torch_side) - {"setuptools"}
    # The kit's own needs are all there, and pip and the build tools stay.
    assert {"transformers", "omegaconf", "scikit-learn", "pandas", "lmdb", "setuptools"} <= names
    assert "pip" in names
    assert all("node's own" in why for why in made.left_out.values())


# A current GPU node, as its freeze says (node.py freeze): torch 2.11 with its own CUDA wheels,
# numpy 2, transformers 5, huggingface_hub 1.x, pandas 3 (which needs no pytz).
def _node(packages, requires=None, numpy=None):
    requires = requires or {}
    base = {
        "torch": (
            "2.11.0",
            [
                "nvidia-cudnn-cu13==9.19.0.56",
                "sympy>=1.13.3",
                "cuda-toolkit[cublas]==13.0.2; platform_system == 'Linux'",
                "optree>=0.13; extra == 'optree'",
            ],
        ),
        "torchvision": ("0.26.0", ["numpy", "torch==2.11.0", "pillow!=8.3.*,>=5.3.0"]),
        "nvidia-cudnn-cu13": ("9.19.0.56", []),
        "cuda-toolkit": ("13.0.2", ["nvidia-cublas==13.1.0.3; extra == 'cublas'"]),
        "nvidia-cublas": ("13.1.0.3", []),
        "sympy": ("1.14.0", ["mpmath<1.4,>=1.1.0"]),
        "mpmath": ("1.3.0", []),
        "pillow": ("12.0.0", []),
        "numpy": (numpy or "2.5.2", []),
    }
    base.update(packages)
    doc = {
        "kind": node.KIND,
        "format": node.FORMAT,
        "python": {"version": "3.12.3"},
        "glibc": "2.39",
        "markers": {
            "platform_system": "Linux",
            "sys_platform": "linux",
            "python_version": "3.12",
            "platform_machine": "x86_64",
            "os_name": "posix",
            "python_full_version": "3.12.3",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
        },
        "site_dirs": ["/opt/torch/.venv/lib/python3.12/site-packages"],
        "packages": {
            node.normalize(n): {"name": n, "version": v, "requires": requires.get(n, r)}
            for n, (v, r) in base.items()
        },
    }
    return node.NodeFreeze.from_dict(doc, "node.json")


TODAYS_NODE = {
    "transformers": ("5.17.0", ["huggingface-hub>=1.0", "tokenizers>=0.22"]),
    "tokenizers": ("0.23.2", []),
    "huggingface-hub": ("1.33.0", []),
    "pandas": ("3.1.1", ["numpy>=1.26.0", "python-dateutil>=2.8.2", "tzdata>=2022.7"]),
    "python-dateutil": ("4.0.0", []),
    "tzdata": ("2026.6", []),
    "scipy": ("1.18.1", ["numpy<2.8,>=1.25.2"]),
    "PyYAML": ("6.0.4", []),
    "requests": ("2.32.5", []),
    "pytorch-lightning": ("2.6.6", []),
}


def _line(made, name):
    lines = [ln for ln in made.wanted if wheelhouse._name(ln) == name]
    return lines[0] if lines else None


def test_todays_node_keeps_what_the_kit_works_with_and_shadows_the_rest():
    made = wheelhouse.plan(_node(TODAYS_NODE))
    names = _names(made.wanted)
    # Shadowed: transformers 4.10.1 and the versions it needs, MMF's pytorch-lightning 1.5.10.
    assert _line(made, "transformers") == "transformers==4.10.1"
    assert _line(made, "huggingface-hub") == wheelhouse.locked("huggingface_hub")
    assert _line(made, "tokenizers") == wheelhouse.locked("tokenizers")
    assert _line(made, "pytorch-lightning") == "pytorch-lightning==1.5.10"
    assert made.shadows["transformers"] == "the node's 5.17.0 -> 4.10.1"
    assert made.shadows["requests"].startswith("the node's 2.32.5 -> ")
    # Kept, by version: numpy 2 (torch's), pandas 3, scipy 1.18, PyYAML at the lock's version.
    assert not names & {"numpy", "pandas", "scipy", "pyyaml", "sympy", "pillow"}
    assert made.kept["pandas"] == {"version": "3.1.1", "min": "2.2.3", "max": "3.1.1"}
    assert made.kept["numpy"] == {"version": "2.5.2", "major": "2"}
    assert made.kept["pyyaml"]["exact"] == "6.0.4"
    # pytz ships: the lock's pandas needs it, the node's pandas 3 does not and the node lacks it.
    assert "pytz" in names
    # What torch requires on the node is its own, whatever the lock holds (cudnn 9.24 there).
    assert not any(n.startswith(("nvidia-", "cuda-")) for n in names)
    assert "nvidia-cudnn-cu13" not in made.shadows
    # numpy 2: the lock's numpy-1 builds are replaced by the node twin's.
    assert _line(made, "scikit-learn") == "scikit-learn==1.9.1"
    assert _line(made, "matplotlib") == "matplotlib==3.11.2"
    assert made.warnings == []


def test_a_numpy_1_node_gets_the_locks_builds():
    made = wheelhouse.plan(_node({}, numpy="1.26.4"))
    assert _line(made, "scikit-learn") == wheelhouse.locked("scikit-learn")
    assert _line(made, "scipy") == wheelhouse.locked("scipy")
    assert made.kept["numpy"]["major"] == "1"


def test_a_version_outside_the_proven_range_is_shadowed_and_a_broken_pair_warned():
    made = wheelhouse.plan(
        _node({"pandas": ("1.5.3", []), "scikit-learn": ("1.9.1", ["scipy>=1.99"])})
    )
    assert _line(made, "pandas") == "pandas==3.1.1"  # numpy 2: the twin's pandas
    assert made.shadows["pandas"] == "the node's 1.5.3 -> 3.1.1"
    assert "scikit-learn" in made.kept
    assert any("scikit-learn 1.9.1 requires scipy>=1.99" in w for w in made.warnings)
    # An out-of-range numpy comes with the node's torch: kept, and said.
    warned = wheelhouse.plan(_node({}, numpy="3.0.0")).warnings
    assert any("numpy 3.0.0 comes with its torch" in w for w in warned)


def test_a_node_without_torch_is_refused():
    freeze = _node({})
    del freeze.packages["torchvision"]
    with pytest.raises(PekitError, match="no torchvision on the node"):
        wheelhouse.plan(freeze)


def test_with_tests_adds_the_test_tools():
    names = _names(wheelhouse.plan(with_tests=True).wanted)
    assert {"pytest", "ruff"} <= names
    assert "pytest" not in _names(wheelhouse.plan().wanted)


def test_the_compat_ranges_are_proven_at_both_ends():
    """Each range starts at the lock's version (make test) and ends at the node twin's
    (tests/node_twin.txt, make twin-check); the numpy-2 builds are the twin's."""
    lock = {
        wheelhouse._name(n): v
        for n, v, _ in location.docker_profiles().read_lock(REPO / "docker" / "lock" / "modern.txt")
    }
    twin = {
        wheelhouse._name(n): v
        for n, v, _ in location.docker_profiles().read_lock(REPO / "tests" / "node_twin.txt")
    }
    facts = compat.facts()
    for name, entry in facts["ranges"].items():
        assert entry["min"] == lock[name], name
        # contourpy is not named in the twin's file: pip resolves it for matplotlib there.
        assert entry["max"] == twin.get(name, entry["max"]), name
    for name, version in facts["with_numpy_2"]["versions"].items():
        assert version == twin.get(name, version) and name in lock, name
    assert compat.accepts("numpy", "2.5.2", lock["numpy"])
    assert not compat.accepts("numpy", "2.6.0", lock["numpy"])
    assert compat.accepts("regex", lock["regex"], lock["regex"])
    assert not compat.accepts("regex", "2020.1.1", lock["regex"])


def test_node_reads_a_plain_pip_freeze_with_the_locks_graph(tmp_path):
    freeze = tmp_path / "freeze.txt"
    freeze.write_text("numpy==2.5.2\ntorch==2.11.0\ntorchvision==0.26.0\npandas==3.1.1\n")
    made = wheelhouse.plan(node.NodeFreeze.read(freeze, "3.12"))
    assert "pandas" in made.kept and "pandas" not in _names(made.wanted)
    assert _line(made, "scikit-learn") == "scikit-learn==1.9.1"


def test_platform_tags_cover_older_manylinux():
    tags = wheelhouse.platform_tags("2.28")
    assert tags[0] == "manylinux_2_28_x86_64" and "manylinux_2_17_x86_64" in tags
    assert "manylinux2014_x86_64" in tags and "manylinux1_x86_64" in tags
    assert "manylinux_2_31_x86_64" not in tags


def _pekit(*args):
    return subprocess.run(
        [sys.executable, "-m", "pekit", *args], capture_output=True, text=True, cwd=str(REPO)
    )


def test_malformed_glibc_values_are_usage_errors():
    for bad in ("2", "2.x", "3.28", "2.28.1", "2.3", ""):
        with pytest.raises(PekitError, match="--glibc"):
            wheelhouse.platform_tags(bad)


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
    freeze = tmp_path / "freeze.txt"
    freeze.write_text("torch==2.11.0\ntorchvision==0.26.0\nmatplotlib==3.7.5\n")
    proc = _pekit(
        "wheelhouse", str(tmp_path / "wh"), "--node", str(freeze), "--python", "3.12", "--list"
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("transformers==") for line in lines)
    assert any(line.startswith("# left out: matplotlib==") for line in lines)
    assert not (tmp_path / "wh").exists()


def test_a_failed_build_leaves_the_earlier_wheelhouse(tmp_path, monkeypatch):
    out = tmp_path / "wh"
    out.mkdir()
    record = {"python": "3.11", "files": [{"file": "a-1.0-py3-none-any.whl", "bytes": 7}]}
    (out / "wheelhouse.json").write_text(json.dumps(record))
    (out / "a-1.0-py3-none-any.whl").write_bytes(b"earlier")
    before = sha_tree(out)

    def offline(cmd, what):
        raise PekitError(f"{what} failed: no network")

    monkeypatch.setattr(wheelhouse, "run_pip", offline)
    with pytest.raises(PekitError, match="no network"):
        wheelhouse.build(out, python="3.12", echo=lambda text: None)
    assert sha_tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["wh"]


def test_a_wheelhouse_the_user_added_files_to_is_not_replaced(tmp_path):
    out = tmp_path / "wh"
    out.mkdir()
    record = {"python": "3.12", "files": [{"file": "a-1.0-py3-none-any.whl", "bytes": 7}]}
    (out / "wheelhouse.json").write_text(json.dumps(record))
    (out / "a-1.0-py3-none-any.whl").write_bytes(b"earlier")
    (out / "my-own-1.0-py3-none-any.whl").write_bytes(b"the user's")
    before = sha_tree(tmp_path)
    proc = _pekit("wheelhouse", str(out), "--python", "3.12")
    assert proc.returncode == 1 and "my-own-1.0-py3-none-any.whl" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert sha_tree(tmp_path) == before
    (out / "wheelhouse.json").write_text('{"files": 3}')
    proc = _pekit("wheelhouse", str(out), "--python", "3.12")
    assert proc.returncode == 1 and "not a wheelhouse record" in proc.stderr
