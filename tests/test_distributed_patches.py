"""The compat patches that let MMF's distributed training run on the CPU change nothing where CUDA
is available: with torch's CUDA answers stood in, the patched mmf_cli/run.py,
mmf/utils/distributed.py and mmf/trainers/core/device.py take upstream's CUDA path (NCCL, a
`.cuda()` all-reduce, `cuda:<rank>`, DDP with device ids, the device-count assertion); without
CUDA they take the CPU's (gloo, DDP without devices). The CPU path is trained for real in
test_distributed_equivalence.py and test_distributed_runs.py.
"""

from __future__ import annotations

import builtins
import warnings

import pytest

pytestmark = [pytest.mark.mmf]


@pytest.fixture
def torch(mmf_installed):
    import torch

    return torch


def with_cuda(monkeypatch, torch, available, count=1):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count if available else 0)
    calls = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", d)))
    return calls


def trainer(rank=1):
    from mmf.trainers.core.device import TrainerDeviceMixin
    from omegaconf import OmegaConf

    class Trainer(TrainerDeviceMixin):
        pass

    t = Trainer()
    t.config = OmegaConf.create(
        {
            "device_id": rank,
            "training": {"device": "cuda", "find_unused_parameters": False},
            "distributed": {"init_method": "tcp://localhost:1", "rank": rank},
        }
    )
    return t


@pytest.mark.parametrize("cuda", [True, False])
def test_the_trainer_takes_cuda_rank_or_the_cpu(monkeypatch, torch, cuda):
    calls = with_cuda(monkeypatch, torch, cuda, count=2)
    built = []

    class DDP:
        def __init__(self, model, **kwargs):
            built.append(kwargs)

    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", DDP)
    t = trainer(rank=1)
    t.configure_device()
    assert t.distributed is True
    t.model, t.optimizer = torch.nn.Linear(2, 2), None
    t.parallelize_model()
    if cuda:
        assert t.device == torch.device("cuda", 1) and calls == [("set_device", 1)]
        assert built == [{"device_ids": [1], "output_device": 1, "find_unused_parameters": False}]
    else:
        assert t.device == torch.device("cpu") and calls == []
        assert built == [
            {"device_ids": None, "output_device": None, "find_unused_parameters": False}
        ]


@pytest.mark.parametrize("cuda, backend", [(True, "nccl"), (False, "gloo")])
def test_distributed_init_keeps_nccl_with_cuda_and_takes_gloo_without(
    monkeypatch, torch, cuda, backend
):
    from mmf.utils import distributed
    from omegaconf import OmegaConf

    with_cuda(monkeypatch, torch, cuda)
    seen = {}
    dist = distributed.dist
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda **kw: seen.update(init=kw))
    monkeypatch.setattr(dist, "all_reduce", lambda t: seen.update(reduced=t))
    monkeypatch.setattr(dist, "get_rank", lambda: 0)
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: "on cuda")
    monkeypatch.setenv("MASTER_ADDR", "localhost")
    monkeypatch.setenv("MASTER_PORT", "1")
    # suppress_output replaces both for the process: put them back after the test.
    monkeypatch.setattr(builtins, "print", builtins.print)
    monkeypatch.setattr(warnings, "warn", warnings.warn)
    config = OmegaConf.create(
        {
            "distributed": {
                "world_size": 2,
                "rank": 0,
                "backend": "nccl",
                "init_method": "tcp://localhost:1",
            },
            "training": {},
        }
    )
    assert distributed.distributed_init(config) == 0
    assert seen["init"]["backend"] == backend
    if cuda:
        assert seen["reduced"] == "on cuda"
    else:
        assert isinstance(seen["reduced"], torch.Tensor) and seen["reduced"].shape == (1,)


def test_a_torch_without_nccl_still_reads_the_gloo_groups_rank(monkeypatch, torch):
    from mmf.utils import distributed

    dist = distributed.dist
    monkeypatch.setattr(dist, "is_nccl_available", lambda: False)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    assert distributed.get_rank() == 1 and distributed.get_world_size() == 2


@pytest.mark.parametrize("cuda", [True, False])
def test_mmf_run_checks_the_gpus_only_where_there_are_any(monkeypatch, torch, cuda):
    from mmf_cli import run

    with_cuda(monkeypatch, torch, cuda, count=1)
    spawned = []
    monkeypatch.setattr(
        torch.multiprocessing, "spawn", lambda fn, args, nprocs: spawned.append(nprocs)
    )
    opts = [
        "config=projects/visual_bert/configs/hateful_memes/defaults.yaml",
        "model=visual_bert",
        "datasets=hateful_memes",
        "distributed.world_size=2",
    ]
    if cuda:  # upstream's assertion: two processes need two GPUs
        with pytest.raises(AssertionError):
            run.run(opts)
        assert spawned == []
    else:
        run.run(opts)
        assert spawned == [2]
