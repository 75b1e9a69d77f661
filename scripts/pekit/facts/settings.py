"""Training settings: how to train, independent of the software stack (the image profile).

`paper` is exactly what the paper ran. `smoke` is a few updates on CPU for the pipeline test.
`fast` is the paper's training made faster on a GPU without changing what is trained (see FAST).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from dataclasses import dataclass
from typing import Optional, Union

from ..core.errors import PekitError, UsageError


@dataclass(frozen=True)
class TrainingSettings:
    """The knobs of one way to train. None: leave MMF's default (the `fast` switches)."""

    name: str
    batch_size: int = 16  # global: split over the GPUs
    max_updates: int = 22000
    lr: float = 5e-5  # AdamW
    eps: float = 1e-8
    warmup_steps: int = 2000  # warmup_linear
    evaluation_interval: int = 1000
    checkpoint_interval: int = 1000
    log_interval: int = 100
    num_workers: Union[int, str] = 0  # "auto": min(4, CPU cores)
    fp16: bool = False
    precision: Optional[str] = None  # mixed precision: "auto", "bf16" or "fp16"; None: fp32
    pin_memory: Optional[bool] = None
    persistent_workers: Optional[bool] = None
    cudnn_benchmark: Optional[bool] = None
    tf32: Optional[bool] = None  # the `fast` patches' switches
    lmdb_readahead: Optional[bool] = None
    lmdb_features: bool = False  # read MMH's region features from one LMDB

    def __post_init__(self):
        for field in (
            "batch_size",
            "max_updates",
            "warmup_steps",
            "evaluation_interval",
            "checkpoint_interval",
            "log_interval",
        ):
            value = getattr(self, field)
            if type(value) is not int or value < 1:
                raise UsageError(f"settings {self.name}: {field} is {value!r}; expected 1 or more")
        if self.num_workers != "auto" and (
            type(self.num_workers) is not int or self.num_workers < 0
        ):
            raise UsageError(f"settings {self.name}: num_workers is {self.num_workers!r}")
        if self.precision not in (None, "auto", "bf16", "fp16"):
            raise UsageError(f"settings {self.name}: precision is {self.precision!r}")

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise UsageError(f"training settings: unknown keys {sorted(unknown)}")
        return cls(**data)


# The paper: batch 16, 22,000 updates, AdamW lr 5e-5 eps 1e-8, warmup_linear with 2,000 warm-up
# steps, validation every 1,000 updates, best checkpoint by validation roc_auc, no loader workers,
# fp32. W&B was on in the paper; it is off here (never required).
PAPER = TrainingSettings("paper")

# Two validations and checkpoints, so that a run stopped after the first resumes from it.
SMOKE = dataclasses.replace(
    PAPER,
    name="smoke",
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
FAST = dataclasses.replace(
    PAPER,
    name="fast",
    num_workers="auto",
    pin_memory=True,
    persistent_workers=True,
    cudnn_benchmark=True,
    precision="auto",
    tf32=True,
    lmdb_features=True,
    lmdb_readahead=True,
)

SETTINGS = {s.name: s for s in (PAPER, FAST, SMOKE)}

# MMF dataset -> the LMDB its features are read from under `fast`, relative to MMF's
# dataset_config data_dir (pekit.features.lmdb.default_lmdb_path of the features folder).
LMDB_FEATURES = {"mmh": "mmh/defaults/features.lmdb"}
MMF_SPLITS = ("train", "val", "test")

# Forces the mixed precision of `fast` (bf16 or fp16) when the runs go to another machine than
# the one writing their command lines.
ENV_PRECISION = "PEKIT_FAST_PRECISION"
# The training.* switches the kit's `fast` MMF patches add (mmf/configs/defaults.yaml).
FAST_KEYS = ("bf16", "tf32", "lmdb_readahead")
DEFAULT = PAPER.name  # the settings a run trains with unless told otherwise


def names():
    return sorted(SETTINGS)


def get(name):
    """The settings called `name`; a UsageError for an unknown one."""
    if name not in SETTINGS:
        raise UsageError(
            f"unknown training settings '{name}' (expected one of {', '.join(names())})"
        )
    return SETTINGS[name]


def auto_workers():
    """DataLoader workers for num_workers="auto": MMF's default 4, at most the CPU cores."""
    return min(4, os.cpu_count() or 1)


def overrides(settings, mmf_dataset, batch_size=None):
    """MMF key=value overrides for `settings`; `batch_size` replaces the profile's batch size.

    The scheduler's horizon is set explicitly so it always follows max_updates, whatever the
    project config interpolates.
    """
    batch = settings.batch_size if batch_size is None else int(batch_size)
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
    """The switches of `settings` as a dict, "auto" values decided for this machine (a
    UsageError where `fast` cannot apply) and MMF's defaults (None) left out."""
    s = {k: v for k, v in settings.to_dict().items() if v is not None and k != "name"}
    if s.get("num_workers") == "auto":
        s["num_workers"] = auto_workers()
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
    return True, native_bf16(torch.cuda.get_device_capability(0), hip=torch.version.hip)


def native_bf16(capability, hip=False):
    """Whether a GPU of compute `capability` (major, minor) computes in bf16 natively: from
    Ampere (8.0) on, and every GPU of a ROCm build of torch (`hip`: torch.version.hip)."""
    # torch.cuda.is_bf16_supported() is no guide: by default it also counts emulated bf16, true
    # on a V100 or T4, where fp16 with MMF's loss scaler is the fast choice.
    return bool(hip) or tuple(capability)[0] >= 8


@functools.lru_cache(maxsize=None)
def cpu_native_bf16():
    """Whether torch computes bf16 on this CPU in hardware (oneDNN's bf16 kernels: AVX-512 or
    newer on x86). Elsewhere (AVX2 only, say) bf16 autocast is emulated, and a BERT layer's
    update measured about 28 times slower than in float32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the op (or without oneDNN)
        return False


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
