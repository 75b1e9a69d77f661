"""Training updates of the full-size models, as MMF's training loop performs them.

One update is what MMFTrainer does per batch (mmf/trainers/core/training_loop.py): zero_grad,
to_device, forward under the settings' autocast, Report, extract_loss, scaler.scale(loss)
.backward(), scaler.step(optimizer), scaler.update(), then the warmup_linear scheduler's step.
The optimizer and scheduler are MMF's own, built from the hateful_memes project config with the
paper's settings. Gradient clipping is off in those configs and so is not done.
"""

from __future__ import annotations

import contextlib
import gc
import time

from ..facts import settings as settings_mod
from ..facts.vocabulary import DATASETS, HMD

# How each of the training settings computes on a device: mixed precision, TF32, pinned batches.
PAPER = settings_mod.PAPER.name
FAST = settings_mod.FAST.name


def step_settings(name, device):
    """{precision, tf32, pin_memory, cudnn_benchmark, lmdb_readahead, note} of settings `name` on
    `device`.

    `fast` on a GPU resolves as `pekit run` would (bf16 where supported, else fp16). On CPU MMF
    refuses fp16; the kit's `fast` patches run bf16 autocast there, which is what is measured.
    """
    if name == PAPER:
        return {
            "precision": "fp32",
            "tf32": False,
            "pin_memory": False,
            "cudnn_benchmark": False,
            "lmdb_readahead": False,
            "note": "fp32",
        }
    if name != FAST:
        raise ValueError(f"unknown settings {name!r}")
    if device.type == "cuda":
        resolved = settings_mod.resolve(settings_mod.get(FAST))
        precision = "bf16" if resolved.get("bf16") else ("fp16" if resolved["fp16"] else "fp32")
        tf32 = bool(resolved.get("tf32"))
        return {
            "precision": precision,
            "tf32": tf32,
            "pin_memory": True,
            "cudnn_benchmark": True,
            "lmdb_readahead": bool(resolved.get("lmdb_readahead")),
            "note": f"{precision}" + (", TF32" if tf32 else ""),
        }
    return {
        "precision": "bf16",
        "tf32": False,
        "pin_memory": False,
        "cudnn_benchmark": False,
        "lmdb_readahead": settings_mod.mmf_has_fast_keys(),
        "note": "bf16 autocast on CPU",
    }


def autocast(device, precision):
    import torch

    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.cuda.amp.autocast()
    return contextlib.nullcontext()


def build(model, mode, workdir):
    """(model on CPU, its MMF config) for `model` in `mode`, full size, random init, offline."""
    from ..facts import models

    opts = settings_mod.overrides(settings_mod.get(PAPER), DATASETS[HMD].mmf_name)
    net = models.build_mmf_model(model, mode, workdir, extra_opts=opts)
    config = models.mmf_configuration(model, mode, workdir, extra_opts=opts).get_config()
    return net, config


class Trainer:
    """MMF's update on `device` for one model and one of the training settings."""

    def __init__(self, net, config, device, how):
        import torch
        from mmf.utils.build import build_optimizer, build_scheduler

        self.net, self.device, self.how = net, device, how
        self.optimizer = build_optimizer(net, config)
        self.scheduler = build_scheduler(self.optimizer, config)
        # MMF: torch.cuda.amp.GradScaler(enabled=training.fp16), a no-op unless fp16.
        self.scaler = torch.cuda.amp.GradScaler(enabled=how["precision"] == "fp16")

    def update(self, batch):
        from mmf.common.report import Report
        from mmf.common.sample import to_device
        from mmf.utils.general import extract_loss

        self.optimizer.zero_grad()
        # A shallow copy: the models write into the SampleList they get, as they do to each
        # fresh batch in MMF.
        prepared = to_device(batch.copy(), self.device)
        with autocast(self.device, self.how["precision"]):
            report = Report(prepared, self.net(prepared))
        loss = extract_loss(report, 1)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return float(loss.detach())

    def close(self):
        self.optimizer.zero_grad(set_to_none=True)
        del self.optimizer, self.scheduler


@contextlib.contextmanager
def backend_flags(how):
    """TF32 and cudnn benchmark as `how` says, restored afterwards."""
    import torch

    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
    )
    torch.backends.cuda.matmul.allow_tf32 = how["tf32"]
    torch.backends.cudnn.allow_tf32 = how["tf32"] or saved[1]
    torch.backends.cudnn.benchmark = how["cudnn_benchmark"]
    try:
        yield
    finally:
        (
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.benchmark,
        ) = saved


def sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_updates(trainer, batches, warmup, device):
    """Seconds per update over the batches after `warmup` untimed ones, and every loss."""
    losses = []
    for batch in batches[:warmup]:
        losses.append(trainer.update(batch))
    sync(device)
    start = time.perf_counter()
    for batch in batches[warmup:]:
        losses.append(trainer.update(batch))
    sync(device)
    timed = len(batches) - warmup
    return (time.perf_counter() - start) / max(timed, 1), losses


def measure(net, config, device, settings_name, batches, warmup):
    """One model and settings: updates/s, samples/s, peak memory, over resident batches."""
    from . import memory

    how = step_settings(settings_name, device)
    if how["pin_memory"]:
        batches = [b.pin_memory() for b in batches]
    memory.reset_peak(device)
    with backend_flags(how):
        trainer = Trainer(net, config, device, how)
        try:
            seconds, losses = time_updates(trainer, batches, warmup, device)
        finally:
            trainer.close()
    peak = memory.peak_mb(device)
    release(device)
    batch_size = batches[0].get_batch_size()
    return {
        "settings": settings_name,
        "precision": how["precision"],
        "tf32": how["tf32"],
        "note": how["note"],
        "updates_timed": len(batches) - warmup,
        "seconds_per_update": seconds,
        "updates_per_s": 1.0 / seconds,
        "samples_per_s": batch_size / seconds,
        "peak_memory_mb": peak,
        "finite_losses": all(x == x and abs(x) != float("inf") for x in losses),
    }


def release(device):
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
