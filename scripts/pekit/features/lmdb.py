"""Region features in one LMDB, in the layout MMF a34bc2d's LMDBFeatureReader reads.

The layout is that of MMF's tools/scripts/features/lmdb_conversion.py: one record per feature
file, keyed by its path relative to the features folder without ".npy" (e.g. b"01235"), whose
value is a pickled dict {feature_path, features, image_height, image_width, num_boxes, objects,
cls_prob, bbox}; and b"keys", the pickled list of every key. MMF chooses its LMDB reader when a
features path ends with ".lmdb" (dataset_config.<dataset>.features.<split>).

Why: with num_workers 0 the paper's MMH runs read two .npy files per sample from a folder of
150K images; one memory-mapped LMDB is read with far fewer system calls and no directory lookups.
Reading an LMDB gives the same arrays as the folder (tests/test_features_lmdb.py), so training on
either gives the same losses.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from pathlib import Path

from ..core import atomic, ownership
from ..core.errors import PekitError
from .files import load_array

SUFFIX = ".lmdb"
MARK = ".pekit-lmdb"  # in an LMDB folder this command wrote (what --force may replace)
# Records per write transaction: bounds the writer's memory on a 150K-image folder.
COMMIT_EVERY = 512
INFO_FIELDS = ("image_height", "image_width", "num_boxes", "objects", "cls_prob", "bbox")


def default_lmdb_path(features_dir):
    """<features folder>.lmdb next to the folder (e.g. mmh/defaults/features.lmdb)."""
    features_dir = Path(features_dir)
    return features_dir.parent / (features_dir.name.rstrip("/") + SUFFIX)


def feature_names(features_dir):
    """Names (relative paths without .npy, '/'-separated) of every feature file below the folder."""
    root = Path(features_dir)
    if not root.is_dir():
        raise PekitError(f"{root}: features folder not found")
    names = []
    for path in root.rglob("*.npy"):
        if path.name.endswith("_info.npy"):
            continue
        names.append(path.relative_to(root).as_posix()[: -len(".npy")])
    return sorted(names)


def mmf_lookup_alias(name):
    """The key MMF's reader tries first for `name`: str(int(last '_' part)) when that parses.

    LMDBFeatureReader._load looks this key up before `name` itself, so an existing record under
    the alias would be returned for `name` instead of its own.
    """
    try:
        return str(int(name.split("_")[-1]))
    except ValueError:
        return None


def check_names(names):
    """Refuse names MMF's reader would resolve to another record."""
    present = set(names)
    for name in names:
        alias = mmf_lookup_alias(name)
        if alias is not None and alias != name and alias in present:
            raise PekitError(
                f"feature '{name}' would be read as '{alias}' by MMF's LMDB reader (it looks "
                f"up str(int('{name.split('_')[-1]}')) first); rename one of them"
            )


def record(features_dir, name):
    """The dict stored for feature `name`, as MMF's lmdb_conversion builds it."""

    feat_path = Path(features_dir) / (name + ".npy")
    info_path = Path(features_dir) / (name + "_info.npy")
    try:
        item = {"feature_path": name, "features": load_array(feat_path)}
        if info_path.is_file():
            info = load_array(info_path, objects=True).item()
            for key in INFO_FIELDS:
                item[key] = info.get(key)
    except (OSError, ValueError, AttributeError) as e:
        raise PekitError(f"{feat_path}: cannot read the features or their _info.npy: {e}") from e
    return item


def _map_size(features_dir, names):
    root = Path(features_dir)
    total = 0
    for name in names:
        for suffix in (".npy", "_info.npy"):
            path = root / (name + suffix)
            if path.is_file():
                total += path.stat().st_size
    # Pickling adds little; LMDB needs room for its pages. The file grows only as it is used.
    return max(2 * total + (64 << 20), 1 << 26)


def convert(features_dir, out_path=None, force=False, progress=None, names=None):
    """Write the LMDB of every feature in `features_dir` (or of `names` only); returns
    {"out", "count"}.

    The database is built in a temporary folder beside `out_path` and renamed into place when
    complete, so an interrupted conversion leaves no half-written LMDB. The folder is only read.
    """
    import lmdb

    features_dir = Path(features_dir)
    out = Path(out_path) if out_path else default_lmdb_path(features_dir)
    if not out.name.endswith(SUFFIX):
        raise PekitError(f"{out}: must end with {SUFFIX} (MMF reads a features path as LMDB by it)")
    if os.path.lexists(str(out)) and not force:
        raise PekitError(f"{out} exists; pass --force to rebuild it")
    # --force replaces only an LMDB this command wrote (its mark): anything else is refused.
    ownership.check_marked(out, MARK, f"not an LMDB pekit wrote (no {MARK})", "name another --out")
    names = feature_names(features_dir) if names is None else sorted(names)
    if not names:
        raise PekitError(f"{features_dir}: no <name>.npy feature files in it")
    check_names(names)
    with atomic.staged_folder(out, replace=True) as tmp:
        (tmp / MARK).write_text("made by pekit features lmdb\n", encoding="utf-8")
        env = lmdb.open(str(tmp), map_size=_map_size(features_dir, names), subdir=True)
        try:
            keys = []
            for start in range(0, len(names), COMMIT_EVERY):
                with env.begin(write=True) as txn:
                    for name in names[start : start + COMMIT_EVERY]:
                        key = name.encode("utf-8")
                        txn.put(key, pickle.dumps(record(features_dir, name)))
                        keys.append(key)
                if progress is not None:
                    progress(len(keys), len(names))
            with env.begin(write=True) as txn:
                txn.put(b"keys", pickle.dumps(keys))
            env.sync(True)
        finally:
            env.close()
        # MMF opens the database read-only and without locking; the lock file is not needed.
        with contextlib.suppress(OSError):
            (tmp / "lock.mdb").unlink()
    return {"out": str(out), "count": len(names)}


def _open_readonly(lmdb_path):
    import lmdb

    return lmdb.open(
        str(lmdb_path),
        subdir=os.path.isdir(str(lmdb_path)),
        readonly=True,
        lock=False,
        readahead=False,
        meminit=False,
    )


def read_keys(lmdb_path):
    """The keys list of an LMDB written here (or by MMF's conversion)."""
    env = _open_readonly(lmdb_path)
    try:
        with env.begin(write=False) as txn:
            raw = txn.get(b"keys")
    finally:
        env.close()
    if raw is None:
        raise PekitError(f"{lmdb_path}: no b'keys' record; not a features LMDB")
    return pickle.loads(raw)


def read_values(lmdb_path, names):
    """Read the records of `names` (and only those: a store can be 100+ GB); returns how many
    were found."""
    env = _open_readonly(lmdb_path)
    found = 0
    try:
        with env.begin(write=False, buffers=True) as txn:
            for name in names:
                value = txn.get(name.encode())
                if value is not None:
                    bytes(value)
                    found += 1
    finally:
        env.close()
    return found
