"""The bench's plan and its run: which sections, models, modes and stores on which device, and
the measurements in order. `pekit bench` (options.py) maps its options onto a BenchRequest; the
GPU check makes one directly."""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..core import argtypes
from ..core.errors import UsageError
from ..facts import settings as settings_mod
from ..facts.vocabulary import DATASETS, FC, MODELS, MODES, PAPER_MODEL, PAPER_MODES

SECTIONS = ("loader", "train", "pipeline", "extract")
PIPELINE_MODELS = (PAPER_MODEL,)  # the paper's runs' model
DEFAULTS = {
    # option: (GPU, CPU)
    "batch": (16, 2),
    "updates": (20, 1),
    # Loading and updates together: long enough that the loader's prefetched batches and
    # throughput noise are a small share.
    "pipeline_updates": (100, 1),
    "warmup": (3, 1),
    "loader_items": (2048, 256),
    # Loading alone costs little compute: the paper's batch on every device.
    "loader_batch": (16, 16),
    "extract_images": (33, 3),
    "extract_batch": (8, 1),
}


@dataclass
class BenchPlan:
    """What one bench measures, decided from the options and the device."""

    device: object  # torch.device
    sections: List[str]
    models: List[str]
    modes: List[str]
    pipeline_models: List[str]
    pipeline_modes: List[str]
    datasets: List[str]
    counts: Dict[str, int]  # DEFAULTS' keys: batch, updates, ...
    scaled: List[str]  # what was scaled down for a CPU, said in the output
    workers: int
    workdir: Optional[Path] = None
    features: Optional[str] = None  # a real features folder for the loading section
    frcnn_dir: Optional[str] = None
    data_dir: Optional[str] = None
    mmf_src: Optional[str] = None


