"""The exact mmf_run command lines of a run: training, testing its best checkpoint, and MMF's
per-example predictions of that checkpoint."""

from __future__ import annotations

import os
import shlex
import shutil
import sys

from ..data.paths import plugin_dir
from ..facts import settings as settings_mod
from ..facts.vocabulary import DATASETS, mode_overrides

ENV_MMF_RUN = "PEKIT_MMF_RUN"
# MMF stores git details of its own checkout in every checkpoint; GitPython raises on the
# detached HEAD of a checkout at the pinned commit. The run record keeps the commit instead.
NO_GIT_DETAILS = "checkpoint.save_git_details=False"


def mmf_run_command():
    """How to start MMF: $PEKIT_MMF_RUN, else `mmf_run` on PATH, else `python -m mmf_cli.run`."""
    override = os.environ.get(ENV_MMF_RUN)
    if override:
        return shlex.split(override)
    found = shutil.which("mmf_run")
    if found:
        return [found]
    return [sys.executable, "-m", "mmf_cli.run"]


def experiment_config(spec):
    """The MMF config of the spec's dataset and model: MMF's own project config for HMD (the
    ones the paper fine-tuned from), the kit's plugin's for MMH; an explicit one wins."""
    if spec.config:
        return spec.config
    dataset = DATASETS[spec.dataset]
    config = dataset.mmf_config(spec.model)
    return str(plugin_dir() / config) if dataset.configs_in_plugin else config


def dataset_overrides(spec):
    dataset = DATASETS[spec.dataset]
    facts, name = dataset.facts, dataset.mmf_name
    out = []
    if dataset.configs_in_plugin:
        out.append(f"env.user_dir={plugin_dir()}")
    val = facts.get("paper_val_split")
    if val and val != facts.get("mmf_default_val_split"):
        # The paper validated on dev_seen (500 items); MMF's default is dev_unseen.
        out.append(
            f"dataset_config.{name}.annotations.val[0]={name}/defaults/annotations/{val}.jsonl"
        )
    if spec.data_dir:
        out.append(f"env.data_dir={spec.data_dir}")
    return out


def _base(spec, run_type, save_dir):
    """What training and testing share: config, model, dataset, settings, mode, GPUs."""
    name = DATASETS[spec.dataset].mmf_name
    cmd = mmf_run_command() + [
        f"config={experiment_config(spec)}",
        f"model={spec.model}",
        f"datasets={name}",
        f"run_type={run_type}",
        f"env.save_dir={save_dir}",
        f"training.seed={spec.seed}",
    ]
    cmd += settings_mod.overrides(spec.settings, name, batch_size=spec.batch)
    cmd += mode_overrides(spec.model, spec.mode, spec.size)
    return cmd + dataset_overrides(spec)


def train(spec, resume=False):
    """The mmf_run command line training `spec` (resuming from its last checkpoint)."""
    cmd = _base(spec, "train_val", spec.save_dir)
    # Every checkpoint_interval MMF also keeps models/model_<update>.ckpt (~450 MB each);
    # best.ckpt and current.ckpt are all that resuming and testing need.
    cmd.append("checkpoint.max_to_keep=1")
    # MMF's default world size is every visible GPU; with N > 1 it spawns one process per GPU
    # itself (mmf_cli/run.py). batch_size stays the global batch.
    cmd.append(f"distributed.world_size={spec.world_size}")
    cmd.append(NO_GIT_DETAILS)
    if resume:
        cmd.append("checkpoint.resume=True")
    cmd += list(spec.extra)
    if spec.nodes > 1:
        cmd = srun(spec.nodes, cmd)
    return cmd


# One task per node, and every node's task stopped when one fails (a rank that died leaves the
# others waiting in a collective forever).
SRUN = ("srun", "--ntasks-per-node=1", "--kill-on-bad-exit=1")


