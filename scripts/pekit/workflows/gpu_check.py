"""`pekit gpu-check`: what the kit does on this machine's GPU, measured in minutes, offline.

1. Table I: every model in every mode built through MMF, on the GPU, counted against the paper.
2. Training: real `mmf_run`s (through the kit's runner) of VisualBERT FC and PE on synthetic
   Hateful-Memes-shaped data (pekit.workflows.synthetic), with the paper's settings and with `fast`:
   updates/s, peak memory, finite losses.
3. `pekit bench` with the device's defaults (its Targets table).

The whole check has a budget (--minutes, installation included: --since says when it began).
Each part gets a share of what is left when the check starts; the training updates and the
bench's counts scale with the minutes, and a training run or the bench whose part (or the whole
check) is already over budget is skipped and reported as skipped. An overrun is reported, not a
failure: `ok` is about correctness. A part that raises is recorded (its `error`), `ok` is false
and the later parts still run.

Writes OUT/gpu-check.json and OUT/gpu-check.md (the bench's bench.json/.md and the runs beside
them). Without a GPU it runs scaled down (a few updates a run, the bench's training section)
and says so; there the budget is measured and reported but not enforced.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
import time
import traceback

from ..bench import summary as bench_report
from ..bench.runner import BenchRequest
from ..core import atomic, ownership
from ..facts import models, settings
from ..facts.vocabulary import FC, HMD, MODELS, PAPER_MODEL, PAPER_MODES, PE, label
from ..run import execute, record
from ..run import mmf_log as logs
from ..run.spec import RunSpec
from . import synthetic

GPU_UPDATES = 200  # training updates a run at DEFAULT_MINUTES, scaled linearly with --minutes
MIN_GPU_UPDATES = 10
CPU_UPDATES = 4
# `fast`'s runs on a CPU that only emulates bf16 (settings.cpu_native_bf16): a full-size PE
# update of batch 16 took 5 to 6 minutes there, so these prove the bf16 path on less.
EMULATED_BF16 = {"updates": 2, "batch": 2}
DEFAULT_MINUTES = 8.0
# Each part's share of the time left when the check starts (the installation has had its
# share already): Table I only builds six models, the four mmf_runs are the check's heart, the
# bench measures the rest.
SHARES = {"table1": 0.15, "training": 0.50, "bench": 0.35}
PART_NAMES = {"table1": "Table I", "training": "training", "bench": "bench"}
# The bench's GPU counts scaled with the minutes, never below these.
BENCH_FLOORS = {"updates": 2, "pipeline_updates": 10}
# Fewer bench sections under a small budget: (at least these minutes, --only); None: all.
BENCH_SECTIONS = ((6.0, ()), (3.0, ("loader", "train", "pipeline")), (0.0, ("train",)))
# Without a GPU: the bench's training of VisualBERT FC and PE only, at its CPU counts.
CPU_BENCH = BenchRequest(models=(PAPER_MODEL,), modes=(FC, PE), sections=("train",))
RUNS = [(s.name, mode) for s in (settings.PAPER, settings.FAST) for mode in (FC, PE)]


def cpu_scaled_down(fast):
    """What a check without a GPU leaves out, in words; `fast`: plan_budget's."""
    text = f"no GPU: {CPU_UPDATES} updates a run, "
    if fast["batch"] is not None:
        text += (
            f"the fast runs {fast['updates']} of batch {fast['batch']} (this CPU emulates "
            "bf16: no AVX-512, and bf16 updates run tens of times slower than float32 ones), "
        )
    return text + "the bench's training section only (VisualBERT FC and PE)"


def _device():
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda"), torch.cuda.get_device_name(0)
    return torch.device("cpu"), platform.processor() or platform.machine()


# --- the budget: pure functions ---------------------------------------------------------------


