"""Training settings profiles: how to train, independent of the software stack (PEKIT_PROFILE).

`paper` is exactly what the paper ran. `smoke` is a few updates on CPU for the pipeline test.
`fast` belongs to the performance work and is not defined yet.
"""

from __future__ import annotations

from .errors import UsageError

# The paper: batch 16, 22,000 updates, AdamW lr 5e-5 eps 1e-8, warmup_linear with 2,000 warm-up
# steps, validation every 1,000 updates, best checkpoint by validation roc_auc, no loader workers,
# fp32. W&B was on in the paper; it is off here (never required).
PAPER = {
    "batch_size": 16,
    "max_updates": 22000,
    "lr": 5e-5,
    "eps": 1e-8,
    "warmup_steps": 2000,
    "evaluation_interval": 1000,
    "checkpoint_interval": 1000,
    "log_interval": 100,
    "num_workers": 0,
    "fp16": False,
}

SMOKE = dict(
    PAPER,
    batch_size=4,
    max_updates=6,
    warmup_steps=2,
    evaluation_interval=2,
    checkpoint_interval=2,
    log_interval=1,
)

PROFILES = {"paper": PAPER, "smoke": SMOKE, "fast": None}
DEFAULT = "paper"


def names():
    return sorted(PROFILES)


def get(name):
    """The settings dict of profile `name`; a UsageError for an unknown or undefined one."""
    if name not in PROFILES:
        raise UsageError(
            f"unknown training settings '{name}' (expected one of {', '.join(names())})"
        )
    settings = PROFILES[name]
    if settings is None:
        raise UsageError(
            f"training settings '{name}' are not defined yet in this kit version; "
            f"use SETTINGS=paper (what the paper ran)"
        )
    return dict(settings)


def overrides(settings, mmf_dataset, batch_size=None):
    """MMF key=value overrides for `settings`; `batch_size` replaces the profile's batch size.

    The scheduler's horizon is set explicitly so it always follows max_updates, whatever the
    project config interpolates.
    """
    batch = settings["batch_size"] if batch_size is None else int(batch_size)
    if batch < 1:
        raise UsageError(f"batch size must be at least 1, got {batch}")
    s = settings
    return [
        f"training.batch_size={batch}",
        f"training.max_updates={s['max_updates']}",
        "training.max_epochs=None",
        "optimizer.type=adam_w",
        f"optimizer.params.lr={s['lr']}",
        f"optimizer.params.eps={s['eps']}",
        "scheduler.type=warmup_linear",
        f"scheduler.params.num_warmup_steps={s['warmup_steps']}",
        f"scheduler.params.num_training_steps={s['max_updates']}",
        "training.lr_scheduler=True",
        f"training.evaluation_interval={s['evaluation_interval']}",
        f"training.checkpoint_interval={s['checkpoint_interval']}",
        f"training.log_interval={s['log_interval']}",
        f"training.early_stop.criteria={mmf_dataset}/roc_auc",
        "training.early_stop.minimize=False",
        # Early stopping only picks the best checkpoint; the paper trained all updates.
        "training.early_stop.enabled=False",
        f"training.num_workers={s['num_workers']}",
        f"training.fp16={s['fp16']}",
        "training.wandb.enabled=False",
    ]
