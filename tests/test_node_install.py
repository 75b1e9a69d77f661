"""The no-Docker path on a node that has its own PyTorch, as `make gpu-check` takes it.

The "node" is a Python installation (this one's interpreter and standard library, copied, with
an empty site-packages) that has torch, torchvision and what they require: this test
environment's own packages, linked in. Its freeze (node.py freeze) decides the wheelhouse, then
`make gpu-check` writes the bundle for it (kit, wheelhouse, MMF as a wheel, run.sh) and runs the
bundle's run.sh: the kit's venv over the node's Python (the node's packages after the kit's,
through a .pth), pip's --no-index throughout, and the patches. run.sh stops there
(PEKIT_INSTALL_ONLY=1); the environment is then checked as gpu-check checks it first (`pekit
doctor`'s findings). The check's own parts (Table I, the mmf_runs, the bench) are
test_gpu_check.py's, and `make twin-check` runs the whole gpu-check on a node twin in CI.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.env import make_env
from helpers.node_shapes import PY, site_packages, system_python
from pekit.core import location
from pekit.setup import wheelhouse

pytestmark = [pytest.mark.mmf, pytest.mark.slow, pytest.mark.install]

REPO = location.kit_root()


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
    python = system_python(root)
    site = site_packages(python)
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


def test_make_gpu_check_installs_offline_on_the_nodes_torch(node, tmp_path, mmf_checkout):
    python, site = node
    freeze = tmp_path / "node.json"
    freeze.write_text(
        subprocess.run(
            [str(python), str(REPO / "scripts" / "pekit" / "setup" / "node.py"), "freeze"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    wh = tmp_path / "wheelhouse"
    built = subprocess.run(
        [sys.executable, "-m", "pekit", "wheelhouse", str(wh), "--node", str(freeze)],
        cwd=str(REPO),
        capture_output=True,
        text=True,
    )
    if built.returncode != 0 and "download" in built.stderr:
        pytest.skip(f"PyPI not reachable to build the wheelhouse: {built.stderr.strip()}")
    assert built.returncode == 0, built.stderr
    record = json.loads((wh / "wheelhouse.json").read_text())
    files = " ".join(f["file"] for f in record["files"]).lower()
    for absent in ("torch-", "torchvision-", "nvidia", "numpy-", "pillow-", "pytest-"):
        assert absent not in files, absent
    assert "transformers-" in files and "pip-" in files
    assert record["kept"]["numpy"]["major"] == importlib.metadata.version("numpy").split(".")[0]

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
            f"GPU_BUNDLE={tmp_path / 'bundle'}",
            f"RESULTS_DIR={results}",
            f"MMF_FROM={mmf_checkout}",
        ],
        env=make_env(PEKIT_INSTALL_ONLY="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-6000:]
    # run.sh stopped after the install: no check ran, nothing was written for one.
    assert "PEKIT_INSTALL_ONLY=1, gpu-check not run" in proc.stdout, proc.stdout[-6000:]
    assert not (results / "gpu-check").exists()

    bundle = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    assert bundle["mmf_wheel"].endswith("-py3-none-any.whl") and bundle["total_bytes"] > 0
    # The venv's torch is the node's: found through the node's site folder, not installed.
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

    # What gpu-check checks before its parts, in the venv: Python, torch, the kit's packages
    # and their imports, MMF at the pin, this stack's patch sets applied.
    probe = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import json; from pekit.setup.patching import targets; "
            "from pekit.workflows import gpu_check; "
            "print(json.dumps([gpu_check.environment_findings(), targets.default_sets()]))",
        ],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
    )
    assert probe.returncode == 0, probe.stderr[-4000:]
    findings, sets = json.loads(probe.stdout.splitlines()[-1])
    assert not [f for f in findings if f["status"] == "FAIL"], findings
    status = {f["what"]: f for f in findings}
    assert {"Python", "torch", "packages", "imports", "MMF"} <= set(status), findings
    assert sets and all(
        status[f"patch set {name}"]["detail"].startswith("applied") for name in sets
    )
    assert status["MMF"]["status"] == "ok"