def plan_budget(minutes, spent_before, on_gpu, cpu_bf16=True):
    """What a check of `minutes` (installation included) may spend, `spent_before` seconds
    having gone before it started: each part's seconds, the training updates a run, the `fast`
    runs' updates and batch (None: the settings'), the bench's request (a BenchRequest), what
    was scaled (text or None) and whether skipping is enforced. `cpu_bf16`: whether a CPU
    computes bf16 natively (no GPU only)."""
    from ..bench.runner import DEFAULTS

    if not minutes > 0:
        raise ValueError(f"minutes must be above 0, got {minutes}")
    total = minutes * 60.0
    left = max(total - max(spent_before, 0.0), 0.0)
    parts = {part: round(share * left, 1) for part, share in SHARES.items()}
    factor = minutes / DEFAULT_MINUTES
    common = {
        "minutes": minutes,
        "total_s": total,
        "before_check_s": round(spent_before, 1),
        "left_s": round(left, 1),
        "parts": parts,
    }
    if not on_gpu:
        fast = {"updates": CPU_UPDATES, "batch": None} if cpu_bf16 else dict(EMULATED_BF16)
        return {
            **common,
            "updates": CPU_UPDATES,
            "fast": fast,
            "bench": CPU_BENCH,
            "enforced": False,
            "scaled": (
                "no GPU: the CPU counts whatever the minutes; the budget is measured and "
                "reported, not enforced"
            ),
        }
    updates = max(MIN_GPU_UPDATES, round(GPU_UPDATES * factor))
    counts = {
        name: max(BENCH_FLOORS[name], round(DEFAULTS[name][0] * factor)) for name in BENCH_FLOORS
    }
    sections = next(only for least, only in BENCH_SECTIONS if minutes >= least)
    request = BenchRequest(
        counts=(("updates", counts["updates"]), ("pipeline_updates", counts["pipeline_updates"])),
        sections=tuple(sections),
    )
    scaled = None
    if minutes != DEFAULT_MINUTES:
        scaled = (
            f"{minutes:g}-minute budget: {updates} training updates a run "
            f"({GPU_UPDATES} at {DEFAULT_MINUTES:g} minutes"
            + (f", at least {MIN_GPU_UPDATES}" if updates == MIN_GPU_UPDATES else "")
            + f"); bench {counts['updates']} updates, {counts['pipeline_updates']} pipeline "
            f"updates ({DEFAULTS['updates'][0]} and {DEFAULTS['pipeline_updates'][0]})"
            + (f", sections {','.join(sections)} only" if sections else "")
        )
    return {
        **common,
        "updates": updates,
        "fast": {"updates": updates, "batch": None},
        "bench": request,
        "enforced": True,
        "scaled": scaled,
    }


def skip_reason(part, part_budget_s, part_spent_s, check_spent_s, check_budget_s):
    """Why what comes next in `part` is skipped ("over budget: ..."), or None to go on."""
    if check_spent_s >= check_budget_s:
        return (
            f"over budget: the check has spent {check_spent_s:.0f} s of its "
            f"{check_budget_s:.0f} s, installation included"
        )
    if part_spent_s >= part_budget_s:
        return (
            f"over budget: {PART_NAMES.get(part, part)} has spent {part_spent_s:.0f} s "
            f"of its {part_budget_s:.0f} s"
        )
    return None


def one_line(exc):
    """An exception as one line: its type and message."""
    text = " ".join(str(exc).split())
    if len(text) > 500:
        text = text[:497] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- the device -------------------------------------------------------------------------------


def nvidia_driver(timeout=10):
    """The NVIDIA driver version from nvidia-smi, or None (no nvidia-smi, an error, a hang)."""
    try:
        proc = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    lines = proc.stdout.strip().splitlines() if proc.returncode == 0 else []
    return (lines[0].strip() or None) if lines else None


def device_facts(device, name):
    """What a performance report says about the machine: the bench's device facts, and the GPU
    count and memory, the driver, cuDNN and the CPU."""
    import torch

    from ..bench.runner import _cpu_name, device_info

    on_gpu = device.type == "cuda"
    facts = {**device_info(device), "name": name, "capability": None}
    facts.update(
        count=torch.cuda.device_count() if on_gpu else 0,
        memory_gib=None,
        driver=nvidia_driver(),
        cudnn=None,
        cpu=_cpu_name(),
    )
    if on_gpu:
        facts["capability"] = list(torch.cuda.get_device_capability(device))
        facts["memory_gib"] = round(
            torch.cuda.get_device_properties(device).total_memory / 2**30, 1
        )
    try:
        facts["cudnn"] = (
            torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        )
    except Exception:  # noqa: BLE001 - a fact we may not have, never a failure
        facts["cudnn"] = None
    return facts


# --- the parts --------------------------------------------------------------------------------


def table1(device, model_names, workdir, echo, rows=None):
    """Each (model, mode)'s total and trained parameters, built by MMF and moved to `device`;
    appended to `rows` (kept when a later model raises)."""
    reference = {(r["model"], r["mode"]): r for r in models.table1_rows()}
    rows = [] if rows is None else rows
    for model in model_names:
        for mode in PAPER_MODES:
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


