"""`pekit gpu-check`: what the kit does on this machine's GPU, measured in minutes, offline.

1. Table I: every model in every mode built through MMF, on the GPU, counted against the paper.
2. Training: real `mmf_run`s (through the kit's runner) of VisualBERT FC and PE on synthetic
   Hateful-Memes-shaped data (pekit.synthetic), with the paper's settings and with `fast`:
   updates/s, peak memory, finite losses.
3. `pekit bench` with the device's defaults (its Targets table).

Writes OUT/gpu-check.json and OUT/gpu-check.md (the bench's bench.json/.md and the runs beside
them). Without a GPU it runs scaled down (a few updates a run, the bench's training section)
and says so.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import time

from . import models, settings, synthetic
from .bench import report as bench_report
from .core import argtypes, atomic
from .report import logs
from .run import execute, record
from .run.spec import RunSpec
from .vocabulary import label

GPU_UPDATES = 200
CPU_UPDATES = 4


def _device():
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda"), torch.cuda.get_device_name(0)
    return torch.device("cpu"), platform.processor() or platform.machine()


def table1(device, model_names, workdir, echo):
    """Each (model, mode)'s total and trained parameters, built by MMF and moved to `device`."""
    reference = {(r["model"], r["mode"]): r for r in models.table1_rows()}
    rows = []
    for model in model_names:
        for mode in ("fc", "pe", "full"):
            echo(f"Table I: {model} {mode}")
            net = models.build_mmf_model(model, mode, workdir / "models" / f"{model}-{mode}")
            net = net.to(device)
            total, trained = models.parameter_counts(net)
            ref = reference[(model, mode)]
            rows.append(
                {
                    "model": model,
                    "mode": mode,
                    "total": total,
                    "trained": trained,
                    "paper_total": ref["total"],
                    "paper_trained": ref["trained"],
                    "pass": (total, trained) == (ref["total"], ref["trained"]),
                }
            )
            del net
    return rows


