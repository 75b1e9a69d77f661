"""Shared fixtures: the pristine transformers wheel, and where MMF is (or why the MMF tests skip)."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pekit.core import location
from pekit.facts import pins
from pekit.setup import mmf_source
from pekit.setup.patching import engine, manifest, targets

REPO = location.kit_root()
WHEEL_CACHE = REPO / ".cache" / "wheels"


@pytest.fixture(scope="session")
def transformers_wheel():
    """The real transformers wheel at the pinned version, from PyPI, cached and sha256-checked."""
    pin = pins.get("transformers")
    wheel = WHEEL_CACHE / pin["wheel"]
    if not wheel.exists():
        WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            f"transformers=={pin['version']}",
            "-d",
            str(WHEEL_CACHE),
        ]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if proc.returncode != 0 or not wheel.exists():
            pytest.fail(f"could not download {pin['wheel']} from PyPI:\n{proc.stdout.decode()}")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert digest == pin["wheel_sha256"], f"{wheel}: sha256 {digest}, pinned {pin['wheel_sha256']}"
    return wheel


@pytest.fixture
def pristine_transformers(transformers_wheel, tmp_path):
    """A fresh, pristine copy of the wheel's `transformers` package; returns its root folder."""
    root = tmp_path / "site"
    with zipfile.ZipFile(str(transformers_wheel)) as z:
        z.extractall(str(root), [n for n in z.namelist() if n.startswith("transformers/")])
    return root


