"""docker/checks/: the scripts behind `make paper-check`, `gpu-check`, `gpu-bundle`, `twin-check`
and the targets' required variables, run directly with stand-in Pythons, pips and bundles that
write what they were asked to a log."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.env import make_env
from pekit.core import location
from pekit.facts import pins

REPO = location.kit_root()
CHECKS = REPO / "docker" / "checks"
NODE_PY = REPO / "scripts" / "pekit" / "setup" / "node.py"

sys.path.insert(0, str(REPO / "docker"))
import profiles  # noqa: E402  (docker/profiles.py: a script, not part of the kit's package)


def _tool(folder, name, body):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _system_bin(folder, *names):
    """A PATH folder holding only these system tools (no Python of any version)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).symlink_to(shutil.which(name))
    return folder


def _run(script, *args, cwd, env=None, path=None):
    environ = make_env(HOME=str(cwd / "home"), **(env or {}))
    if path is not None:
        environ["PATH"] = path
    proc = subprocess.run(
        [shutil.which("bash"), str(CHECKS / script), *args],
        cwd=str(cwd),
        env=environ,
        capture_output=True,
        text=True,
    )
    return proc.returncode, proc.stdout, proc.stderr


def _log(path):
    return path.read_text().splitlines() if path.exists() else []


# ---- require.sh --------------------------------------------------------------------------


def test_require_names_what_to_set(tmp_path):
    rc, out, err = _run("require.sh", "SRC", "", "data-hmd", cwd=tmp_path)
    assert (rc, out) == (2, "")
    assert err == "make: set SRC to your copy, e.g. make data-hmd SRC=~/Downloads/...\n"
    rc, _, err = _run("require.sh", "CMD", "", cwd=tmp_path)
    assert rc == 2 and err == "make: set CMD, e.g. make run-in-image CMD='pekit assets list'\n"
    assert _run("require.sh", "SRC", "~/hm.zip", "data-hmd", cwd=tmp_path) == (0, "", "")
    assert _run("require.sh", "NOPE", "", cwd=tmp_path)[0] == 2
    assert _run("require.sh", "SRC", cwd=tmp_path)[0] == 2  # no value given at all


# ---- lib.sh: the Python of a version -----------------------------------------------------


