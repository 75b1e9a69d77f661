"""Data loading alone: an MMH-shaped feature store read by MMF's own readers through a DataLoader.

The store holds `items` synthetic images of 100 boxes x 2048 with their _info.npy, written as
`pekit features mmh` writes them, plus the LMDB `pekit features lmdb` makes of it. Each sample is
read by MMF's FeaturesDatabase (the reader MMF's hateful_memes and mmh datasets use; an LMDB path
picks MMF's LMDBFeatureReader) and assembled and collated as MMF's dataset and BatchCollator do;
texts are pre-tokenised, so tokenisation (well under a millisecond a sample) is not counted.
Each pass is measured twice: cold, with the files it reads dropped from the page cache first
(`evict`), so that they come from disk as the paper's 150K-file MMH folder did, then warm, from
memory.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from ..facts.vocabulary import PAPER_MODEL
from .batch import (
    FEATURE_DIM,
    NUM_BOXES,
    SEQ_LEN,
    bbox_processor,
    make_sample,
    mmf_dataset,
    text_fields,
)


def write_store(folder, items, seed=0):
    """<folder>/features/<n>.npy (+ _info.npy) for n in 1..items; returns the folder and names."""
    import numpy as np

    from ..features.files import is_done, synthetic_features, write_features

    features = Path(folder) / "features"
    rng = np.random.default_rng(seed)
    names = [str(i + 1) for i in range(items)]
    for name in names:
        if not is_done(features, name):
            write_features(features, name, *synthetic_features(rng, NUM_BOXES, FEATURE_DIM))
    return features, names


def write_lmdb(features):
    from ..features import lmdb

    out = lmdb.default_lmdb_path(features)
    if not out.exists():
        lmdb.convert(features, out)
    return out


def store_files(path, fmt, names):
    """The files a pass over `names` of the store at `path` reads (an LMDB: all of its files)."""
    path = Path(path)
    if fmt == "lmdb":
        return [p for p in (sorted(path.iterdir()) if path.is_dir() else [path]) if p.is_file()]
    return [path / f"{name}{suffix}" for name in names for suffix in (".npy", "_info.npy")]


# File systems whose files live in memory: nothing to evict them to.
IN_MEMORY_FS = ("tmpfs", "ramfs")


def file_system(path):
    """The type of the file system holding `path` (Linux /proc/self/mountinfo), or None."""
    target = os.path.realpath(path)
    best, kind = "", None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                mount = fields[4].replace("\\040", " ")
                fs = fields[fields.index("-") + 1]
                inside = target == mount or target.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best):
                    best, kind = mount, fs
    except (OSError, ValueError, IndexError):
        return None
    return kind


def evict(path, fmt, names):
    """Drop the store's files from the page cache; False where that cannot be done (no
    posix_fadvise, or a file system in memory).

    Only the cache is touched (posix_fadvise DONTNEED), never the files. Dirty pages are not
    dropped, hence the sync first; nor are pages mapped by an open LMDB environment, so readers
    must be closed (their DataLoader gone) before this is called.
    """
    if not hasattr(os, "posix_fadvise") or file_system(path) in IN_MEMORY_FS:
        return False
    os.sync()
    for file in store_files(path, fmt, names):
        fd = os.open(file, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return True


def _read_values(path, fmt, names):
    """Read what a pass over `names` reads, and nothing more (a real LMDB can be 100+ GB)."""
    if fmt == "lmdb":
        from ..features import lmdb

        lmdb.read_values(path, names)
        return
    for file in store_files(path, fmt, names):
        file.read_bytes()


def set_cache(path, fmt, names, cache):
    """Put the store's items `names` in page-cache state `cache` ("cold": out of it, read from
    disk; "warm": in it, read once); returns the state reached."""
    if cache == "warm":
        _read_values(path, fmt, names)
        return "warm"
    if evict(path, fmt, names):
        return "cold"
    return f"unknown (cannot evict on {file_system(path) or 'this system'})"


def store_names(features, limit):
    """Names of the first `limit` feature files of an existing folder."""
    from ..features.lmdb import feature_names

    return feature_names(features)[:limit]


@contextlib.contextmanager
def lmdb_readahead(on):
    """MMF's LMDB reader with read-ahead `on` for the readers opened inside (MMF's
    training.lmdb_readahead from the kit's `fast` patches, which the reader takes from MMF's
    registered config when it opens, in each loader worker)."""
    from mmf.common.registry import registry
    from omegaconf import OmegaConf

    saved = registry.get("config", no_warning=True)
    config = OmegaConf.create({"training": {"lmdb_readahead": bool(on)}})
    registry.register("config", config if saved is None else OmegaConf.merge(saved, config))
    try:
        yield
    finally:
        if saved is None:
            registry.unregister("config")
        else:
            registry.register("config", saved)


class StoreDataset:
    """MMF's hateful_memes features dataset over a store: MMF's FeaturesDatabase reads each item."""

    def __init__(self, path, names, model=PAPER_MODEL, seq_len=SEQ_LEN, seed=0):
        import numpy as np
        from mmf.datasets.databases.features_database import FeaturesDatabase
        from omegaconf import OmegaConf

        config = OmegaConf.create(
            {
                "max_features": NUM_BOXES,
                "depth_first": False,
                "fast_read": False,
                "return_features_info": True,
            }
        )
        self.db = FeaturesDatabase(config, str(path), annotation_db=None)
        self.names = list(names)
        rng = np.random.default_rng(seed)
        self.texts = [text_fields(rng, seq_len) for _ in self.names]
        self.bbox = bbox_processor(model)
        self.dataset_name, self.dataset_type = mmf_dataset(), "train"

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        # HatefulMemesFeaturesDataset: feature_path "<img basename>.npy", read via features_db
        features = self.db.from_path(self.names[i] + ".npy")
        return make_sample(
            i,
            self.texts[i],
            features["image_feature_0"],
            features["image_info_0"],
            i % 2,
            self.bbox,
        )


def data_loader(dataset, batch_size, num_workers, pin_memory, seed=0):
    """A DataLoader as MMF's build_dataloader_and_sampler makes it (shuffled, MMF's collator)."""
    import torch
    from mmf.common.batch_collator import BatchCollator

    generator = torch.Generator()
    generator.manual_seed(seed)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        generator=generator,
        num_workers=num_workers,
        pin_memory=pin_memory,
        # MMF a34bc2d: persistent whenever there are workers
        persistent_workers=num_workers > 0,
        collate_fn=BatchCollator(dataset.dataset_name, dataset.dataset_type),
    )


def measure(
    path,
    names,
    fmt,
    batch_size,
    num_workers,
    pin_memory,
    cache,
    readahead=False,
    model=PAPER_MODEL,
):
    """samples/s over one pass of the store, after the first batch (worker start-up), from page
    cache state `cache` (see set_cache); `readahead` is the LMDB reader's."""
    cache = set_cache(path, fmt, names, cache)
    with lmdb_readahead(readahead):
        dataset = StoreDataset(path, names, model=model)
        loader = data_loader(dataset, batch_size, num_workers, pin_memory)
        it = iter(loader)
        first = next(it)
        count = 0
        start = time.perf_counter()
        for batch in it:
            count += batch.get_batch_size()
        seconds = time.perf_counter() - start
        del it, loader
    return {
        "format": fmt,
        "readahead": bool(readahead) if fmt == "lmdb" else None,
        "num_workers": num_workers,
        "pin_memory": pin_memory,
        "page_cache": cache,
        "batch_size": batch_size,
        "items": len(names),
        "samples_timed": count,
        "samples_per_s": count / seconds if seconds > 0 and count else None,
        "first_batch_keys": sorted(first.keys()),
    }
