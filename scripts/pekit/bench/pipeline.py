"""Loading and training together: updates/s of a run on an HMD- or MMH-shaped feature store.

Per dataset and settings, the feature store and loader are those the settings give MMF:
  paper  HMD: the zoo's LMDB, num_workers 0     MMH: the .npy folder, num_workers 0
  fast   both: an LMDB read with read-ahead, min(4, cores) workers, pinned memory on a GPU
and each batch from the DataLoader goes through MMF's update (bench.train.Trainer). An HMD run
reads its store from memory, an MMH run from disk (page_cache); with the default sizes a run
reads each item once. With
workers, loading overlaps the updates; with none, each update waits for its batch, as in the
paper's runs.
"""

from __future__ import annotations

import time

from ..facts import settings as settings_mod
from ..facts.vocabulary import DATASETS
from . import loader as loader_mod
from . import train


def page_cache(dataset):
    """Where a run's features come from over its 22,000 updates: memory (warm) or disk (cold)."""
    return "warm" if DATASETS[dataset].features_cached else "cold"


def plan(dataset, settings_name, device):
    """(feature format, num_workers, pin_memory) of `settings_name` for `dataset`."""
    if settings_name == train.PAPER:
        return DATASETS[dataset].features_format, 0, False
    workers = settings_mod.auto_workers()
    return "lmdb", workers, device.type == "cuda"


def _batches(loader):
    while True:
        yield from loader


def measure(
    net, config, device, model, dataset, settings_name, stores, batch_size, warmup, updates
):
    fmt, workers, pin = plan(dataset, settings_name, device)
    path, names = stores[fmt]
    how = train.step_settings(settings_name, device)
    cache = loader_mod.set_cache(path, fmt, names, page_cache(dataset))
    data = loader_mod.StoreDataset(path, names, model=model)
    loader = loader_mod.data_loader(data, batch_size, workers, pin)
    # Workers fill a buffer of prefetch_factor (torch's default 2, which MMF keeps) batches each
    # before the first update; timing from a full buffer would flatter a loader-bound run.
    buffered = 2 * workers
    with train.backend_flags(how), loader_mod.lmdb_readahead(how["lmdb_readahead"]):
        trainer = train.Trainer(net, config, device, how)
        batches = _batches(loader)
        try:
            for _ in range(warmup + buffered):
                trainer.update(next(batches))
            train.sync(device)
            start = time.perf_counter()
            for _ in range(updates):
                trainer.update(next(batches))
            train.sync(device)
            seconds = (time.perf_counter() - start) / max(updates, 1)
        finally:
            batches.close()
            trainer.close()
            del loader
    train.release(device)
    return {
        "dataset": dataset,
        "settings": settings_name,
        "features": fmt,
        "num_workers": workers,
        "pin_memory": pin,
        "page_cache": cache,
        "readahead": how["lmdb_readahead"] if fmt == "lmdb" else None,
        "precision": how["precision"],
        "tf32": how["tf32"],
        "warmup": warmup + buffered,
        "updates_timed": updates,
        "seconds_per_update": seconds,
        "updates_per_s": 1.0 / seconds,
        "samples_per_s": batch_size / seconds,
    }
