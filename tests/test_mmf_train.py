"""mmf_run trains the paper's models for a few updates, offline, on a synthetic Hateful Memes.

Each run builds the full-size model in one training mode, trains a few updates on CPU, evaluates
on the dev split and checkpoints; MMF's own log line gives the parameter counts, which must be
the paper's (Table I). VisualBERT's three modes are checked on the runs `pekit demo` trained
through the runner (the session's `finished_runs`: the same mmf_run, not trained again here);
ViLBERT's adapters and LoRA, which nothing else trains, are run here with mmf_run directly.
On the paper profile's stack (`make paper-check`, PEKIT_DIRECT_RUNS=1) VisualBERT's modes are run
here directly too: that check trains no demo.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from pekit.facts import models
from pekit.run import record
from pekit.run.spec import LOG
from pekit.workflows import synthetic as mmf_world

pytestmark = [pytest.mark.mmf, pytest.mark.slow]

PARAMS_LINE = re.compile(r"Total Parameters: (\d+)\. Trained Parameters: (\d+)")
RUNS = [("vilbert", "pe")]
DIRECT = os.environ.get("PEKIT_DIRECT_RUNS") == "1"
if DIRECT:
    RUNS = [("visual_bert", mode) for mode in ("fc", "pe", "full")] + RUNS
# What the demo trains on Hateful Memes, each once per session.
DEMO_MODES = ("fc", "full", "pe")
# A hang guard only: a run takes well under a minute on two cores.
HANG_TIMEOUT_S = 1800


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return mmf_world.build_world(tmp_path_factory.mktemp("mmf_world"))


def expected_counts(model, mode):
    for row in models.table1_rows():
        if row["model"] == model and row["mode"] == mode:
            return row["total"], row["trained"]
    raise AssertionError(f"paper_reference.json has no Table I row for {model}/{mode}")


def mmf_run(world, model, mode, cwd):
    """(exit status, log) of a real mmf_run of `model` in `mode` in `world`."""
    proc = subprocess.run(
        mmf_world.run_command(world, model, mode),
        env=mmf_world.run_env(world),
        cwd=str(cwd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=HANG_TIMEOUT_S,
    )
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


@pytest.mark.skipif(DIRECT, reason="PEKIT_DIRECT_RUNS: VisualBERT is run with mmf_run directly")
@pytest.mark.parametrize("mode", DEMO_MODES)
def test_visual_bert_trains_evaluates_and_checkpoints(finished_runs, mode):
    folder = finished_runs.run_dir("hmd", mode)
    run = json.loads((folder / record.RECORD).read_text())
    log = (folder / LOG).read_text("utf-8", "replace")
    assert run["status"] == "finished" and run["exit_status"] == 0, log[-6000:]
    # MMF's log holds every attempt (the demo resumes an interrupted PE run): each built the
    # model with the paper's counts.
    counts = [tuple(int(n) for n in m) for m in PARAMS_LINE.findall(log)]
    assert counts == [expected_counts("visual_bert", mode)] * len(run["attempts"]), log[-6000:]
    assert "val/hateful_memes/roc_auc" in log, "no evaluation in the log"
    save_dir = folder / run["save_dir"]
    for name in ("best.ckpt", "current.ckpt", "visual_bert_final.pth"):
        assert (save_dir / name).is_file(), f"{save_dir}: no {name}"


@pytest.mark.parametrize("model,mode", RUNS, ids=[f"{m}-{k}" for m, k in RUNS])
def test_mmf_run_trains_evaluates_and_checkpoints(mmf_installed, world, tmp_path, model, mode):
    code, log = mmf_run(world, model, mode, tmp_path)
    save_dir = world.save_dir / f"{model}-{mode}"
    try:
        assert code == 0, f"mmf_run exited {code}:\n{log[-6000:]}"
        counts = [tuple(int(n) for n in m) for m in PARAMS_LINE.findall(log)]
        assert counts == [expected_counts(model, mode)], log[-6000:]
        assert "val/hateful_memes/roc_auc" in log, "no end-of-training evaluation in the log"
        for name in ("best.ckpt", "current.ckpt", f"{model}_final.pth"):
            assert (save_dir / name).is_file(), f"{save_dir}: no {name}"
    finally:
        # Each run leaves ~3 GB of checkpoints.
        shutil.rmtree(str(save_dir), ignore_errors=True)


def test_mmf_run_trains_vilbert_with_lora(mmf_installed, world, tmp_path):
    """ViLBERT's LoRA sits in MMF's own attention classes (text and visual streams): a real
    run trains it. Counts: Table I's ViLBERT rows plus 12 x 2 x 2 x 768 x 8 (text) and
    6 x 2 x 2 x 1024 x 8 (visual) low-rank parameters (tests/test_table1_counts.py)."""
    added = 12 * 2 * 2 * 768 * 8 + 6 * 2 * 2 * 1024 * 8
    total = expected_counts("vilbert", "full")[0] + added
    trained = expected_counts("vilbert", "fc")[1] + added
    code, log = mmf_run(world, "vilbert", "lora", tmp_path)
    try:
        assert code == 0, f"mmf_run exited {code}:\n{log[-6000:]}"
        counts = [tuple(int(n) for n in m) for m in PARAMS_LINE.findall(log)]
        assert counts == [(total, trained)], log[-6000:]
        assert "val/hateful_memes/roc_auc" in log
    finally:
        shutil.rmtree(str(world.save_dir / "vilbert-lora"), ignore_errors=True)