def _first_python(tmp_path, version):
    proc = subprocess.run(
        [shutil.which("bash"), "-c", f'. "{CHECKS}/lib.sh" && first_python {version}'],
        env={"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
    )
    return proc.returncode, proc.stdout.strip()


def test_first_python_takes_the_first_that_runs(tmp_path):
    assert _first_python(tmp_path, "3.7") == (1, "")
    pyenv = tmp_path / "home" / ".pyenv" / "versions"
    _tool(pyenv / "3.7.16" / "bin", "python3.7", "exit 0\n")
    assert _first_python(tmp_path, "3.7") == (0, f"{pyenv}/3.7.16/bin/python3.7")
    assert _first_python(tmp_path, "3.12") == (1, "")
    _tool(tmp_path / "bin", "python3.7", "exit 1\n")  # on PATH, but it does not run
    assert _first_python(tmp_path, "3.7") == (0, f"{pyenv}/3.7.16/bin/python3.7")
    _tool(tmp_path / "bin", "python3.7", "exit 0\n")
    assert _first_python(tmp_path, "3.7") == (0, "python3.7")


# ---- paper-check.sh ----------------------------------------------------------------------


@pytest.fixture
def paper(tmp_path):
    """A Python 3.7 whose `-m venv` makes a venv of stand-ins: its python runs the kit's
    profiles.py and pins.py for real (install.sh reads the pins through them) and logs the rest;
    pip logs; pekit logs and says where `mmf fetch` put MMF."""
    log = tmp_path / "log"
    fakes = tmp_path / "fakes"
    _tool(
        fakes,
        "python",
        f'case "$1" in */profiles.py|*/pins.py) exec "{sys.executable}" "$@";; esac\n'
        f'echo "python $*" >> "{log}"\n',
    )
    _tool(fakes, "pip", f'echo "pip $*" >> "{log}"\n')
    _tool(
        fakes,
        "pekit",
        f'echo "pekit $*" >> "{log}"\n'
        'if [ "$1 $2" = "mmf fetch" ]; then echo "checkout: /fake/mmf"; fi\n',
    )
    python37 = _tool(
        tmp_path / "py37",
        "python3.7",
        f'echo "python3.7 $*" >> "{log}"\n'
        'if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin" && cp '
        f'"{fakes}"/* "$3/bin/"; fi\n',
    )
    return python37, log


def test_paper_check_refuses_without_a_python_37(tmp_path):
    venv = tmp_path / "paper"
    rc, _, err = _run(
        "paper-check.sh",
        "https://github.com/facebookresearch/mmf",
        cwd=tmp_path,
        env={"PAPER_VENV": str(venv), "PYTHON37": "", "PEKIT_PYTHON37": ""},
        path=str(_system_bin(tmp_path / "bin", "dirname")),
    )
    assert rc == 2 and err == "make: no Python 3.7 found: set PYTHON37=/path/to/python3.7\n"
    assert not venv.exists()


def test_paper_check_installs_as_the_image_does_then_runs_table_i_and_mmf_run(paper, tmp_path):
    python37, log = paper
    venv = tmp_path / "paper"
    (venv / "bin").mkdir(parents=True)
    (venv / "stale").write_text("from an earlier run\n")
    rc, out, err = _run(
        "paper-check.sh",
        "/m/mmf.bundle",
        "-k",
        "pe or fc",
        cwd=tmp_path,
        env={"PAPER_VENV": str(venv), "PYTHON37": str(python37)},
    )
    assert rc == 0, err
    assert not (venv / "stale").exists()  # made anew
    calls = _log(log)
    pip_pin = profiles.profile("paper")["pip"]
    steps = [
        f"python3.7 -m venv {venv}",
        f"python -m pip install --quiet --disable-pip-version-check pip=={pip_pin}",
        "pekit mmf fetch --from /m/mmf.bundle",
        "pekit mmf install --src /fake/mmf",
        "pekit patch apply --sets " + ",".join(pins.get("profiles.paper.patch_sets")),
        f"python {REPO}/docker/verify_stack.py paper --torch-stand-in",
        "pip install --quiet --disable-pip-version-check --no-deps -r"
        f" {REPO}/tests/requirements-py37.txt",
        f"python -m pytest -p no:cacheprovider {REPO}/tests/test_table1_counts.py"
        f" {REPO}/tests/test_mmf_train.py -k pe or fc",
    ]
    assert [c for c in calls if c in steps] == steps, calls
    assert calls[-1] == steps[-1]
    # install.sh ran with the venv's pip first on PATH: the kit and transformers went there.
    assert f"pip install --no-cache-dir --disable-pip-version-check --no-deps -e {REPO}" in calls
    assert any(c.endswith("transformers==" + pins.get("transformers.version")) for c in calls)


def test_paper_check_takes_pekit_python37_before_searching(paper, tmp_path):
    python37, log = paper
    other = _tool(tmp_path / "other", "python3.7", f'echo "other $*" >> "{log}"\nexit 1\n')
    rc, _, _ = _run(
        "paper-check.sh",
        "/m",
        cwd=tmp_path,
        env={
            "PAPER_VENV": str(tmp_path / "paper"),
            "PYTHON37": "",
            "PEKIT_PYTHON37": str(other),
            "PATH": f"{python37.parent}:{os.environ['PATH']}",
        },
    )
    assert rc != 0 and _log(log) == [f"other -m venv {tmp_path / 'paper'}"]
    # PYTHON37 before PEKIT_PYTHON37.
    log.unlink()
    rc, _, err = _run(
        "paper-check.sh",
        "/m",
        cwd=tmp_path,
        env={
            "PAPER_VENV": str(tmp_path / "paper"),
            "PYTHON37": str(python37),
            "PEKIT_PYTHON37": str(other),
        },
    )
    assert rc == 0, err
    assert _log(log)[0] == f"python3.7 -m venv {tmp_path / 'paper'}"


# ---- gpu-bundle.sh, gpu-check.sh ---------------------------------------------------------


@pytest.fixture
def node(tmp_path):
    """A node Python with torch whose freeze is a stand-in, a host Python that logs what
    `pekit gpu-bundle` was asked, and a bundle whose run.sh logs what it was given."""
    log = tmp_path / "log"
    python = _tool(
        tmp_path / "node" / "bin",
        "python3",
        f'echo "node $*" >> "{log}"\n'
        'if [ "$2" = freeze ]; then echo \'{"python": "3.12.3", "torch": "2.11.0"}\'; fi\n',
    )
    host = _tool(tmp_path / "host", "python3", f'echo "host $PYTHONPATH $*" >> "{log}"\n')
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "run.sh").write_text(
        f'echo "run.sh NODE_PYTHON=$NODE_PYTHON VENV=$VENV OUT=$OUT'
        f' MINUTES=${{MINUTES-unset}}" >> "{log}"\n'
    )
    env = {
        "NODE_PYTHON": str(python),
        "HOST_PYTHON": str(host),
        "GPU_BUNDLE": str(bundle),
        "GPU_CHECK_VENV": str(tmp_path / "venv"),
        "RESULTS_DIR": str(tmp_path / "results"),
        "MINUTES": "",
        "MMF_FROM": "",
        "WHEELHOUSE": "",
    }
    return env, log


