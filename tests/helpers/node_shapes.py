"""Node Pythons of the three shapes a GPU node has, made from the interpreter running the tests:

- ``system_python``: a Python installation of its own (this interpreter's binary copied, its
  standard library linked, an empty site-packages), like /usr/bin/python3 or a module's Python;
- ``conda_python``: the same with a ``conda-meta/`` folder, as a conda environment is laid out;
- ``venv_python``: a venv of this interpreter's base Python (its packages are the venv's, not
  the base's: the case that `--system-site-packages` gets wrong).

``fake_wheel`` writes a minimal wheel of a one-module package whose ``VERSION`` is its version;
``install_fake`` puts the same package straight into a site folder, as an installed
distribution.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

PY = "{}.{}".format(*sys.version_info[:2])


def _base_executable():
    return Path(getattr(sys, "_base_executable", sys.executable)).resolve()


def system_python(root: Path) -> Path:
    """A copy of this Python without its site-packages; its stdlib entries are links."""
    base = Path(sys.base_prefix)
    stdlib = Path(sysconfig.get_paths(vars={"installed_base": str(base)})["stdlib"])
    node_lib = root / "lib" / f"python{PY}"
    (node_lib / "site-packages").mkdir(parents=True)
    for entry in stdlib.iterdir():
        if entry.name not in ("site-packages", "dist-packages", "test"):
            (node_lib / entry.name).symlink_to(entry)
    (root / "bin").mkdir()
    python = root / "bin" / f"python{PY}"
    shutil.copy2(str(_base_executable()), str(python))  # a copy: Python finds its prefix from it
    (root / "bin" / "python3").symlink_to(python.name)
    probe = subprocess.run(
        [str(python), "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True
    )
    if probe.returncode != 0 or Path(probe.stdout.strip()) != root:
        pytest.skip(f"this Python cannot be copied to make a node Python: {probe.stderr.strip()}")
    return python


def conda_python(root: Path) -> Path:
    python = system_python(root)
    (root / "conda-meta").mkdir()
    (root / "conda-meta" / "history").write_text("# a conda environment's marker\n")
    return python


def venv_python(root: Path) -> Path:
    subprocess.run(
        [str(_base_executable()), "-m", "venv", "--without-pip", str(root)],
        check=True,
        capture_output=True,
    )
    return root / "bin" / "python"


def site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def _dist_info(name, version, requires=()):
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    module = f"VERSION = {version!r}\n"
    return meta, module


def install_fake(site: Path, name: str, version: str, requires=()):
    """`name` at `version`, installed in `site` as pip would leave it (module + dist-info)."""
    meta, module = _dist_info(name, version, requires)
    (site / f"{name}.py").write_text(module)
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(meta)
    (info / "RECORD").write_text(f"{name}.py,,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")
    (info / "INSTALLER").write_text("pip\n")


def fake_wheel(folder: Path, name: str, version: str, requires=()) -> Path:
    """A pure-Python wheel of `name` at `version` in `folder`."""
    meta, module = _dist_info(name, version, requires)
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": module,
        f"{info}/METADATA": meta,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(str(wheel), "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
    return wheel


def pip_wheel() -> Path:
    """The pip wheel this Python's ensurepip carries (no network)."""
    bundled = Path(sysconfig.get_paths()["stdlib"]) / "ensurepip" / "_bundled"
    wheels = sorted(bundled.glob("pip-*.whl"))
    if not wheels:
        pytest.skip(f"no pip wheel in {bundled}: this Python has no ensurepip")
    return wheels[-1]
