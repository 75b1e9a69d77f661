"""The devices a run trains on: the first GPUs of those visible (CUDA_VISIBLE_DEVICES), or none.

With PEKIT_DISTRIBUTED_CPU=1 the runner shows MMF no GPU, and `--gpus N` runs MMF's distributed
training as N processes on the CPU with gloo (the compat patches of mmf_cli/run.py,
mmf/utils/distributed.py and mmf/trainers/core/device.py): how the kit's tests train on several
processes without a GPU. Far too slow for the paper's runs.
"""

from __future__ import annotations

import os
import subprocess

from ..core.errors import UsageError

ENV_CPU = "PEKIT_DISTRIBUTED_CPU"


def distributed_cpu(environ=None):
    """Whether the runner trains on the CPU whatever GPUs there are ($PEKIT_DISTRIBUTED_CPU=1)."""
    return (os.environ if environ is None else environ).get(ENV_CPU) == "1"


def device_kind(devices, available=None):
    """What a process started with CUDA_VISIBLE_DEVICES=`devices` trains on: MMF falls back to
    the CPU when no GPU is visible, or when the machine has none (`available`: its count,
    machine_gpus() by default)."""
    if not devices:
        return "cpu"
    return "cuda" if (machine_gpus() if available is None else available) else "cpu"


def machine_gpus():
    """How many NVIDIA GPUs this machine shows, without importing torch: the driver's entries
    in /proc (a container sees those of its GPUs), else `nvidia-smi -L`; 0 without a driver."""
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        pass
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return 0
    if out.returncode != 0:
        return 0
    lines = out.stdout.decode(errors="replace").splitlines()
    return sum(1 for line in lines if line.startswith("GPU "))


def visible_devices(gpus, environ=None, available=None, nodes=1):
    """CUDA_VISIBLE_DEVICES for a run on `gpus` GPUs: the first `gpus` of those visible.

    With world_size 1 MMF wraps the model in DataParallel over every visible GPU (its
    parallelize_model), which splits the batch and, in its replica threads, drops a bf16
    autocast to fp16 without loss scaling. A run on N GPUs therefore sees exactly N. More than
    one GPU where there are fewer is refused here, before MMF starts (`available`: the
    machine's count, machine_gpus() by default). With PEKIT_DISTRIBUTED_CPU=1 none is visible.
    """
    environ = os.environ if environ is None else environ
    if distributed_cpu(environ):
        if gpus > 1 and nodes > 1:
            raise UsageError(
                f"--gpus {gpus} --nodes {nodes} with {ENV_CPU}=1: without a GPU MMF starts one "
                "process per node; use --gpus 1"
            )
        return ""
    current = environ.get("CUDA_VISIBLE_DEVICES")
    if current is None:
        if gpus > 1:
            have = machine_gpus() if available is None else available
            if have < gpus:
                raise UsageError(
                    f"--gpus {gpus}, but this machine has {have} NVIDIA GPUs "
                    f"({ENV_CPU}=1 runs the processes on the CPU, for tests)"
                )
        return ",".join(str(i) for i in range(gpus))
    devices = [d.strip() for d in current.split(",") if d.strip()]
    # None visible with GPUS=1 is a CPU run (MMF falls back to the CPU); more GPUs than visible
    # would fail inside MMF's spawned processes.
    if len(devices) < gpus and (devices or gpus > 1):
        raise UsageError(
            f"GPUS={gpus}, but CUDA_VISIBLE_DEVICES={current} makes only {len(devices)} visible"
        )
    return ",".join(devices[:gpus])
