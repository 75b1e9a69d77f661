"""mmf_run trains the paper's models for a few updates, offline, on a synthetic Hateful Memes.

Each run builds the full-size model in one training mode, trains 2 updates on CPU, evaluates
on the dev split and checkpoints; MMF's own log line gives the parameter counts, which must be
the paper's (Table I). Four runs cover the three modes of VisualBERT and ViLBERT's adapters.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from pekit import models
from pekit import synthetic as mmf_world

pytestmark = [pytest.mark.mmf, pytest.mark.slow]

PARAMS_LINE = re.compile(r"Total Parameters: (\d+)\. Trained Parameters: (\d+)")
RUNS = [("visual_bert", "fc"), ("visual_bert", "full"), ("visual_bert", "pe"), ("vilbert", "pe")]
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


@pytest.mark.parametrize("model,mode", RUNS, ids=[f"{m}-{k}" for m, k in RUNS])
def test_mmf_run_trains_evaluates_and_checkpoints(mmf_installed, world, tmp_path, model, mode):
    proc = subprocess.run(
        mmf_world.run_command(world, model, mode),
        env=mmf_world.run_env(world),
        cwd=str(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=HANG_TIMEOUT_S,
    )
    log = proc.stdout.decode("utf-8", "replace")
    save_dir = world.save_dir / f"{model}-{mode}"
    try:
        assert proc.returncode == 0, f"mmf_run exited {proc.returncode}:\n{log[-6000:]}"
        counts = [tuple(int(n) for n in m) for m in PARAMS_LINE.findall(log)]
        assert counts == [expected_counts(model, mode)], log[-6000:]
        assert "val/hateful_memes/roc_auc" in log, "no end-of-training evaluation in the log"
        for name in ("best.ckpt", "current.ckpt", f"{model}_final.pth"):
            assert (save_dir / name).is_file(), f"{save_dir}: no {name}"
    finally:
        # Each run leaves ~3 GB of checkpoints.
        shutil.rmtree(str(save_dir), ignore_errors=True)
