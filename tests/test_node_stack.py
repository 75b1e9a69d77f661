"""What a current GPU node's Python holds beside torch must not break the kit's transformers
4.10.1 and MMF: a JAX and Flax of today (no `jax.numpy.DeviceArray`, whose absence once stopped
`import mmf` on a real node) and a TensorFlow are left alone unless asked for (the compat
patch of transformers/file_utils.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.mmf]


def _fake_package(site, name, version, body=""):
    pkg = site / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(f"__version__ = {version!r}\n{body}")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return pkg


@pytest.fixture
def node_site(tmp_path):
    """A site folder with today's JAX (no jax.numpy.DeviceArray), Flax and TensorFlow."""
    site = tmp_path / "site"
    jax = _fake_package(site, "jax", "0.11.2")
    (jax / "numpy").mkdir()
    (jax / "numpy" / "__init__.py").write_text("ndarray = object  # no DeviceArray any more\n")
    _fake_package(site, "flax", "0.12.10")
    _fake_package(site, "tensorflow", "2.21.0", "raise ImportError('not this one')\n")
    return site


def _run(code, site, **env):
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site), **env},
    )


def test_mmf_starts_beside_a_current_jax_flax_and_tensorflow(mmf_installed, node_site):
    code = (
        "import mmf.utils.patch as p; p.patch_transformers();"
        "from transformers import file_utils as f;"
        "print(f.is_flax_available(), f.is_tf_available(), f.is_torch_available())"
    )
    proc = _run(code, node_site)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["False", "False", "True"]


def test_use_flax_brings_the_old_detection_back(mmf_installed, node_site):
    proc = _run(
        "from transformers import file_utils as f; print(f.is_flax_available())",
        node_site,
        USE_FLAX="1",
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr[-2000:]