def test_gpu_bundle_wants_the_nodes_freeze(node, tmp_path):
    env, log = node
    rc, _, err = _run("gpu-bundle.sh", cwd=tmp_path, env={**env, "NODE_FREEZE": ""})
    assert rc == 2 and err == (
        "make: set NODE_FREEZE to the node's freeze, made on the node by:"
        " python3 scripts/pekit/setup/node.py freeze > node.json\n"
    )
    assert (REPO / "scripts/pekit/setup/node.py").is_file()  # the path the message names
    assert _log(log) == []


def test_gpu_bundle_runs_the_kit_from_the_checkout(node, tmp_path):
    env, log = node
    rc, _, err = _run("gpu-bundle.sh", cwd=tmp_path, env={**env, "NODE_FREEZE": "node.json"})
    assert rc == 0, err
    assert _log(log) == [
        f"host {REPO}/scripts -m pekit gpu-bundle {env['GPU_BUNDLE']} --node node.json"
    ]
    log.unlink()
    given = {"NODE_FREEZE": "node.json", "MMF_FROM": "/m/my mmf.bundle", "WHEELHOUSE": "/w"}
    rc, _, err = _run("gpu-bundle.sh", cwd=tmp_path, env={**env, **given})
    assert rc == 0, err
    assert _log(log) == [
        f"host {REPO}/scripts -m pekit gpu-bundle {env['GPU_BUNDLE']} --node node.json"
        " --mmf-from /m/my mmf.bundle --wheelhouse /w"
    ]


def test_gpu_check_refuses_a_node_python_that_does_not_run_or_has_no_torch(node, tmp_path):
    env, log = node
    missing = tmp_path / "python"
    rc, _, err = _run("gpu-check.sh", cwd=tmp_path, env={**env, "NODE_PYTHON": str(missing)})
    assert rc == 2 and err == (
        f"make: {missing} has no torch (or does not run); gpu-check runs on a node's own"
        " PyTorch (NODE_PYTHON=/path/to/python)\n"
    )
    no_torch = _tool(tmp_path / "plain", "python3", 'case "$2" in "import torch") exit 1;; esac\n')
    rc, _, err = _run("gpu-check.sh", cwd=tmp_path, env={**env, "NODE_PYTHON": str(no_torch)})
    assert rc == 2 and "has no torch (or does not run)" in err
    assert _log(log) == [] and not (tmp_path / ".cache").exists()


def test_gpu_check_freezes_the_node_bundles_for_it_and_runs_run_sh(node, tmp_path):
    env, log = node
    rc, _, err = _run("gpu-check.sh", cwd=tmp_path, env=env)
    assert rc == 0, err
    node_python = env["NODE_PYTHON"]
    assert _log(log) == [
        "node -c import torch",
        f"node {NODE_PY} freeze",
        f"host {REPO}/scripts -m pekit gpu-bundle {env['GPU_BUNDLE']} --node .cache/node-freeze.json",
        f"run.sh NODE_PYTHON={node_python} VENV={env['GPU_CHECK_VENV']}"
        f" OUT={env['RESULTS_DIR']}/gpu-check MINUTES=unset",
    ]
    freeze = json.loads((tmp_path / ".cache" / "node-freeze.json").read_text())
    assert freeze == {"python": "3.12.3", "torch": "2.11.0"}
    log.unlink()
    given = {"MINUTES": "5", "MMF_FROM": "/m/mmf.bundle", "WHEELHOUSE": "/w"}
    rc, _, err = _run("gpu-check.sh", cwd=tmp_path, env={**env, **given})
    assert rc == 0, err
    calls = _log(log)
    assert calls[2].endswith(
        "--node .cache/node-freeze.json --mmf-from /m/mmf.bundle --wheelhouse /w"
    )
    assert calls[3].endswith(" MINUTES=5")


def test_gpu_check_stops_where_the_bundle_is_refused(tmp_path):
    """A wheelhouse that is not one: the kit's refusal, no traceback, no venv made."""
    empty = tmp_path / "wheels"
    empty.mkdir()
    venv = tmp_path / "venv"
    rc, out, err = _run(
        "gpu-check.sh",
        cwd=tmp_path,
        env={
            "NODE_PYTHON": sys.executable,
            "HOST_PYTHON": sys.executable,
            "GPU_BUNDLE": str(tmp_path / "bundle"),
            "GPU_CHECK_VENV": str(venv),
            "RESULTS_DIR": str(tmp_path / "results"),
            "WHEELHOUSE": str(empty),
        },
    )
    text = out + err
    assert rc != 0 and "no wheelhouse there" in text, text
    assert "pekit wheelhouse" in text and "Traceback" not in text
    assert not venv.exists()