def srun(nodes, cmd, port=None):
    """`cmd` started by SLURM's srun on `nodes` nodes of the allocation it runs in. MMF a34bc2d
    starts itself from SLURM's variables when distributed.port is set (infer_init_method in
    mmf/utils/distributed.py): the first node of the step's node list (`scontrol show
    hostnames`) is the rendezvous at that port, each node's rank is its SLURM_NODEID times its
    GPUs, and each node spawns one process per visible GPU."""
    if not any(item.startswith("distributed.port=") for item in cmd):  # the user's own wins
        cmd = [*cmd, f"distributed.port={free_port() if port is None else port}"]
    return [SRUN[0], f"--nodes={nodes}", *SRUN[1:], *cmd]


def one_node(cmd):
    """A recorded training command as one process on this node runs it: srun's part (its name
    and options) and the rendezvous port left out."""
    cmd = list(cmd)
    if cmd and cmd[0] == SRUN[0]:
        cmd = cmd[1:]
        while cmd and str(cmd[0]).startswith("--"):
            cmd = cmd[1:]
    return [c for c in cmd if not str(c).startswith("distributed.port=")]


def free_port():
    """A TCP port free on this host now: the batch script of an allocation runs on its first
    node, rank 0's node, which listens on it."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _test_annotations(spec, split):
    """The override naming test split `split`'s annotations, where MMF's config names one test
    split for the dataset (HMD's test_seen and test_unseen); none otherwise."""
    dataset = DATASETS[spec.dataset]
    if not dataset.test_annotations_per_split:
        return []
    name = dataset.mmf_name
    return [f"dataset_config.{name}.annotations.test[0]={name}/defaults/annotations/{split}.jsonl"]


def checkpoint_options(path):
    """MMF options that score with the whole checkpoint at `path`."""
    # resume_pretrained would load only the pre-trained BERT part of the checkpoint.
    return [f"checkpoint.resume_file={path}", "checkpoint.resume_pretrained=False"]


def _best_checkpoint(spec):
    return checkpoint_options(spec.save_dir / "best.ckpt")


def prediction_options(report_dir):
    """MMF options under which its evaluation writes each example's prediction (one CSV
    `id,proba,label` per split into `report_dir`) instead of scoring the split."""
    return [
        "evaluation.predict=true",
        "evaluation.predict_file_format=csv",
        f"env.report_dir={report_dir}",
        # One process: with N, MMF's DistributedSampler repeats examples so that every process
        # gets as many, and the file would hold those ids twice.
        "distributed.world_size=1",
    ]


def test(spec, split):
    """The mmf_run command line scoring the best checkpoint of `spec` on test split `split`."""
    cmd = _base(spec, "test", spec.dir / "test" / split)
    cmd += _test_annotations(spec, split)
    cmd += _best_checkpoint(spec)
    cmd += [NO_GIT_DETAILS]
    # One process, whatever the run trained on: with N, MMF scores each process's share of the
    # split (its DistributedSampler repeats examples so that the shares are equal) and averages
    # the N scores, which for roc_auc is not the split's score.
    return cmd + list(spec.extra) + ["distributed.world_size=1"]


def predict(spec, save_dir, report_dir, val=True, test_split=None):
    """The mmf_run command line in which MMF's own evaluation writes the per-example predictions
    of the best checkpoint of `spec`: on its validation split (`val`) and on test split
    `test_split` (either may be left out; run_type val_test does both in one process), one CSV
    `id,proba,label` per split into `report_dir`."""
    run_type = "_".join(t for t, on in (("val", val), ("test", test_split)) if on)
    if not run_type:
        raise ValueError("predict: neither the validation split nor a test split")
    cmd = _base(spec, run_type, save_dir)
    if test_split:
        cmd += _test_annotations(spec, test_split)
    cmd += _best_checkpoint(spec) + prediction_options(report_dir) + [NO_GIT_DETAILS]
    return cmd + list(spec.extra)


def quoted(cmd):
    return " ".join(shlex.quote(str(c)) for c in cmd)