def _skipped_run(name, mode, reason):
    return {
        "settings": name,
        "model": PAPER_MODEL,
        "mode": mode,
        "status": "skipped",
        "reason": reason,
        "updates": None,
        "updates_per_s": None,
        "peak_memory_mb": None,
        "losses_finite": None,
        "seconds": 0.0,
        "log": None,
    }


WORLD_MARK = ".pekit-gpu-check-world"  # in the check's synthetic world: the check made it


def _check_world(root):
    """Refuse a folder at the world's place that the check did not make; returns whether one
    it made (and may remove) is there."""
    return ownership.check_marked(
        root, WORLD_MARK, "not the synthetic world gpu-check makes", "choose another --out"
    )


def training(device, workdir, updates, echo, skip=None, rows=None, fast=None):
    """VisualBERT FC and PE, paper and fast settings, through the runner on the synthetic world;
    appended to `rows`. `fast`: the fast runs' {"updates", "batch"} where not `updates` and the
    settings' batch. Before each run `skip()` may give a reason to skip it (a row with status
    "skipped" and that reason)."""
    fast = fast or {"updates": updates, "batch": None}
    rows = [] if rows is None else rows
    world = None
    saved = dict(os.environ)
    try:
        for name, mode in RUNS:
            reason = skip() if skip else None
            if reason:
                echo(f"training: VisualBERT {mode}, {name} settings skipped ({reason})")
                rows.append(_skipped_run(name, mode, reason))
                continue
            if world is None:
                root = workdir / "world"
                if _check_world(root):
                    ownership.remove_marked(root, WORLD_MARK)  # a killed check's
                ownership.make_marked(root, WORLD_MARK, "made by pekit gpu-check\n")
                world = synthetic.build_world(root, sizes={"train": 64, "dev_seen": 16})
                env = synthetic.run_env(world)
                if device.type != "cuda":
                    env[settings.ENV_PRECISION] = "bf16"  # fast's mixed precision, on the CPU
                os.environ.update(env)
            n = fast["updates"] if name == settings.FAST.name else updates
            interval = max(n // 2, 1)
            extra = synthetic.runner_overrides(world, PAPER_MODEL) + [
                f"training.max_updates={n}",
                f"training.evaluation_interval={interval}",
                f"training.checkpoint_interval={interval}",
                f"training.log_interval={max(n // 20, 1)}",
                "scheduler.params.num_warmup_steps=1",
            ]
            spec = RunSpec(
                workdir / "runs" / name,
                HMD,
                PAPER_MODEL,
                mode,
                1,
                settings=settings.get(name),
                batch=fast["batch"] if name == settings.FAST.name else None,
                data_dir=str(world.data_dir),
                extra=extra,
                config=synthetic.CONFIGS[PAPER_MODEL],
            )
            echo(f"training: VisualBERT {mode}, {name} settings, {n} updates, batch {spec.batch}")
            began = time.monotonic()
            run = execute.run(spec, force=True, test=False, probe=False)
            parsed = logs.parse_file(spec.dir / run.log)
            losses = [e.get("loss") for e in parsed["train"] if "loss" in e]
            rows.append(
                {
                    "settings": name,
                    "model": PAPER_MODEL,
                    "mode": mode,
                    "status": run.status,
                    "updates": parsed["last_update"],
                    "updates_per_s": parsed["ups_timed"] or parsed["ups"],
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
        if world is not None:
            ownership.remove_marked(world.root, WORLD_MARK)
    return rows


def bench(device, out, echo, request):
    """The bench of `request`, written to OUT/bench/bench.json (and .md); returns its result."""
    from ..bench import options, runner

    json_out = out / "bench" / "bench.json"
    result = runner.run(runner.plan(request), json_out, echo=echo)
    options.write_outputs(result, json_out)
    return result


# --- the check --------------------------------------------------------------------------------


def _request_text(request):
    """A BenchRequest's to_dict() in words: `counts updates 10, pipeline_updates 50; sections
    train`."""

    def shown(value):
        if isinstance(value, dict):
            return ", ".join(f"{k} {v}" for k, v in value.items())
        if isinstance(value, list):
            return ",".join(value)
        return str(value)

    return "; ".join(f"{key} {shown(value)}" for key, value in request.items())


def _part(part, result, echo, body):
    """Run one part, timed; an exception becomes the part's error (one line), not the end."""
    began = time.monotonic()
    try:
        body()
    except Exception as exc:  # noqa: BLE001 - recorded, and the later parts still run
        result["errors"][part] = one_line(exc)
        echo(f"{PART_NAMES[part]} failed: {result['errors'][part]}")
        traceback.print_exc(file=sys.stderr)
    finally:
        result["seconds"][part] = round(time.monotonic() - began, 1)


def environment_findings():
    """`pekit doctor`'s findings about the environment (Python, torch and the GPUs, the
    packages and their imports, MMF, the patches), without the datasets and assets a check on
    synthetic data does not need."""
    from . import doctor

    try:
        found = [doctor.check_python(), *doctor.check_torch(), *doctor.check_packages()]
        found += [doctor.check_mmf(), *doctor.check_patches()]
    except Exception as e:  # the doctor's own failure is a finding, not the end of the check
        return [{"status": "FAIL", "what": "doctor", "detail": one_line(e)}]
    return [{"status": f.status, "what": f.what, "detail": f.detail} for f in found]


def check(out, since=None, echo=print, minutes=DEFAULT_MINUTES):
    """Run the three parts within `minutes`; returns the result written to OUT/gpu-check.json.
    `since` (seconds since the epoch) is when the installation began: the total time and the
    budget count it."""
    began_check = time.monotonic()
    spent_before = max(time.time() - since, 0.0) if since is not None else 0.0
    out = atomic.output_folder(out)
    # What the check would replace, refused before anything runs: its world, its run folders.
    _check_world(out / "work" / "world")
    for run_name, mode in RUNS:
        spec = RunSpec(out / "work" / "runs" / run_name, HMD, PAPER_MODEL, mode, 1)
        record.check_folder(spec.dir, force=True)
    device, name = _device()
    on_gpu = device.type == "cuda"
    plan = plan_budget(minutes, spent_before, on_gpu, cpu_bf16=on_gpu or settings.cpu_native_bf16())

    def check_spent():
        return spent_before + time.monotonic() - began_check

    def reason(part, part_spent):
        if not plan["enforced"]:
            return None
        budget = plan["parts"][part]
        return skip_reason(part, budget, part_spent, check_spent(), plan["total_s"])

    result = {
        "kind": "pekit-gpu-check",
        "device": device_facts(device, name),
        "scaled_down": None if on_gpu else cpu_scaled_down(plan["fast"]),
        "budget": {
            "minutes": minutes,
            "before_check_s": plan["before_check_s"],
            "left_s": plan["left_s"],
            "enforced": plan["enforced"],
            "parts": {
                p: {"budget_s": b, "spent_s": None, "over": False} for p, b in plan["parts"].items()
            },
            "scaled": plan["scaled"],
            "skipped": [],
        },
        "errors": {},
        "seconds": {},
        "table1": [],
        "training": [],
        "bench": None,
    }
    skipped = result["budget"]["skipped"]
    result["doctor"] = environment_findings()

    def run_table1():
        table1(device, list(MODELS), out / "work", echo, rows=result["table1"])

    _part("table1", result, echo, run_table1)

    def run_training():
        began = time.monotonic()
        training(
            device,
            out / "work",
            plan["updates"],
            echo,
            skip=lambda: reason("training", time.monotonic() - began),
            rows=result["training"],
            fast=plan["fast"],
        )

    _part("training", result, echo, run_training)
    for r in result["training"]:
        if r["status"] == "skipped":
            what = f"VisualBERT {label(r['mode'])}, {r['settings']} settings"
            skipped.append({"part": "training", "what": what, "reason": r["reason"]})

    def run_bench():
        why = reason("bench", 0.0)
        if why:
            echo(f"bench skipped ({why})")
            skipped.append({"part": "bench", "what": "the bench", "reason": why})
            return
        bench_result = bench(device, out, echo, plan["bench"])
        result["bench"] = {
            "request": plan["bench"].to_dict(),
            "ratios": bench_result.get("ratios"),
            "targets": bench_report.targets_table(bench_result),
            "file": str(out / "bench" / "bench.json"),
        }

    _part("bench", result, echo, run_bench)

    for part, entry in result["budget"]["parts"].items():
        entry["spent_s"] = result["seconds"][part]
        entry["over"] = entry["spent_s"] > entry["budget_s"]
    if since is not None:
        result["seconds"]["total_with_install"] = round(time.time() - since, 1)
    ran = [r for r in result["training"] if r["status"] != "skipped"]
    result["ok"] = (
        not result["errors"]
        and not any(f["status"] == "FAIL" for f in result["doctor"])
        and all(r["pass"] for r in result["table1"])
        and all(r["status"] == record.FINISHED and r["losses_finite"] for r in ran)
    )
    atomic.write_json(out / "gpu-check.json", result)
    atomic.write_text(out / "gpu-check.md", markdown(result))
    return result


# --- the report -------------------------------------------------------------------------------


def _fmt(value, digits=2):
    return "-" if value is None else f"{value:,.{digits}f}"


def _device_line(d):
    parts = []
    if d["type"] == "cuda":
        gpu = f"{d.get('count') or 1} × {d['name']}"
        if d.get("capability"):
            gpu += f", compute capability {d['capability'][0]}.{d['capability'][1]}"
        if d.get("memory_gib") is not None:
            gpu += f", {d['memory_gib']:g} GiB"
        parts.append(gpu)
    else:
        parts.append("no GPU")
    parts.append(f"NVIDIA driver {d.get('driver') or '-'}")
    parts.append(f"torch {d['torch']}, CUDA {d['cuda'] or '-'}, cuDNN {d.get('cudnn') or '-'}")
    parts.append(f"Python {d.get('python') or '-'}")
    parts.append(f"CPU {d.get('cpu') or '-'} ({d.get('cpu_count') or '?'} cores)")
    return "; ".join(parts) + "."


def _error_lines(result, part):
    error = result.get("errors", {}).get(part)
    return [f"**Error:** `{error}`", ""] if error else []


def _budget_lines(result):
    budget = result.get("budget")
    if not budget:
        return []
    lines = [
        "## Budget",
        "",
        f"{budget['minutes']:g} minutes, installation included: {budget['before_check_s']:g} s "
        f"before the check, {budget['left_s']:g} s left for its parts"
        + ("" if budget.get("enforced", True) else " (measured, not enforced)")
        + ".",
        "",
        "| part | seconds | budget | |",
        "|---|---|---|---|",
    ]
    for part, entry in budget["parts"].items():
        spent = "-" if entry["spent_s"] is None else f"{entry['spent_s']:g}"
        lines.append(
            f"| {PART_NAMES.get(part, part)} | {spent} | {entry['budget_s']:g} "
            f"| {'OVER' if entry['over'] else 'within'} |"
        )
    lines.append("")
    if budget.get("scaled"):
        lines += [f"**Scaled:** {budget['scaled']}.", ""]
    if budget.get("skipped"):
        lines += ["**Skipped:**", ""]
        for s in budget["skipped"]:
            lines.append(f"- {PART_NAMES.get(s['part'], s['part'])}: {s['what']} ({s['reason']})")
        lines.append("")
    return lines


def markdown(result):
    d = result["device"]
    lines = [f"# pekit gpu-check on {d['name']} ({d['type']})", "", _device_line(d), ""]
    if result["scaled_down"]:
        lines += [f"**Scaled down:** {result['scaled_down']}.", ""]
    lines += _budget_lines(result)
    findings = result.get("doctor") or []
    failed = [f for f in findings if f["status"] == "FAIL"]
    lines += [
        "## Doctor",
        "",
        f"{len(findings)} checks of the environment, {len(failed)} FAIL"
        + ("." if not failed else ":"),
        *[f"- FAIL {f['what']}: {f['detail']}" for f in failed],
        "",
    ]
    lines += [
        "## Table I",
        "",
        *_error_lines(result, "table1"),
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
        *_error_lines(result, "training"),
        "| settings | mode | updates | updates/s | peak MB | losses finite | seconds | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["training"]:
        finite = "-" if r["losses_finite"] is None else ("yes" if r["losses_finite"] else "NO")
        lines.append(
            f"| {r['settings']} | {label(r['mode'])} | {r['updates'] if r['updates'] is not None else '-'} "
            f"| {_fmt(r['updates_per_s'])} | {_fmt(r['peak_memory_mb'], 0)} | {finite} "
            f"| {_fmt(r.get('seconds'), 1)} | {r['status']} |"
        )
    lines += ["", "## Bench", "", *_error_lines(result, "bench")]
    if result.get("bench"):
        b = result["bench"]
        lines.append(f"All its tables: `{b['file']}` (and `.md`).")
        if b.get("request"):
            lines.append(f"Asked for: {_request_text(b['request'])}.")
        lines += b["targets"]
    elif not result.get("errors", {}).get("bench"):
        lines.append("Not run: see the budget's skipped items.")
    seconds = result["seconds"]
    lines += [
        "",
        "Seconds: " + ", ".join(f"{k} {v}" for k, v in seconds.items()),
        "",
        "**All good.**" if result["ok"] else "**Something failed: see above.**",
        "",
    ]
    return "\n".join(lines)
