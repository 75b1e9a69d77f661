"""Two processes train what one trains: MMF's distributed training, on the CPU with gloo.

Full-size VisualBERT (random init, dropout off) trains 5 updates on the synthetic memes in FC and
in PE, once as one process with batch 4 and once as two processes with global batch 4 (MMF's
DistributedSampler deals each process every other example of the unshuffled split, 2 a batch,
and DistributedDataParallel averages the two processes' gradients). Both start from the same
weights (DDP broadcasts rank 0's, seeded as the single process is), so each update's loss in the
log, the optimizer's moment estimates and the final weights must agree to float rounding.
Without the compat patches (mmf_cli/run.py, mmf/utils/distributed.py, mmf/trainers/core/
device.py) MMF a34bc2d cannot start a distributed run without CUDA at all.
"""

from __future__ import annotations

import subprocess

import pytest

from pekit.run.mmf_log import parse_file
from pekit.workflows import synthetic as mmf_world

pytestmark = [pytest.mark.mmf, pytest.mark.slow]

UPDATES = 5  # 16 training memes in batches of 4: the fifth update sees the first batch again
# The log shows losses to 4 decimals: two values a rounding apart may print 1e-4 apart.
LOSS_TOLERANCE = 1.5e-4
# Float sums in another order (two half batches, then an all-reduce): rounding, far below this.
WEIGHT_TOLERANCE = 1e-5
HANG_TIMEOUT_S = 1800  # a hang guard only


@pytest.fixture(scope="module")
def world(mmf_installed, tmp_path_factory):
    return mmf_world.build_world(tmp_path_factory.mktemp("distributed_world"))


def no_dropout_config(world, model):
    """An MMF config over the model's own with dropout off and the training split unshuffled
    (keys MMF's config does not declare cannot be set from the command line)."""
    path = world.root / f"{model}-no-dropout.yaml"
    path.write_text(
        "includes:\n"
        f"- {mmf_world.CONFIGS[model]}\n"
        "model_config:\n"
        f"  {model}:\n"
        "    hidden_dropout_prob: 0.0\n"
        "    attention_probs_dropout_prob: 0.0\n"
        "dataset_config:\n"
        f"  {mmf_world.DATASET}:\n"
        "    shuffle: false\n"
    )
    return path


def train(world, mode, processes):
    """Train VisualBERT in `mode` as `processes` processes; returns (log, save dir)."""
    save_dir = world.root / f"save-{mode}-{processes}"
    cmd = [
        c
        for c in mmf_world.run_command(
            world, "visual_bert", mode, max_updates=UPDATES, batch_size=4
        )
        if not c.startswith(("config=", "env.save_dir="))
    ]
    cmd += [
        f"config={no_dropout_config(world, 'visual_bert')}",
        f"env.save_dir={save_dir}",
        f"distributed.world_size={processes}",
    ]
    env = mmf_world.run_env(world)
    env["CUDA_VISIBLE_DEVICES"] = ""  # the CPU, even where there is a GPU
    log = world.root / f"{mode}-{processes}.log"
    with open(log, "wb") as out:
        proc = subprocess.run(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=HANG_TIMEOUT_S
        )
    text = log.read_text("utf-8", "replace")
    assert proc.returncode == 0, f"{processes} process(es), {mode}:\n{text[-6000:]}"
    return log, save_dir


def load_checkpoint(save_dir):
    import torch

    # The test's own file, written by MMF just now: its config objects need the full unpickler.
    return torch.load(str(save_dir / "current.ckpt"), map_location="cpu", weights_only=False)


def largest_difference(a, b):
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


@pytest.mark.parametrize("mode", ["fc", "pe"])
def test_two_processes_train_what_one_trains(world, mode):
    one_log, one_dir = train(world, mode, 1)
    two_log, two_dir = train(world, mode, 2)

    one, two = parse_file(one_log), parse_file(two_log)
    assert one["parameters"] == two["parameters"]
    losses = [[row["loss"] for row in log["train"]] for log in (one, two)]
    assert [len(x) for x in losses] == [UPDATES, UPDATES], losses
    for update, (a, b) in enumerate(zip(*losses), 1):
        assert abs(a - b) <= LOSS_TOLERANCE, f"update {update}: {a} (1 process) vs {b} (2)"

    a, b = load_checkpoint(one_dir), load_checkpoint(two_dir)
    assert a["num_updates"] == b["num_updates"] == UPDATES
    assert largest_difference(a["model"], b["model"]) < WEIGHT_TOLERANCE
    # The optimizer's moments hold every update's averaged gradient of every trained tensor:
    # equal moments mean equal gradients; non-zero ones, that gradients flowed at all.
    moments_a, moments_b = a["optimizer"]["state"], b["optimizer"]["state"]
    assert moments_a.keys() == moments_b.keys() and moments_a
    for key in moments_a:
        for name in ("exp_avg", "exp_avg_sq"):
            x, y = moments_a[key][name], moments_b[key][name]
            scale = max(x.abs().max().item(), 1e-12)
            assert (x - y).abs().max().item() <= 1e-4 * scale + 1e-12, (key, name)
    assert max(m["exp_avg"].abs().max().item() for m in moments_a.values()) > 0

    # One process wrote the checkpoints and rank 0's log (the other rank's log is its own).
    logs = sorted(p.name for p in (two_dir / "logs").iterdir())
    assert len(logs) == 2 and logs[1] == logs[0] + ".rank1", logs
