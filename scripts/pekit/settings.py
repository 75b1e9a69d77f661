"""Training settings profiles: how to train, independent of the software stack (PEKIT_PROFILE).

`paper` is exactly what the paper ran. `smoke` is a few updates on CPU for the pipeline test.
`fast` is the paper's training made faster on a GPU without changing what is trained (see FAST).
"""

from __future__ import annotations

import functools
import os
import re

from .core.errors import PekitError, UsageError

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

# Two validations and checkpoints, so that a run stopped after the first resumes from it.
SMOKE = dict(
    PAPER,
    batch_size=4,
    max_updates=4,
    warmup_steps=2,
    evaluation_interval=2,
    checkpoint_interval=2,
    log_interval=1,
)

# The paper's updates, batch, optimiser, schedule and evaluation, with what makes each update
# cheaper on a GPU: mixed precision ("auto": bf16 where the GPU has it and MMF carries the kit's
# `fast` patches, else fp16 through MMF's own training.fp16 with its loss scaler), TF32 matmuls
# (Ampere and newer; `fast` patches), DataLoader workers with pinned memory (persistent: MMF
# a34bc2d keeps workers alive whenever there are any), cudnn benchmark, and region features
# read from one LMDB (HMD's zoo features are an LMDB already; MMH's are packed by
# `pekit features lmdb`) with read-ahead (`fast` patches: MMF's reader turns it off, which
# makes a store larger than memory slow to read). Workers, pinned memory and LMDB give the same
# batches as the paper's settings; mixed precision changes rounding only
# (tests/test_fast_settings.py).
# MMF a34bc2d builds val/test loaders with the training batch size (and sizes its loaders by it),
# so a larger evaluation batch would need another MMF change; it is not part of `fast`.
FAST = dict(
    PAPER,
    num_workers="auto",  # min(4, CPU cores): MMF's default 4
    pin_memory=True,
    persistent_workers=True,
    cudnn_benchmark=True,
    precision="auto",
    tf32=True,
    lmdb_features=True,
    lmdb_readahead=True,
)

PROFILES = {"paper": PAPER, "smoke": SMOKE, "fast": FAST}

# MMF dataset -> the LMDB its features are read from under `fast`, relative to MMF's
# dataset_config data_dir (pekit.features.lmdb.default_lmdb_path of the features folder).
LMDB_FEATURES = {"mmh": "mmh/defaults/features.lmdb"}
MMF_SPLITS = ("train", "val", "test")

# Forces the mixed precision of `fast` (bf16 or fp16) when the runs go to another machine than
# the one writing their command lines.
ENV_PRECISION = "PEKIT_FAST_PRECISION"
# The training.* switches the kit's `fast` MMF patches add (mmf/configs/defaults.yaml).
FAST_KEYS = ("bf16", "tf32", "lmdb_readahead")
DEFAULT = "paper"


def names():
    return sorted(PROFILES)


def get(name):
    """The settings dict of profile `name`; a UsageError for an unknown or undefined one."""
    if name not in PROFILES:
        raise UsageError(
            f"unknown training settings '{name}' (expected one of {', '.join(names())})"
        )
    return dict(PROFILES[name])


