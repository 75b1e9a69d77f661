"""Preflight: what every run of a matrix needs, checked before any process starts.

`pekit run`, `reproduce` and `study` (and their dry runs) refuse a matrix here, one line per
problem with the command that fixes it, so that nothing trains for hours and then dies on a
missing file, and no folder is written first. `pekit doctor` asks the same questions.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import List

from ..core.errors import OwnershipError, UsageError
from ..data.paths import dataset_dir, mmf_data_dir
from ..facts.vocabulary import DATASETS
from . import command
from . import identity as identity_mod
from .record import FINISHED, FOREIGN_FIX, RUNNING, check_folder, load, state


def fix_data(dataset, data_dir=None):
    """The command laying out `dataset` in the data folder."""
    source = DATASETS[dataset].data_source
    return f"pekit data {dataset} {source}{_dir_option(data_dir)}   (make data-{dataset} SRC=...)"


REUSE_FIX = "--force deletes it and trains again; another --results folder keeps both"


@dataclass(frozen=True)
class Problem:
    what: str  # what is missing or wrong
    blocks: str  # the runs it blocks
    fix: str  # the command that fixes it

    def line(self):
        return f"{self.what}: blocks {self.blocks}; fix: {self.fix}"


def _dir_option(data_dir):
    return f" --data-dir {data_dir}" if data_dir else ""


def _overridden(extra, prefix):
    """Whether an override sets a key starting with `prefix`."""
    return any(item.split("=", 1)[0].strip().startswith(prefix) for item in extra)


def annotations(dataset, data_dir=None):
    """The annotation files of `dataset` that are missing, and the folder they belong in."""
    facts = DATASETS[dataset]
    folder = dataset_dir(facts.mmf_name, data_dir) / "annotations"
    missing = [f"{s}.jsonl" for s in facts.splits if not (folder / f"{s}.jsonl").is_file()]
    return missing, folder


def needs(dataset, model, settings, data_dir=None, config=None, extra=()):
    """[(what is missing, fix)] for a training run of `model` on `dataset` with `settings`: the
    annotations, the region features and, with the kit's own MMF configs, the pre-trained
    checkpoints and files MMF would otherwise try to download. An explicit --config (or an
    override of the features or of the weights) speaks for itself: beyond the annotations,
    only what it leaves to the kit is checked."""
    from .. import assets
    from ..facts import settings as settings_mod

    name = DATASETS[dataset].mmf_name
    opt = _dir_option(data_dir)
    out = []
    missing, folder = annotations(dataset, data_dir)
    if missing:
        out.append((f"{folder}: no {', '.join(missing)}", fix_data(dataset, data_dir)))
    features_set = _overridden(extra, f"dataset_config.{name}.features")
    lmdb = settings_mod.LMDB_FEATURES.get(name) if settings.lmdb_features else None
    if lmdb and not features_set:
        path = mmf_data_dir(data_dir) / "datasets" / lmdb
        if not path.exists():
            out.append(
                (
                    f"{path}: no LMDB features (SETTINGS={settings.name})",
                    f"pekit features lmdb{opt}",
                )
            )
    elif DATASETS[dataset].features_from_kit and not features_set:
        features = dataset_dir(name, data_dir) / "features"
        if not _nonempty(features):
            out.append(
                (
                    f"{features}: no region features",
                    f"pekit features {dataset}{opt}   (make features-{dataset})",
                )
            )
    if config:
        return out
    weights_set = _overridden(extra, "checkpoint.resume_zoo") or _overridden(
        extra, "checkpoint.resume_file"
    )
    root = mmf_data_dir(data_dir)
    for asset in assets.load_facts().assets:
        if not asset.needed_by(dataset, model):
            continue
        if asset.dest.startswith(f"datasets/{name}/defaults/features") and features_set:
            continue
        if asset.dest.startswith("models/") and weights_set:
            continue
        if assets.state(asset, root) == "missing":
            out.append(
                (
                    f"{root / asset.dest}: asset {asset.name} not fetched",
                    fetch_command(asset, data_dir),
                )
            )
    return out


def fetch_command(asset, data_dir=None):
    """The command fetching `asset` into the data folder."""
    unverified = "" if asset.verified else " --allow-unverified"
    return f"pekit assets fetch {asset.name}{_dir_option(data_dir)}{unverified}"


def _nonempty(folder):
    try:
        return any(True for _ in folder.iterdir())
    except OSError:
        return False


def check(specs, force=False, test=True) -> List[Problem]:
    """Every problem of the matrix `specs`, each once with the runs it blocks."""
    found = {}

    def add(what, fix, key):
        found.setdefault((what, fix), []).append(key)

    for spec in specs:
        try:
            check_folder(spec.dir, force=force)
        except OwnershipError as e:
            add(str(e).split("; left as it is", 1)[0], f"move it away or {FOREIGN_FIX}", spec.key)
            continue
        current = state(spec)
        if current == RUNNING:
            add(
                f"{spec.dir}: being run by process {load(spec.dir).pid}",
                "wait for it, or stop it",
                spec.key,
            )
            continue
        record = load(spec.dir) if current != "new" else None
        if record is not None and not force:
            diff = identity_mod.reuse_differences(spec, record)
            if diff:
                add(
                    f"{spec.dir} holds a run trained otherwise ({'; '.join(diff)})",
                    REUSE_FIX,
                    spec.key,
                )
                continue
        if current == FINISHED and not force and (not test or _tests_done(spec, record)):
            continue
        if spec.nodes > 1 and current != FINISHED and shutil.which(command.SRUN[0]) is None:
            add(
                f"--nodes {spec.nodes}: SLURM's {command.SRUN[0]} is not on PATH",
                "run pekit inside a SLURM allocation (sbatch or salloc; docs/reproduce.md)",
                spec.key,
            )
        for what, fix in needs(
            spec.dataset, spec.model, spec.settings, spec.data_dir, spec.config, spec.extra
        ):
            add(what, fix, spec.key)
    return [Problem(what, _blocks(keys), fix) for (what, fix), keys in found.items()]


def _tests_done(spec, record):
    return record is not None and all(
        record.test.get(s, {}).get("status") in (FINISHED, "skipped")
        for s in DATASETS[spec.dataset].test_splits
    )


def _blocks(keys):
    return keys[0] if len(keys) == 1 else f"{len(keys)} runs ({keys[0]}, ...)"


def message(problems, verb="started"):
    """The problems of a matrix, one line each under a line saying nothing is started."""
    lines = "\n".join(p.line() for p in problems)
    return f"nothing {verb}, {len(problems)} problem(s) first:\n{lines}"


def refuse(problems):
    """A UsageError listing `problems` (nothing has been written)."""
    if problems:
        raise UsageError(message(problems))
