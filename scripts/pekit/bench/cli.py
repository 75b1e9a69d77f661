"""`pekit bench`: measure training, loading and extraction throughput with the paper and fast settings.

Defaults follow the device: on a GPU the paper's batch of 16 and enough updates for stable
figures; on CPU a scaled-down run (batch 2, 1 update, a small store) that finishes in minutes
and says so in its output.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from ..core.errors import UsageError

SECTIONS = ("loader", "train", "pipeline", "extract")
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


def register(subparsers):
    p = subparsers.add_parser(
        "bench",
        help="training, loading and extraction throughput (paper vs fast settings)",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--models", default="visual_bert,vilbert", help="comma-separated")
    p.add_argument("--modes", default="fc,pe,full", help="comma-separated")
    p.add_argument(
        "--pipeline-models",
        default="visual_bert",
        help="models measured with loading and updates together (default: the "
        "paper's runs' VisualBERT)",
    )
    p.add_argument(
        "--pipeline-modes",
        default=None,
        help="modes of the pipeline section (default: fc,pe,full on a GPU, fc on CPU)",
    )
    p.add_argument("--datasets", default="hmd,mmh", help="stores for the pipeline section")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"sections: {','.join(SECTIONS)}")
    p.add_argument("--device", help="torch device (default: cuda if available)")
    for name, (gpu, cpu) in DEFAULTS.items():
        p.add_argument(
            f"--{name.replace('_', '-')}",
            type=int,
            default=None,
            help=f"default {gpu} on a GPU, {cpu} on CPU",
        )
    p.add_argument(
        "--features",
        help="an existing .npy features folder for the loading section "
        "(its <folder>.lmdb too, when there); default: a synthetic store",
    )
    p.add_argument(
        "--frcnn-dir",
        help="FRCNN config.yaml (+ pytorch_model.bin); default: the "
        "asset folder in the MMF data dir",
    )
    p.add_argument("--data-dir", help="MMF data dir (for the FRCNN asset)")
    p.add_argument("--mmf-src", help="MMF checkout with tools/ (for the FRCNN extractor)")
    p.add_argument(
        "--workdir",
        help="scratch folder for stores and images (default: a temporary one beside --out, on "
        "a disk rather than /tmp, which may be in memory)",
    )
    p.add_argument(
        "--out",
        default="results/bench/bench.json",
        help="JSON result; the Markdown table goes beside it (.md)",
    )
    p.set_defaults(func=_main)


def _list(text, allowed, what):
    items = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if bad or not items:
        raise UsageError(f"--{what}: expected a comma-separated list of {', '.join(allowed)}")
    return items


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


def options_for(args, device):
    """The run's parameters: explicit options, else the device's defaults."""
    column = 0 if device.type == "cuda" else 1
    opts = {}
    scaled = []
    for name, defaults in DEFAULTS.items():
        value = getattr(args, name)
        opts[name] = defaults[column] if value is None else value
        if value is None and device.type != "cuda" and defaults[1] != defaults[0]:
            scaled.append(f"{name.replace('_', ' ')} {defaults[1]} (GPU default {defaults[0]})")
    for name in DEFAULTS:
        least = 0 if name == "warmup" else 1
        if opts[name] < least:
            raise UsageError(f"--{name.replace('_', '-')} must be at least {least}")
    return opts, scaled


def run_bench(args, echo=None):
    """Measure every section asked for; returns the result dict (see bench/report.py)."""
    import torch

    from .. import settings as settings_mod
    from . import batch as batch_mod
    from . import loader, memory, report, train

    echo = echo or (lambda text: None)
    sections = _list(args.only, SECTIONS, "only")
    model_names = _list(args.models, ("visual_bert", "vilbert"), "models")
    modes = _list(args.modes, ("fc", "pe", "full"), "modes")
    pipe_models = _list(args.pipeline_models, ("visual_bert", "vilbert"), "pipeline-models")
    datasets = _list(args.datasets, ("hmd", "mmh"), "datasets")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    opts, scaled = options_for(args, device)
    if args.pipeline_modes:
        pipe_modes = _list(args.pipeline_modes, ("fc", "pe", "full"), "pipeline-modes")
    elif device.type == "cuda":
        pipe_modes = list(modes)
    else:
        pipe_modes = [m for m in modes if m == "fc"]
        scaled.append("pipeline section FC only (GPU default: every mode)")
    workers = settings_mod.auto_workers()
    result = {
        "kind": "pekit-bench",
        "schema": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "device": device_info(device),
        "memory_kind": memory.kind(device),
        "params": {
            "batch_size": opts["batch"],
            "updates": opts["updates"],
            "pipeline_updates": opts["pipeline_updates"],
            "warmup": opts["warmup"],
            "seq_len": batch_mod.SEQ_LEN,
            "num_boxes": batch_mod.NUM_BOXES,
            "feature_dim": batch_mod.FEATURE_DIM,
            "loader_items": opts["loader_items"],
            "workers": workers,
            "scaled_down": "; ".join(scaled) if scaled else None,
        },
        "settings": {s: train.step_settings(s, device) for s in (train.PAPER, train.FAST)},
        "train": [],
        "loader": [],
        "pipeline": [],
    }
    scratch = None
    if args.workdir:
        workdir = Path(args.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        out_dir = Path(args.out).parent
        out_dir.mkdir(parents=True, exist_ok=True)
        scratch = tempfile.TemporaryDirectory(prefix=".pekit-bench-", dir=str(out_dir))
        workdir = Path(scratch.name)
    try:
        stores = {}
        if "loader" in sections or "pipeline" in sections:
            stores = _stores(args, workdir, opts, result, echo)
        if "loader" in sections:
            # MMF's LMDB reader as it is (the paper's HMD runs) and with the `fast` read-ahead,
            # which only MMF with the `fast` patches has.
            readers = [("npy", False), ("lmdb", False)]
            if settings_mod.mmf_has_fast_keys():
                readers.append(("lmdb", True))
            for fmt, readahead in readers:
                for n in sorted({0, workers}):
                    pin = n > 0 and device.type == "cuda"
                    path, names = stores[fmt]
                    # cold first: the warm pass then reads what the cold one brought in
                    for cache in ("cold", "warm"):
                        echo(
                            f"loader: {fmt}{', read-ahead' if readahead else ''}, {n} workers, {cache}"
                        )
                        result["loader"].append(
                            loader.measure(
                                path, names, fmt, opts["loader_batch"], n, pin, cache, readahead
                            )
                        )
        if "train" in sections or "pipeline" in sections:
            pipe = (pipe_models, pipe_modes, datasets)
            _models(
                args,
                sections,
                model_names,
                modes,
                pipe,
                device,
                opts,
                stores,
                workdir,
                result,
                echo,
            )
        if "extract" in sections:
            result["extract"] = _extract(args, device, opts, workdir, echo)
    finally:
        if scratch is not None:
            scratch.cleanup()
    result["ratios"] = report.ratios(result)
    result["paper_v100"] = list(report.paper_runs().values())
    return result


def _stores(args, workdir, opts, result, echo):
    """{"npy": (folder, names), "lmdb": (path, names)} of the store the loading is read from."""
    from ..features import lmdb
    from . import loader

    if args.features:
        features = Path(args.features)
        names = loader.store_names(features, opts["loader_items"])
        result["params"]["store"] = f"{features} (first {len(names)} items)"
        lmdb_path = lmdb.default_lmdb_path(features)
        if not lmdb_path.exists():
            # Only the items read, in the scratch folder: the user's data is never written.
            lmdb_path = workdir / "features.lmdb"
            if not lmdb_path.exists():
                echo(f"packing {len(names)} items of {features} into {lmdb_path}")
                lmdb.convert(features, lmdb_path, names=names)
    else:
        echo(f"writing a synthetic store of {opts['loader_items']} items")
        features, names = loader.write_store(workdir / "store", opts["loader_items"])
        result["params"]["store"] = "a synthetic store written for the bench"
        lmdb_path = loader.write_lmdb(features)
    return {"npy": (features, names), "lmdb": (lmdb_path, names)}


def _models(args, sections, model_names, modes, pipe, device, opts, stores, workdir, result, echo):
    from . import batch as batch_mod
    from . import pipeline, train

    pipe_models, pipe_modes, datasets = pipe
    for model in model_names:
        try:
            for mode in modes:
                echo(f"{model} {mode}: building the full-size model")
                net, config = train.build(model, mode, workdir / "models" / f"{model}-{mode}")
                net = net.to(device)
                net.train()
                if "train" in sections:
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
                if "pipeline" in sections and model in pipe_models and mode in pipe_modes:
                    for dataset in datasets:
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


def _extract(args, device, opts, workdir, echo):
    from ..core.errors import PekitError
    from ..features.frcnn import locate_mmf_src
    from . import extract

    config, weights, where = extract.find_model(args.frcnn_dir, args.data_dir)
    if config is None:
        return {"skipped": where}
    try:
        mmf_src = locate_mmf_src(args.mmf_src)
    except PekitError as e:
        return {"skipped": str(e)}
    echo(f"extraction: {opts['extract_images']} images, FRCNN from {where}")
    row = extract.measure(
        mmf_src, config, weights, device, opts["extract_images"], opts["extract_batch"], workdir
    )
    return dict(row, model_dir=where)


def write_outputs(result, out):
    from ..core.atomic import write_json, write_text
    from . import report

    out = Path(out)
    md = out.with_suffix(".md")
    write_json(out, result)
    text = report.markdown(result)
    write_text(md, text)
    return out, md, text


def _echo(text):
    print(f"bench: {text}", file=sys.stderr, flush=True)


def _main(args):
    from ..core.atomic import output_file

    for path in (Path(args.out), Path(args.out).with_suffix(".md")):
        output_file(path)  # refused now, not after minutes of measuring
    result = run_bench(args, echo=_echo)
    out, md, text = write_outputs(result, args.out)
    print(text)
    _echo(f"wrote {out} and {md}")
    return 0