# ---- twin-check.sh -----------------------------------------------------------------------


@pytest.fixture
def twin(node, tmp_path):
    """A Python 3.12 whose `-m venv` makes a venv of a stand-in python (pip and the freeze
    logged), the node fixture's host Python, and the twin's bundle in .cache/twin-bundle."""
    env, log = node
    fakes = tmp_path / "twin-fakes"
    _tool(
        fakes,
        "python",
        f'echo "twin $*" >> "{log}"\n'
        'if [ "$2" = freeze ]; then echo \'{"python": "3.12.3"}\'; fi\n',
    )
    python312 = _tool(
        tmp_path / "py312",
        "python3.12",
        f'echo "python3.12 $*" >> "{log}"\n'
        'if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin" && cp '
        f'"{fakes}/python" "$3/bin/"; fi\n',
    )
    bundle = tmp_path / ".cache" / "twin-bundle"
    bundle.mkdir(parents=True)
    shutil.copy(str(Path(env["GPU_BUNDLE"]) / "run.sh"), str(bundle / "run.sh"))
    env = {
        "PYTHON312": str(python312),
        "TWIN_VENV": "twin-venv",
        "RESULTS_DIR": env["RESULTS_DIR"],
        "MINUTES": "",
        "MMF_FROM": "",
        "WHEELHOUSE": "",
        "HOST_PYTHON": env["HOST_PYTHON"],
    }
    return env, log


def _twin_steps(tmp_path, minutes="unset"):
    venv = tmp_path / "twin-venv"
    return [
        "python3.12 -m venv twin-venv",
        f"twin -m pip install --quiet --disable-pip-version-check -r {REPO}/tests/node_twin.txt",
        f"twin {NODE_PY} freeze",
        f"host {REPO}/scripts -m pekit gpu-bundle .cache/twin-bundle --node .cache/twin-freeze.json",
        f"run.sh NODE_PYTHON={venv}/bin/python VENV={tmp_path}/.venv-twin-kit"
        f" OUT={tmp_path / 'results'}/twin-check MINUTES={minutes}",
    ]


def test_twin_check_runs_the_bundle_offline_where_unshare_works(twin, tmp_path):
    env, log = twin
    (tmp_path / "twin-venv").mkdir()
    (tmp_path / "twin-venv" / "stale").write_text("from an earlier run\n")
    _tool(
        tmp_path / "ns",
        "unshare",
        f'echo "unshare $*" >> "{log}"\n[ "$1" = -n ] && shift\nexec "$@"\n',
    )
    path = f"{tmp_path / 'ns'}:{os.environ['PATH']}"
    rc, _, err = _run("twin-check.sh", cwd=tmp_path, env={**env, "MINUTES": "3", "PATH": path})
    assert rc == 0, err
    steps = _twin_steps(tmp_path, minutes="3")
    assert _log(log) == [
        "unshare -n true",
        *steps[:4],
        "unshare -n bash .cache/twin-bundle/run.sh",
        steps[4],
    ]
    assert not (tmp_path / "twin-venv" / "stale").exists()
    freeze = json.loads((tmp_path / ".cache" / "twin-freeze.json").read_text())
    assert freeze == {"python": "3.12.3"}


def test_twin_check_runs_the_bundle_without_a_namespace_where_unshare_fails(twin, tmp_path):
    env, log = twin
    _tool(tmp_path / "ns", "unshare", f'echo "unshare $*" >> "{log}"\nexit 1\n')
    path = f"{tmp_path / 'ns'}:{os.environ['PATH']}"
    rc, _, err = _run("twin-check.sh", cwd=tmp_path, env={**env, "PATH": path})
    assert rc == 0, err
    assert _log(log) == ["unshare -n true", *_twin_steps(tmp_path)]


def test_twin_check_without_a_python_312_says_so(twin, tmp_path):
    env, log = twin
    path = _system_bin(tmp_path / "bin", "bash", "dirname", "rm", "mkdir", "cp")
    rc, _, err = _run("twin-check.sh", cwd=tmp_path, env={**env, "PYTHON312": ""}, path=str(path))
    assert rc == 127 and "python3.12" in err and "not found" in err
    assert _log(log) == []
    # With one pyenv installed, that one.
    pyenv = tmp_path / "home" / ".pyenv" / "versions" / "3.12.1" / "bin"
    pyenv.mkdir(parents=True)
    shutil.copy(env["PYTHON312"], str(pyenv / "python3.12"))
    rc, _, err = _run("twin-check.sh", cwd=tmp_path, env={**env, "PYTHON312": ""}, path=str(path))
    assert rc == 0, err
    assert _log(log)[1] == "python3.12 -m venv twin-venv"  # after its probe `-c ''`