def overrides(settings, mmf_dataset, batch_size=None):
    """MMF key=value overrides for `settings`; `batch_size` replaces the profile's batch size.

    The scheduler's horizon is set explicitly so it always follows max_updates, whatever the
    project config interpolates.
    """
    batch = settings["batch_size"] if batch_size is None else int(batch_size)
    if batch < 1:
        raise UsageError(f"batch size must be at least 1, got {batch}")
    s = resolve(settings)
    out = [
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
    for key in ("pin_memory", "persistent_workers", "cudnn_benchmark", *FAST_KEYS):
        if key in s:
            out.append(f"training.{key}={s[key]}")
    if s.get("lmdb_features") and mmf_dataset in LMDB_FEATURES:
        path = LMDB_FEATURES[mmf_dataset]
        out += [f"dataset_config.{mmf_dataset}.features.{split}[0]={path}" for split in MMF_SPLITS]
    return out


def resolve(settings):
    """`settings` with "auto" values decided for this machine (a UsageError where `fast` cannot
    apply); settings without them are returned unchanged."""
    s = dict(settings)
    if s.get("num_workers") == "auto":
        s["num_workers"] = min(4, os.cpu_count() or 1)
    precision = s.pop("precision", None)
    if precision is None:
        return s
    if precision == "auto":
        precision = auto_precision()
    if precision not in ("bf16", "fp16"):
        raise UsageError(f"mixed precision must be bf16 or fp16, got '{precision}'")
    fast_keys = mmf_has_fast_keys()
    if precision == "bf16" and not fast_keys:
        raise UsageError(
            "bf16 training needs MMF with the kit's `fast` patches (training.bf16); "
            f"apply them with `pekit patch apply`, or set {ENV_PRECISION}=fp16"
        )
    s["fp16"] = precision == "fp16"
    if fast_keys:
        s["bf16"] = precision == "bf16"
    else:
        # Without the `fast` patches MMF has no tf32 switch (torch 1.9 uses TF32 by default)
        # and no LMDB read-ahead switch.
        s.pop("tf32", None)
        s.pop("lmdb_readahead", None)
    return s


def auto_precision():
    """bf16 where the GPU supports it and MMF can use it, else fp16; refused without a GPU."""
    forced = os.environ.get(ENV_PRECISION)
    if forced:
        if forced not in ("bf16", "fp16"):
            raise UsageError(f"{ENV_PRECISION} must be bf16 or fp16, got '{forced}'")
        return forced
    gpu, bf16 = _cuda_capabilities()
    if not gpu:
        raise UsageError(
            "SETTINGS=fast trains in mixed precision, which needs a CUDA GPU (MMF asserts "
            "'fp16 cannot be used on cpu'); use SETTINGS=paper here, or set "
            f"{ENV_PRECISION}=bf16|fp16 when the runs go to a GPU machine"
        )
    return "bf16" if bf16 and mmf_has_fast_keys() else "fp16"


@functools.lru_cache(maxsize=None)
def _cuda_capabilities():
    """(a CUDA GPU is visible, it computes in bf16 natively), from the torch installed here."""
    try:
        import torch
    except ImportError as e:
        raise PekitError(
            f"cannot tell which mixed precision the GPU supports (torch: {e}); set "
            f"{ENV_PRECISION}=bf16|fp16"
        ) from e
    if not torch.cuda.is_available():
        return False, False
    # bf16 tensor cores start with Ampere (compute capability 8.0). torch.cuda.is_bf16_supported()
    # is no guide: by default it also counts emulated bf16, true on a V100 or T4, where fp16
    # with MMF's loss scaler is the fast choice.
    return True, bool(torch.version.hip) or torch.cuda.get_device_capability(0)[0] >= 8


@functools.lru_cache(maxsize=None)
def mmf_has_fast_keys():
    """Whether the importable MMF declares the `fast` patches' training.bf16, .tf32 and
    .lmdb_readahead."""
    import importlib.util

    spec = importlib.util.find_spec("mmf")
    if spec is None or not spec.submodule_search_locations:
        return False
    defaults = os.path.join(list(spec.submodule_search_locations)[0], "configs", "defaults.yaml")
    try:
        with open(defaults, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return False
    return all(re.search(rf"^\s+{key}:", text, re.M) for key in FAST_KEYS)


def check_data(settings, mmf_dataset, data_dir=None):
    """Refuse `settings` reading LMDB features that are not there (MMF would fail on first read)."""
    if not settings.get("lmdb_features") or mmf_dataset not in LMDB_FEATURES:
        return
    from .data.paths import mmf_data_dir

    path = mmf_data_dir(data_dir) / "datasets" / LMDB_FEATURES[mmf_dataset]
    if not path.exists():
        raise PekitError(
            f"{path} not found: SETTINGS=fast reads {mmf_dataset}'s features from an LMDB; "
            f"write it with `pekit features lmdb` (or use SETTINGS=paper)"
        )