def training(device, workdir, updates, echo):
    """VisualBERT FC and PE, paper and fast settings, through the runner on the synthetic world."""
    world = synthetic.build_world(workdir / "world", sizes={"train": 64, "dev_seen": 16})
    env = synthetic.run_env(world)
    if device.type != "cuda":
        env[settings.ENV_PRECISION] = "bf16"  # fast's mixed precision, on the CPU
    saved = dict(os.environ)
    os.environ.update(env)
    rows = []
    try:
        for name in ("paper", "fast"):
            base = settings.get(name)
            interval = max(updates // 2, 1)
            extra = synthetic.runner_overrides(world, "visual_bert") + [
                f"training.max_updates={updates}",
                f"training.evaluation_interval={interval}",
                f"training.checkpoint_interval={interval}",
                f"training.log_interval={max(updates // 20, 1)}",
                "scheduler.params.num_warmup_steps=1",
            ]
            for mode in ("fc", "pe"):
                spec = RunSpec(
                    workdir / "runs" / name,
                    "hmd",
                    "visual_bert",
                    mode,
                    1,
                    settings=base,
                    data_dir=str(world.data_dir),
                    extra=extra,
                    config=synthetic.CONFIGS["visual_bert"],
                )
                echo(f"training: VisualBERT {mode}, {name} settings, {updates} updates")
                began = time.monotonic()
                run = execute.run(spec, force=True, test=False, probe=False)
                parsed = logs.parse_file(spec.dir / run.log)
                losses = [e.get("loss") for e in parsed["train"] if "loss" in e]
                rows.append(
                    {
                        "settings": name,
                        "model": "visual_bert",
                        "mode": mode,
                        "status": run.status,
                        "updates": parsed["last_update"],
                        "updates_per_s": parsed["ups"],
                        "peak_memory_mb": parsed["peak_memory_mb"],
                        "losses_finite": bool(losses)
                        and all(isinstance(v, float) and math.isfinite(v) for v in losses),
                        "seconds": round(time.monotonic() - began, 1),
                        "log": str(spec.dir / run.log),
                    }
                )
                # The check keeps the logs; each run's checkpoints are ~1.3 GB of nothing to read.
                for path in [*spec.dir.rglob("*.ckpt"), *spec.dir.rglob("*.pth")]:
                    path.unlink()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(str(world.root), ignore_errors=True)
    return rows


def bench(device, out, echo):
    from .bench import cli, runner

    json_out = out / "bench" / "bench.json"
    argv = ["--out", str(json_out)]
    if device.type != "cuda":  # scaled down: training of VisualBERT FC and PE only
        argv += ["--models", "visual_bert", "--modes", "fc,pe", "--only", "train"]
    result = runner.run(runner.plan(cli.parse_args(argv)), json_out, echo=echo)
    cli.write_outputs(result, json_out)
    return result


def check(out, since=None, echo=print):
    """Run the three parts; returns the result written to OUT/gpu-check.json. `since` (seconds
    since the epoch) is when the installation began, for the total time."""
    import torch

    out = atomic.output_folder(out)
    device, name = _device()
    on_gpu = device.type == "cuda"
    updates = GPU_UPDATES if on_gpu else CPU_UPDATES
    result = {
        "kind": "pekit-gpu-check",
        "device": {
            "type": device.type,
            "name": name,
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "capability": list(torch.cuda.get_device_capability(0)) if on_gpu else None,
        },
        "scaled_down": None
        if on_gpu
        else (
            f"no GPU: {CPU_UPDATES} updates a run, "
            "the bench's training section only (VisualBERT FC and PE)"
        ),
        "seconds": {},
    }
    began = time.monotonic()
    result["table1"] = table1(device, ["visual_bert", "vilbert"], out / "work", echo)
    result["seconds"]["table1"] = round(time.monotonic() - began, 1)
    began = time.monotonic()
    result["training"] = training(device, out / "work", updates, echo)
    result["seconds"]["training"] = round(time.monotonic() - began, 1)
    began = time.monotonic()
    bench_result = bench(device, out, echo)
    result["bench"] = {
        "ratios": bench_result.get("ratios"),
        "targets": bench_report.targets_table(bench_result),
        "file": str(out / "bench" / "bench.json"),
    }
    result["seconds"]["bench"] = round(time.monotonic() - began, 1)
    if since is not None:
        result["seconds"]["total_with_install"] = round(time.time() - since, 1)
    result["ok"] = all(r["pass"] for r in result["table1"]) and all(
        r["status"] == record.FINISHED and r["losses_finite"] for r in result["training"]
    )
    atomic.write_json(out / "gpu-check.json", result)
    atomic.write_text(out / "gpu-check.md", markdown(result))
    return result


def _fmt(value, digits=2):
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown(result):
    d = result["device"]
    lines = [
        f"# pekit gpu-check on {d['name']} ({d['type']})",
        "",
        f"torch {d['torch']}, CUDA {d['cuda']}"
        + (
            f", compute capability {d['capability'][0]}.{d['capability'][1]}"
            if d["capability"]
            else ""
        )
        + ".",
        "",
    ]
    if result["scaled_down"]:
        lines += [f"**Scaled down:** {result['scaled_down']}.", ""]
    lines += [
        "## Table I",
        "",
        "| model | mode | total | trained | paper trained | |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["table1"]:
        lines.append(
            f"| {label(r['model'])} | {label(r['mode'])} | {r['total']:,} | {r['trained']:,} "
            f"| {r['paper_trained']:,} | {'pass' if r['pass'] else 'FAIL'} |"
        )
    lines += [
        "",
        "## Training (synthetic HMD-shaped data)",
        "",
        "| settings | mode | updates | updates/s | peak MB | losses finite | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["training"]:
        lines.append(
            f"| {r['settings']} | {label(r['mode'])} | {r['updates']} | {_fmt(r['updates_per_s'])} "
            f"| {_fmt(r['peak_memory_mb'], 0)} | {'yes' if r['losses_finite'] else 'NO'} "
            f"| {r['status']} |"
        )
    lines += [
        "",
        "## Bench",
        "",
        f"All its tables: `{result['bench']['file']}` (and `.md`).",
        *result["bench"]["targets"],
    ]
    seconds = result["seconds"]
    lines += [
        "",
        "Seconds: " + ", ".join(f"{k} {v}" for k, v in seconds.items()),
        "",
        "**All good.**" if result["ok"] else "**Something failed: see above.**",
        "",
    ]
    return "\n".join(lines)


def register(subparsers):
    p = subparsers.add_parser(
        "gpu-check",
        help="Table I, real mmf_runs and the bench on this machine's GPU, in minutes",
        description=__doc__.strip().splitlines()[0],
    )
    p.add_argument("--out", default="results/gpu-check", help="folder for the results")
    p.add_argument(
        "--since",
        type=argtypes.positive_float,
        metavar="EPOCH",
        help="when the installation began (date +%%s): the total time counts it",
    )
    p.set_defaults(func=_main)


def _main(args):
    result = check(args.out, args.since, echo=lambda text: print(f"gpu-check: {text}", flush=True))
    print(markdown(result))
    return 0 if result["ok"] else 1