def no_mmf(reason):
    """Skip a test that needs MMF, saying why; fail instead where PEKIT_REQUIRE_MMF is set (CI,
    where every MMF test must run)."""
    if os.environ.get("PEKIT_REQUIRE_MMF"):
        pytest.fail(f"{reason} (PEKIT_REQUIRE_MMF is set: every MMF test must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mmf_checkout():
    """An MMF checkout at the pinned commit (MMF_SRC or the kit's cache), or skip saying why."""
    try:
        checkout = mmf_source.find_checkout()
    except Exception as e:  # a wrong MMF_SRC is a skip reason here; pekit itself refuses loudly
        no_mmf(f"MMF checkout unusable: {e}")
    if checkout is None:
        no_mmf(
            "MMF not found: set MMF_SRC to a checkout at the pinned commit, run `pekit mmf fetch`,"
            " or let `make test` fetch it (MMF_FROM=clone-or-bundle offline)"
        )
    return checkout


@pytest.fixture(scope="session")
def mmf_installed():
    """Skip unless MMF is importable here with every patch (compat + PE) applied."""
    root = targets.find_root("mmf")
    if root is None:
        no_mmf("MMF is not installed in this environment (make test installs it when found)")
    sets = targets.default_sets()
    entries = manifest.load().select(sets=sets, targets=("mmf", "transformers"))
    tf_root = targets.find_root("transformers")
    states = engine.file_states(entries, {"mmf": root, "transformers": tf_root})
    unpatched = [str(s.file) for s in states if s.state != engine.PATCHED]
    if unpatched:
        pytest.fail(
            "MMF/transformers installed but not patched (run `make prepare`): "
            + ", ".join(unpatched)
        )
    return root


# Make variables of the kit a caller's environment may hold (CI exports MMF_FROM; `make test
# VENV=.venv-3.12` exports its command-line variables to the tests), and make's own channel for
# passing command-line variables on to sub-makes.
KIT_MAKE_VARIABLES = (
    "PYTHON",
    "VENV",
    "PYTEST_ARGS",
    "OWN_PYTHON",
    "NODE_PYTHON",
    "WHEELHOUSE",
    "GPU_CHECK_VENV",
    "PAPER_VENV",
    "PYTHON37",
    "PYTHON312",
    "TWIN_VENV",
    "GPU_BUNDLE",
    "NODE_FREEZE",
    "MINUTES",
    "HOST_PYTHON",
    "MMF_FETCH_TIMEOUT",
    "MODELS",
    "MODES",
    "SEEDS",
    "BATCH",
    "SETTINGS",
    "SRC",
    "REPORT_ARGS",
    "BENCH_ARGS",
    "MMF_FROM",
    "BUILD_CA",
    "BASE_IMAGE",
    "DOCKER",
    "GPUS",
    "PROFILE",
    "IMAGE",
    "IMAGE_TAG",
    "LOCAL",
    "DATA_DIR",
    "CACHE_DIR",
    "RESULTS_DIR",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
)


def make_env(**overrides):
    """The environment for a `make` the tests run: the caller's, without the kit's variables."""
    env = {k: v for k, v in os.environ.items() if k not in KIT_MAKE_VARIABLES}
    env.update(overrides)
    return env


def sha_tree(root: Path):
    """sha256 of every file below root, to assert that nothing was written."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---- fault injection ----------------------------------------------------------------------

KILL_AT = r"""
import os, shutil, signal, sys
from pekit import cli

# Die (SIGKILL) at the n-th call of any of these: every write, rename, link and removal.
n, calls = int(os.environ["PEKIT_KILL_AT"]), [0]
def killer(real):
    def call(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return call
for name in ("replace", "rename", "fsync", "unlink", "chmod", "symlink", "mkdir", "rmdir"):
    setattr(os, name, killer(getattr(os, name)))
shutil.rmtree = killer(shutil.rmtree)
sys.exit(cli.main(sys.argv[1:]))
"""


def pekit_killed_at(step, *argv, env=None):
    """Run `pekit ARGV`, killed (SIGKILL) at its `step`-th write, rename, link or removal;
    returns (returncode, output). -SIGKILL means it was killed; otherwise it finished."""
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AT, *map(str, argv)],
        env=dict(env or os.environ, PEKIT_KILL_AT=str(step)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return proc.returncode, proc.stdout.decode(errors="replace")


def kit_scratch(root):
    """The kit's scratch names left under `root`: staged files, temporaries, journals."""
    return sorted(
        str(p)
        for p in Path(root).rglob("*")
        if ".pekit-" in p.name or p.name.startswith(".hmd-unzip-")
    )


def pekit_env(world):
    """The environment of a `pekit` subprocess that trains in `world` (pekit.workflows.synthetic): MMF
    offline with every cache in the world, run by this Python, this test session's imports."""
    from pekit.run import command, record
    from pekit.workflows import synthetic

    env = synthetic.run_env(world)
    env[command.ENV_MMF_RUN] = f"{sys.executable} -m mmf_cli.run"
    env.pop(record.ENV_PROFILE, None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


@pytest.fixture
def fake_mmf(tmp_path, monkeypatch):
    """`pekit run` drives tests/mmf_log_writer.py as its mmf_run (each call's argv recorded),
    with tmp_path/data laid out as the preflight wants; returns the calls' reader."""
    import ready_data

    from pekit.run import command, record

    writer = Path(__file__).resolve().parent / "mmf_log_writer.py"
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv(
        command.ENV_MMF_RUN, f"{shlex.quote(sys.executable)} {shlex.quote(str(writer))}"
    )
    monkeypatch.setenv("FAKE_MMF_CALLS", str(calls))
    monkeypatch.setenv(record.ENV_PROFILE, "modern")
    for var in ("FAKE_MMF_EXIT", "FAKE_MMF_STOP_AT", "FAKE_MMF_KILL"):
        monkeypatch.delenv(var, raising=False)
    ready_data.lay_out(tmp_path / "data")

    def read_calls():
        if not calls.exists():
            return []
        return [json.loads(x) for x in calls.read_text().splitlines()]

    return read_calls


@pytest.fixture(scope="session")
def finished_runs(mmf_installed, tmp_path_factory):
    """`pekit demo`'s folder with every run finished, built once per session (tests/helpers/
    finished_runs.py says what it holds); its checkpoints are deleted at the session's end."""
    from helpers.finished_runs import FinishedRuns

    runs = FinishedRuns(tmp_path_factory.mktemp("finished_runs"), pekit_env)
    try:
        runs.build()
        yield runs
    finally:
        timings = ", ".join(f"{k} {v:.0f}" for k, v in runs.timings.items())
        print(f"\nfinished runs' timings (s): {timings}")
        runs.delete_checkpoints()