def device_info(device):
    import torch

    info = {
        "type": device.type,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
        info["capability"] = list(torch.cuda.get_device_capability(device))
    else:
        info["name"] = _cpu_name()
    return info


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class BenchRequest:
    """What a bench is asked for, before the device decides the rest: `pekit bench`'s options
    map onto it (BenchRequest.from_args) and the GPU check builds one directly. Empty lists and
    None mean the defaults; `counts` holds DEFAULTS' keys that were set. Checked when made:
    a name that is not one of the vocabulary's or a count below its least is a UsageError
    naming the option it comes from."""

    models: Tuple[str, ...] = ()
    modes: Tuple[str, ...] = ()
    pipeline_models: Tuple[str, ...] = ()
    pipeline_modes: Tuple[str, ...] = ()
    datasets: Tuple[str, ...] = ()
    sections: Tuple[str, ...] = ()
    device: Optional[str] = None
    counts: Tuple[Tuple[str, int], ...] = ()  # (DEFAULTS' key, value), only those set
    features: Optional[str] = None
    frcnn_dir: Optional[str] = None
    data_dir: Optional[str] = None
    mmf_src: Optional[str] = None
    workdir: Optional[str] = None

    def __post_init__(self):
        for option, values, allowed in (
            ("--models", self.models, MODELS),
            ("--modes", self.modes, MODES),
            ("--pipeline-models", self.pipeline_models, MODELS),
            ("--pipeline-modes", self.pipeline_modes, MODES),
            ("--datasets", self.datasets, DATASETS),
            ("--only", self.sections, SECTIONS),
        ):
            for value in values:
                if value not in allowed:
                    raise UsageError(
                        f"{option}: unknown {value!r} (expected names of {', '.join(allowed)})"
                    )
            if len(set(values)) != len(values):
                raise UsageError(f"{option}: a name given twice in {', '.join(values)}")
        for name, value in self.counts:
            if name not in DEFAULTS:
                raise UsageError(
                    f"bench: unknown count '{name}' (expected one of {', '.join(DEFAULTS)})"
                )
            least = 0 if name == "warmup" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise UsageError(
                    f"--{name.replace('_', '-')} must be a whole number of at least {least}"
                )

    @classmethod
    def from_args(cls, args):
        """The request of `pekit bench`'s parsed options."""

        def listed(text, allowed, option):
            return tuple(argtypes.names(text or "", allowed, (), option))

        return cls(
            models=listed(args.models, MODELS, "--models"),
            modes=listed(args.modes, MODES, "--modes"),
            pipeline_models=listed(args.pipeline_models, MODELS, "--pipeline-models"),
            pipeline_modes=listed(args.pipeline_modes, MODES, "--pipeline-modes"),
            datasets=listed(args.datasets, DATASETS, "--datasets"),
            sections=listed(args.only, SECTIONS, "--only"),
            device=str(args.device) if args.device else None,
            counts=tuple(
                (name, getattr(args, name)) for name in DEFAULTS if getattr(args, name) is not None
            ),
            features=args.features,
            frcnn_dir=args.frcnn_dir,
            data_dir=args.data_dir,
            mmf_src=args.mmf_src,
            workdir=args.workdir,
        )

    def to_dict(self):
        """The request as JSON data (what a report records of it): the fields set."""
        out = {}
        for key, value in asdict(self).items():
            if key == "counts":
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            if value not in (None, [], {}):
                out[key] = value
        return out


def counts_for(request, device):
    """The bench's counts: the request's, else the device's defaults."""
    column = 0 if device.type == "cuda" else 1
    asked = dict(request.counts)
    opts = {}
    scaled = []
    for name, defaults in DEFAULTS.items():
        value = asked.get(name)
        opts[name] = defaults[column] if value is None else value
        if value is None and device.type != "cuda" and defaults[1] != defaults[0]:
            scaled.append(f"{name.replace('_', ' ')} {defaults[1]} (GPU default {defaults[0]})")
    return opts, scaled


def check_device(device, torch):
    """A device this machine has: a UsageError naming --device otherwise (before any work)."""
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise UsageError(f"--device {device}: this machine has {count} CUDA devices")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UsageError(f"--device {device}: no MPS device here")


def plan(request):
    """The BenchPlan of a BenchRequest on this machine (every name checked before anything
    runs)."""
    import torch

    device = torch.device(request.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    check_device(device, torch)
    counts, scaled = counts_for(request, device)
    modes = list(request.modes or PAPER_MODES)
    if request.pipeline_modes:
        pipe_modes = list(request.pipeline_modes)
    elif device.type == "cuda":
        pipe_modes = list(modes)
    else:
        pipe_modes = [m for m in modes if m == FC]
        scaled.append("pipeline section FC only (GPU default: every mode)")
    return BenchPlan(
        device=device,
        sections=list(request.sections or SECTIONS),
        models=list(request.models or MODELS),
        modes=modes,
        pipeline_models=list(request.pipeline_models or PIPELINE_MODELS),
        pipeline_modes=pipe_modes,
        datasets=list(request.datasets or DATASETS),
        counts=counts,
        scaled=scaled,
        workers=settings_mod.auto_workers(),
        workdir=Path(request.workdir) if request.workdir else None,
        features=request.features,
        frcnn_dir=request.frcnn_dir,
        data_dir=request.data_dir,
        mmf_src=request.mmf_src,
    )


def run(plan, out, echo=None):
    """Measure every section of `plan`; returns the result dict (see bench/summary.py). Scratch
    goes into plan.workdir, else a temporary folder beside `out` (on a disk, not /tmp)."""
    from . import batch as batch_mod
    from . import memory, summary, train

    echo = echo or (lambda text: None)
    opts = plan.counts
    result = {
        "kind": "pekit-bench",
        "schema": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "device": device_info(plan.device),
        "memory_kind": memory.kind(plan.device),
        "params": {
            "batch_size": opts["batch"],
            "updates": opts["updates"],
            "pipeline_updates": opts["pipeline_updates"],
            "warmup": opts["warmup"],
            "seq_len": batch_mod.SEQ_LEN,
            "num_boxes": batch_mod.NUM_BOXES,
            "feature_dim": batch_mod.FEATURE_DIM,
            "loader_items": opts["loader_items"],
            "workers": plan.workers,
            "scaled_down": "; ".join(plan.scaled) if plan.scaled else None,
        },
        "settings": {s: train.step_settings(s, plan.device) for s in (train.PAPER, train.FAST)},
        "train": [],
        "loader": [],
        "pipeline": [],
    }
    scratch = None
    if plan.workdir is not None:
        workdir = plan.workdir
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        out_dir = Path(out).parent
        out_dir.mkdir(parents=True, exist_ok=True)
        scratch = tempfile.TemporaryDirectory(prefix=".pekit-bench-", dir=str(out_dir))
        workdir = Path(scratch.name)
    try:
        stores = {}
        if "loader" in plan.sections or "pipeline" in plan.sections:
            stores = _stores(plan, workdir, result, echo)
        if "loader" in plan.sections:
            _loading(plan, stores, result, echo)
        if "train" in plan.sections or "pipeline" in plan.sections:
            _models(plan, stores, workdir, result, echo)
        if "extract" in plan.sections:
            result["extract"] = _extract(plan, workdir, echo)
    finally:
        if scratch is not None:
            scratch.cleanup()
    result["ratios"] = summary.ratios(result)
    result["paper_v100"] = list(summary.paper_runs().values())
    return result


def _loading(plan, stores, result, echo):
    """MMF's LMDB reader as it is (the paper's HMD runs) and with the `fast` read-ahead, which
    only MMF with the `fast` patches has, against the .npy folder; cold, then warm."""
    from . import loader

    readers = [("npy", False), ("lmdb", False)]
    if settings_mod.mmf_has_fast_keys():
        readers.append(("lmdb", True))
    for fmt, readahead in readers:
        for n in sorted({0, plan.workers}):
            pin = n > 0 and plan.device.type == "cuda"
            path, names = stores[fmt]
            for cache in ("cold", "warm"):
                echo(f"loader: {fmt}{', read-ahead' if readahead else ''}, {n} workers, {cache}")
                result["loader"].append(
                    loader.measure(
                        path, names, fmt, plan.counts["loader_batch"], n, pin, cache, readahead
                    )
                )


def _stores(plan, workdir, result, echo):
    """{"npy": (folder, names), "lmdb": (path, names)} of the store the loading is read from."""
    from ..features import lmdb
    from . import loader

    if plan.features:
        features = Path(plan.features)
        names = loader.store_names(features, plan.counts["loader_items"])
        result["params"]["store"] = f"{features} (first {len(names)} items)"
        lmdb_path = lmdb.default_lmdb_path(features)
        if not lmdb_path.exists():
            # Only the items read, in the scratch folder: the user's data is never written.
            lmdb_path = workdir / "features.lmdb"
            if not lmdb_path.exists():
                echo(f"packing {len(names)} items of {features} into {lmdb_path}")
                lmdb.convert(features, lmdb_path, names=names)
    else:
        echo(f"writing a synthetic store of {plan.counts['loader_items']} items")
        features, names = loader.write_store(workdir / "store", plan.counts["loader_items"])
        result["params"]["store"] = "a synthetic store written for the bench"
        lmdb_path = loader.write_lmdb(features)
    return {"npy": (features, names), "lmdb": (lmdb_path, names)}


def _models(plan, stores, workdir, result, echo):
    from . import batch as batch_mod
    from . import pipeline, train

    opts, device = plan.counts, plan.device
    for model in plan.models:
        try:
            for mode in plan.modes:
                echo(f"{model} {mode}: building the full-size model")
                net, config = train.build(model, mode, workdir / "models" / f"{model}-{mode}")
                net = net.to(device)
                net.train()
                if "train" in plan.sections:
                    batches = [
                        batch_mod.synthetic_batch(model, opts["batch"], seed=i)
                        for i in range(opts["warmup"] + opts["updates"])
                    ]
                    for settings_name in (train.PAPER, train.FAST):
                        echo(f"{model} {mode}: updates, {settings_name} settings")
                        row = train.measure(
                            net, config, device, settings_name, batches, opts["warmup"]
                        )
                        result["train"].append(dict(row, model=model, mode=mode))
                if (
                    "pipeline" in plan.sections
                    and model in plan.pipeline_models
                    and mode in plan.pipeline_modes
                ):
                    for dataset in plan.datasets:
                        for settings_name in (train.PAPER, train.FAST):
                            echo(f"{model} {mode}: {dataset} run, {settings_name} settings")
                            row = pipeline.measure(
                                net,
                                config,
                                device,
                                model,
                                dataset,
                                settings_name,
                                stores,
                                opts["batch"],
                                opts["warmup"],
                                opts["pipeline_updates"],
                            )
                            result["pipeline"].append(dict(row, model=model, mode=mode))
                del net, config
                train.release(device)
        finally:
            # ViLBERT swaps transformers' BERT forwards for MMF's, process-wide.
            hf_layers = sys.modules.get("mmf.modules.hf_layers")
            if hf_layers is not None:
                hf_layers.undo_replace_with_jit()


def _extract(plan, workdir, echo):
    from ..core.errors import PekitError
    from ..features.frcnn import locate_mmf_src
    from . import extract

    config, weights, where = extract.find_model(plan.frcnn_dir, plan.data_dir)
    if config is None:
        return {"skipped": where}
    try:
        mmf_src = locate_mmf_src(plan.mmf_src)
    except PekitError as e:
        return {"skipped": str(e)}
    counts = plan.counts
    echo(f"extraction: {counts['extract_images']} images, FRCNN from {where}")
    row = extract.measure(
        mmf_src,
        config,
        weights,
        plan.device,
        counts["extract_images"],
        counts["extract_batch"],
        workdir,
    )
    return dict(row, model_dir=where)
