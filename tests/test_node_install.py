"""The no-Docker path on a node that has its own PyTorch, as `make gpu-check` takes it.

The "node" is a Python installation (this one's interpreter and standard library, copied, with
an empty site-packages) that has torch, torchvision and what they require: this test
environment's own packages, linked in. The kit's wheelhouse is built for it, then
`make gpu-check` installs the kit with pip's --no-index into a fresh venv that sees the node's
torch through its system site packages, and runs the check's CPU path: Table I, VisualBERT FC
and PE `mmf_run`s with the paper and fast settings, the bench's training section.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import make_env
from pekit import wheelhouse
from pekit.core import pins

pytestmark = [pytest.mark.mmf, pytest.mark.slow, pytest.mark.install]

REPO = pins.REPO_ROOT
PY = "{}.{}".format(*sys.version_info[:2])


def _node_python(root: Path) -> Path:
    """A copy of this Python without its site-packages; its stdlib entries are links."""
    base = Path(sys.base_prefix)
    exe = Path(sys._base_executable if hasattr(sys, "_base_executable") else sys.executable)
    stdlib = Path(sysconfig.get_paths(vars={"installed_base": str(base)})["stdlib"])
    node_lib = root / "lib" / f"python{PY}"
    (node_lib / "site-packages").mkdir(parents=True)
    for entry in stdlib.iterdir():
        if entry.name not in ("site-packages", "dist-packages", "test"):
            (node_lib / entry.name).symlink_to(entry)
    (root / "bin").mkdir()
    python = root / "bin" / f"python{PY}"
    shutil.copy2(str(Path(exe).resolve()), str(python))  # a copy: Python finds its prefix from it
    (root / "bin" / "python3").symlink_to(python.name)
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import sys, site; print(sys.prefix); print(site.getsitepackages()[0])",
        ],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0 or Path(probe.stdout.split()[0]) != root:
        pytest.skip(f"this Python cannot be copied to make a node Python: {probe.stderr.strip()}")
    return python


def _link_distribution(name: str, site: Path):
    """Make an installed distribution of this environment importable (and pip-visible) in
    `site`: a link for each of its top-level files and folders."""
    dist = importlib.metadata.distribution(name)
    tops = {Path(str(f)).parts[0] for f in dist.files or () if not str(f).startswith("..")}
    for top in tops:
        source = Path(dist.locate_file(top))
        if source.exists() and not (site / top).exists():
            (site / top).symlink_to(source)


@pytest.fixture(scope="module")
def node(tmp_path_factory, mmf_checkout):
    root = tmp_path_factory.mktemp("node")
    python = _node_python(root)
    site = root / "lib" / f"python{PY}" / "site-packages"
    # pip, from the standard library's own wheel: a node's Python has pip.
    subprocess.run(
        [str(python), "-m", "ensurepip", "--default-pip"], check=True, capture_output=True
    )
    torch_side = wheelhouse.provided(wheelhouse.NODE_TORCH, wheelhouse.lock_graph())
    for name in sorted(torch_side):
        try:
            _link_distribution(name, site)
        except importlib.metadata.PackageNotFoundError:
            pass  # a CUDA runtime wheel a CPU build of torch does not need
    probe = subprocess.run(
        [str(python), "-c", "import torch, torchvision; print(torch.__file__)"],
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.startswith(str(site)), probe.stdout
    return python, site


def test_make_gpu_check_installs_offline_on_the_nodes_torch_and_runs(node, tmp_path, mmf_checkout):
    python, site = node
    freeze = tmp_path / "freeze.txt"
    freeze.write_text(
        subprocess.run(
            [str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True
        ).stdout
    )
    wh = tmp_path / "wheelhouse"
    built = subprocess.run(
        [
            str(python),
            "-m",
            "pekit",
            "wheelhouse",
            str(wh),
            "--python",
            PY,
            "--have",
            f"@{freeze}",
            "--with-tests",
        ],
        cwd=str(REPO),
        env={**os.environ, "PYTHONPATH": str(REPO / "scripts")},
        capture_output=True,
        text=True,
    )
    if built.returncode != 0 and "download" in built.stderr:
        pytest.skip(f"PyPI not reachable to build the wheelhouse: {built.stderr.strip()}")
    assert built.returncode == 0, built.stderr
    record = json.loads((wh / "wheelhouse.json").read_text())
    files = " ".join(f["file"] for f in record["files"]).lower()
    for absent in ("torch-", "torchvision-", "nvidia", "numpy-", "pillow-"):
        assert absent not in files, absent
    assert "transformers-" in files and "pytest-" in files

    venv = tmp_path / "venv"
    results = tmp_path / "results"
    proc = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(REPO),
            "gpu-check",
            f"NODE_PYTHON={python}",
            f"WHEELHOUSE={wh}",
            f"GPU_CHECK_VENV={venv}",
            f"RESULTS_DIR={results}",
            f"MMF_FROM={mmf_checkout}",
        ],
        env=make_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-6000:]

    # The venv's torch is the node's: found through the system site packages, not installed.
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import torch, mmf; print(torch.__file__)"],
        capture_output=True,
        text=True,
    )
    assert where.returncode == 0 and where.stdout.startswith(str(site)), where
    venv_site = venv / "lib" / f"python{PY}" / "site-packages"
    for name in ("torch", "torchvision", "numpy"):
        assert not (venv_site / name).exists() and not list(venv_site.glob(f"{name}-*.dist-info"))
    assert list(venv_site.glob("transformers-*.dist-info"))

    result = json.loads((results / "gpu-check" / "gpu-check.json").read_text())
    assert result["ok"] is True
    assert result["device"]["type"] == "cpu" and "no GPU" in result["scaled_down"]
    rows = {(r["model"], r["mode"]): r for r in result["table1"]}
    assert set(rows) == {(m, x) for m in ("visual_bert", "vilbert") for x in ("fc", "pe", "full")}
    assert all(r["pass"] and r["total"] == r["paper_total"] for r in rows.values())
    runs = {(r["settings"], r["mode"]) for r in result["training"]}
    assert runs == {(s, m) for s in ("paper", "fast") for m in ("fc", "pe")}
    for run in result["training"]:
        assert run["status"] == "finished" and run["losses_finite"] and run["updates"] >= 1
    assert result["seconds"]["total_with_install"] >= sum(
        v for k, v in result["seconds"].items() if k != "total_with_install"
    )
    md = (results / "gpu-check" / "gpu-check.md").read_text()
    assert "Scaled down" in md and "### Targets" in md and "All good" in md
    # No checkpoints kept, no synthetic data left behind: logs and tables only.
    assert not list((results / "gpu-check").rglob("*.ckpt"))
    assert not (results / "gpu-check" / "work" / "world").exists()
