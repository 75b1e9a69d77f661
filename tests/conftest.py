"""Shared fixtures: the pristine transformers wheel, where MMF is (or why the MMF tests skip), a
stand-in MMF, the finished demo runs, and transformers' BERT for the `pe` patch's tests; and how
the tests are shared among `make test`'s workers (pytest-xdist, `--dist loadgroup`)."""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import workers
from helpers.env import pekit_env
from helpers.skips import no_mmf
from helpers.wheels import cached_wheel
from pekit.facts import pins
from pekit.setup import mmf_source
from pekit.setup.patching import engine, manifest, targets

# ---- test workers (tests/helpers/workers.py) ---------------------------------------------------


def pytest_collection_modifyitems(config, items):
    workers.order(items)
    workers.publish_groups(config, items)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    workers.tell_worker(node)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    return workers.scheduler(config, log)


def pytest_unconfigure(config):
    workers.forget_groups(config)


@pytest.fixture(scope="session")
def transformers_wheel():
    """The real transformers wheel at the pinned version, from PyPI, cached and sha256-checked."""
    pin = pins.get("transformers")
    try:
        wheel = cached_wheel(f"transformers=={pin['version']}", pin["wheel"])
    except RuntimeError as e:
        pytest.fail(str(e))
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


@pytest.fixture
def fake_mmf(tmp_path, monkeypatch):
    """`pekit run` drives tests/helpers/mmf_log_writer.py as its mmf_run (each call's argv
    recorded), with tmp_path/data laid out as the preflight wants; returns the calls' reader."""
    from helpers import ready_data
    from pekit.run import command, record

    writer = Path(__file__).resolve().parent / "helpers" / "mmf_log_writer.py"
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv(
        command.ENV_MMF_RUN, f"{shlex.quote(sys.executable)} {shlex.quote(str(writer))}"
    )
    monkeypatch.setenv("FAKE_MMF_CALLS", str(calls))
    monkeypatch.setenv(record.ENV_PROFILE, "modern")
    for var in (
        "FAKE_MMF_EXIT",
        "FAKE_MMF_STOP_AT",
        "FAKE_MMF_KILL",
        "FAKE_MMF_PREDICT_EXIT",
        "FAKE_MMF_PREDICT_FAULT",
    ):
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


# ---- transformers' BERT, for the `pe` patch's tests (test_pe_bert.py, test_lora_bert.py) -----


@pytest.fixture(scope="module")
def patched():
    """The importable transformers' modeling_bert, which must carry the kit's `pe` patch."""
    from helpers import bert

    return bert.patched_modeling_bert()


@pytest.fixture(scope="module")
def pristine(transformers_wheel, patched):
    """Upstream modeling_bert.py from the wheel, loaded inside the transformers package."""
    from helpers import bert

    return bert.pristine_modeling_bert(transformers_wheel)


@pytest.fixture(scope="module")
def inputs():
    """A bert-base batch of two: random token ids, the second padded after 12 tokens."""
    from helpers import bert

    return bert.bert_inputs()
