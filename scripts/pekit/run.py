"""Run the experiment matrix with MMF: one `mmf_run` per (dataset, model, mode, seed).

Each run lives in <results>/runs/<dataset>/<model>/<mode>/seed<seed>/:
  manifest.json   what ran (versions, command, config, status, times, test metrics)
  train.log       MMF's output (stdout and stderr) for every attempt, appended
  mmf/            MMF's save dir (config.yaml, best.ckpt, current.ckpt, models/, logs/)
  test/<split>/   the test-split evaluation of the best checkpoint, and test/<split>.log
A finished run is skipped; an interrupted or failed one is resumed from its last checkpoint
(`checkpoint.resume=True`); only finished runs are reported.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from . import __version__, report, settings, vocabulary
from .core import argtypes, jsonfile, pins
from .core.atomic import write_json
from .core.digests import sha256_file
from .core.errors import PekitError, UsageError
from .data.facts import dataset_facts
from .vocabulary import DATASETS, DEFAULT_MODELS, MODELS, MODES, mode_overrides

# Test splits evaluated after training; a split whose annotations carry no labels is skipped.
TEST_SPLITS = {"hmd": ("test_seen", "test_unseen"), "mmh": ("test",)}

MANIFEST = "manifest.json"
LOG = "train.log"
SAVE_DIR = "mmf"
ENV_MMF_RUN = "PEKIT_MMF_RUN"
ENV_PROFILE = "PEKIT_PROFILE"

FINISHED, FAILED, INTERRUPTED, RUNNING = "finished", "failed", "interrupted", "running"

# MMF stores git details of its own checkout in every checkpoint; GitPython raises on the
# detached HEAD of a checkout at the pinned commit. The manifest records the commit instead.
NO_GIT_DETAILS = "checkpoint.save_git_details=False"


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class Entry:
    """One point of the experiment matrix and the folder that holds it."""

    def __init__(
        self,
        results,
        dataset,
        model,
        mode,
        seed,
        settings_name="paper",
        batch=None,
        gpus=1,
        data_dir=None,
        extra=(),
        config=None,
    ):
        for kind, name in (("dataset", dataset), ("model", model), ("mode", mode)):
            vocabulary.check(kind, name)
        if int(gpus) < 1:
            raise UsageError(f"GPUS must be at least 1, got {gpus}")
        self.dataset, self.model, self.mode = dataset, model, mode
        self.seed = int(seed)
        self.settings_name = settings_name
        self.settings = settings.get(settings_name)
        self.batch = self.settings.batch_size if batch in (None, "") else int(batch)
        self.gpus = int(gpus)
        if self.batch < 1 or self.batch % self.gpus:
            # MMF splits the global batch evenly over its processes, and asserts it divides.
            raise UsageError(
                f"--batch {self.batch} is not a positive multiple of --gpus {self.gpus}: the "
                "global batch is split evenly over the GPUs"
            )
        self.data_dir = data_dir
        self.extra = list(extra)
        self.config = config
        self.dir = Path(results).resolve() / "runs" / dataset / model / mode / f"seed{self.seed}"

    @property
    def key(self):
        return f"{self.dataset}/{self.model}/{self.mode}/seed{self.seed}"

    @property
    def save_dir(self):
        return self.dir / SAVE_DIR

    @property
    def manifest_path(self):
        return self.dir / MANIFEST

    def describe(self):
        return {
            "dataset": self.dataset,
            "model": self.model,
            "mode": self.mode,
            "seed": self.seed,
            "settings": self.settings_name,
            "batch_size": self.batch,
            "gpus": self.gpus,
        }


def mmf_run_command():
    """How to start MMF: $PEKIT_MMF_RUN, else `mmf_run` on PATH, else `python -m mmf_cli.run`."""
    override = os.environ.get(ENV_MMF_RUN)
    if override:
        return shlex.split(override)
    found = shutil.which("mmf_run")
    if found:
        return [found]
    return [sys.executable, "-m", "mmf_cli.run"]


def experiment_config(entry):
    """The MMF config file for the entry's dataset and model (an explicit one wins)."""
    if entry.config:
        return entry.config
    if entry.dataset == "hmd":
        # The project configs the paper fine-tuned from: VisualBERT from COCO, ViLBERT from CC.
        from .models import HATEFUL_MEMES_CONFIGS

        return HATEFUL_MEMES_CONFIGS[entry.model]
    # The plugin package imports MMF; only its folder is needed here.
    base = _plugin_dir()
    # The plugin mirrors MMF's project layout: from_coco (VisualBERT), from_cc (ViLBERT).
    start = {"visual_bert": "from_coco.yaml", "vilbert": "from_cc.yaml"}[entry.model]
    candidates = [
        base / "configs" / "projects" / "mmh" / entry.model / start,
        base / "configs" / "experiments" / entry.model / "mmh.yaml",
        base / "configs" / entry.model / "mmh.yaml",
        base / "configs" / "mmh" / f"{entry.model}.yaml",
    ]
    for path in candidates:
        if path.is_file():
            return str(path)
    raise PekitError(
        f"no MMF config for mmh/{entry.model}: expected one of "
        + ", ".join(str(c) for c in candidates)
    )


def _plugin_dir():
    from .data.paths import plugin_dir

    return Path(plugin_dir())


def dataset_overrides(entry):
    facts = dataset_facts(entry.dataset)
    name = facts["mmf_dataset"]
    out = []
    if entry.dataset == "mmh":
        out.append(f"env.user_dir={_plugin_dir()}")
    val = facts.get("paper_val_split")
    if val and val != facts.get("mmf_default_val_split"):
        # The paper validated on dev_seen (500 items); MMF's default is dev_unseen.
        annotations = f"{name}/defaults/annotations/{val}.jsonl"
        out.append(f"dataset_config.{name}.annotations.val[0]={annotations}")
    if entry.data_dir:
        out.append(f"env.data_dir={entry.data_dir}")
    return out


def _base_command(entry, run_type, save_dir):
    """What training and testing `entry` share: config, model, dataset, settings, mode."""
    name = dataset_facts(entry.dataset)["mmf_dataset"]
    cmd = mmf_run_command() + [
        f"config={experiment_config(entry)}",
        f"model={entry.model}",
        f"datasets={name}",
        f"run_type={run_type}",
        f"env.save_dir={save_dir}",
        f"training.seed={entry.seed}",
    ]
    cmd += settings.overrides(entry.settings, name, batch_size=entry.batch)
    cmd += mode_overrides(entry.model, entry.mode)
    return cmd + dataset_overrides(entry)


def train_command(entry, resume=False):
    """The exact mmf_run command line for training `entry`."""
    cmd = _base_command(entry, "train_val", entry.save_dir)
    # Every checkpoint_interval MMF also keeps models/model_<update>.ckpt (~450 MB each);
    # best.ckpt and current.ckpt are all that resuming and testing need.
    cmd.append("checkpoint.max_to_keep=1")
    # MMF's default world size is every visible GPU; with N > 1 it spawns one process per GPU
    # itself (mmf_cli/run.py). batch_size stays the global batch.
    cmd.append(f"distributed.world_size={entry.gpus}")
    cmd.append(NO_GIT_DETAILS)
    if resume:
        cmd.append("checkpoint.resume=True")
    return cmd + entry.extra


def test_command(entry, split):
    """mmf_run evaluating the best checkpoint on test split `split`."""
    name = dataset_facts(entry.dataset)["mmf_dataset"]
    cmd = _base_command(entry, "test", entry.dir / "test" / split)
    if entry.dataset == "hmd":
        cmd.append(
            f"dataset_config.{name}.annotations.test[0]={name}/defaults/annotations/{split}.jsonl"
        )
    # resume_pretrained would load only the pre-trained BERT part of the checkpoint.
    cmd += [
        f"checkpoint.resume_file={entry.save_dir / 'best.ckpt'}",
        "checkpoint.resume_pretrained=False",
    ]
    cmd.append(f"distributed.world_size={entry.gpus}")
    cmd.append(NO_GIT_DETAILS)
    return cmd + entry.extra


def _unlabelled(entry, split):
    """True when the split's annotations are here and carry no labels (nothing to score)."""
    if entry.dataset != "hmd":
        return False
    from .data.paths import dataset_dir

    path = dataset_dir(dataset_facts("hmd")["mmf_dataset"], entry.data_dir) / "annotations"
    path = path / f"{split}.jsonl"
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
        return bool(first.strip()) and "label" not in json.loads(first)
    except (OSError, ValueError):
        return False


# --- what ran -------------------------------------------------------------------------------

_PROBE = r"""
import json, os, sys
out = {"python": sys.version.split()[0]}
out["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
try:
    import transformers
    out["transformers"] = transformers.__version__
except Exception as e:
    out["transformers"] = "unavailable: %s" % type(e).__name__
try:
    import torch
    out["torch"] = torch.__version__
    out["cuda"] = torch.version.cuda
    out["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    out["gpu_count"] = torch.cuda.device_count()
except Exception as e:
    out["torch"] = "unavailable: %s" % type(e).__name__
print(json.dumps(out))
"""


@functools.lru_cache(maxsize=None)
def environment(python=None, devices=None):
    """Versions of Python, transformers, torch and CUDA and the GPU name, as MMF will see them
    (with CUDA_VISIBLE_DEVICES=`devices` when given, as the runs get it)."""
    python = python or os.environ.get("PEKIT_MMF_PYTHON") or sys.executable
    env = None if devices is None else dict(os.environ, CUDA_VISIBLE_DEVICES=devices)
    try:
        out = subprocess.run(
            [python, "-c", _PROBE],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            timeout=300,
            check=True,
        ).stdout
        return json.loads(out.decode("utf-8").strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as e:
        return {"python_executable": python, "error": f"probe failed: {e}"}


def kit_revision():
    try:
        rev = (
            subprocess.run(
                ["git", "-C", str(pins.REPO_ROOT), "rev-parse", "HEAD"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                check=True,
            )
            .stdout.decode()
            .strip()
        )
        dirty = (
            subprocess.run(
                ["git", "-C", str(pins.REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                check=True,
            )
            .stdout.decode()
            .strip()
        )
        return {"git_revision": rev, "git_dirty": bool(dirty)}
    except (OSError, subprocess.CalledProcessError):
        return {"git_revision": None, "git_dirty": None}


def provenance(probe=True, devices=None):
    patches = pins.REPO_ROOT / "patches" / "manifest.json"
    mmf = pins.get("mmf")
    return {
        "kit": dict({"version": __version__}, **kit_revision()),
        "profile": os.environ.get(ENV_PROFILE, "local"),
        "patches": {
            "manifest": "patches/manifest.json",
            "sha256": sha256_file(patches) if patches.is_file() else None,
        },
        "mmf": {"commit": mmf["commit"], "version": mmf.get("version")},
        "environment": dict(environment(devices=devices)) if probe else {},
    }


def load_manifest(path):
    """The run's manifest, or None before its first start; a manifest that is no JSON object,
    or lacks what the runner reads, is refused naming the field."""
    if not Path(path).exists():
        return None
    manifest = jsonfile.load(path, "run manifest")
    for field, kind in (("run", dict), ("status", str), ("attempts", list)):
        if not isinstance(manifest.get(field), kind):
            raise PekitError(
                f"{path}: field {field!r} is {manifest.get(field)!r}; expected a "
                f"{kind.__name__}; remove the run folder to start over"
            )
    return manifest


def _alive(pid, host):
    if not pid or host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def state(entry):
    """'new', 'finished', 'failed', 'interrupted' or 'running' (another runner holds it)."""
    manifest = load_manifest(entry.manifest_path)
    if manifest is None:
        return "new"
    status = manifest.get("status")
    if status == RUNNING and not _alive(manifest.get("pid"), manifest.get("host")):
        return INTERRUPTED
    return status


# --- running ------------------------------------------------------------------------------


class _Terminated(Exception):
    pass


def _on_sigterm(signum, frame):
    raise _Terminated()


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
    return sum(
        1 for line in out.stdout.decode(errors="replace").splitlines() if line.startswith("GPU ")
    )


def visible_devices(gpus, environ=None, available=None):
    """CUDA_VISIBLE_DEVICES for a run on `gpus` GPUs: the first `gpus` of those visible.

    With world_size 1 MMF wraps the model in DataParallel over every visible GPU (its
    parallelize_model), which splits the batch and, in its replica threads, drops a bf16
    autocast to fp16 without loss scaling. A run on N GPUs therefore sees exactly N. More than
    one GPU where there are fewer is refused here, before MMF starts (`available`: the
    machine's count, machine_gpus() by default).
    """
    environ = os.environ if environ is None else environ
    current = environ.get("CUDA_VISIBLE_DEVICES")
    if current is None:
        if gpus > 1:
            have = machine_gpus() if available is None else available
            if have < gpus:
                raise UsageError(f"--gpus {gpus}, but this machine has {have} NVIDIA GPUs")
        return ",".join(str(i) for i in range(gpus))
    devices = [d.strip() for d in current.split(",") if d.strip()]
    # None visible with GPUS=1 is a CPU run (MMF falls back to the CPU); more GPUs than visible
    # would fail inside MMF's spawned processes.
    if len(devices) < gpus and (devices or gpus > 1):
        raise UsageError(
            f"GPUS={gpus}, but CUDA_VISIBLE_DEVICES={current} makes only {len(devices)} visible"
        )
    return ",".join(devices[:gpus])


def _execute(cmd, log_path, header, devices):
    """Run `cmd` on the GPUs `devices` (CUDA_VISIBLE_DEVICES), appending its output to
    `log_path`; returns the exit code (negative: signal)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(
            f"# pekit: {header} {_now()}: CUDA_VISIBLE_DEVICES={devices} "
            f"{' '.join(shlex.quote(c) for c in cmd)}\n"
        )
        log.flush()
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=devices)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            return proc.wait()
        except BaseException:
            # The runner was interrupted: stop MMF too, so the next call can resume cleanly.
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise


def run_entry(entry, force=False, test=True, probe=True, echo=None):
    """Train `entry` unless it finished, then evaluate its test splits; returns its manifest."""
    devices = visible_devices(entry.gpus)
    current = state(entry)
    if current == RUNNING:
        pid = load_manifest(entry.manifest_path)["pid"]
        raise PekitError(f"{entry.key} is being run by process {pid} ({entry.dir})")
    manifest = load_manifest(entry.manifest_path) if current != "new" else None
    if force and manifest is not None:
        shutil.rmtree(str(entry.dir))
        manifest, current = None, "new"
    entry.dir.mkdir(parents=True, exist_ok=True)
    if current != FINISHED:
        settings.check_data(entry.settings, dataset_facts(entry.dataset)["mmf_dataset"],
                            entry.data_dir)  # fmt: skip
        resume = current in (FAILED, INTERRUPTED)
        cmd = train_command(entry, resume=resume)
        if echo:
            echo(f"{entry.key}: {'resuming' if resume else 'training'} ({entry.dir})")
        if manifest is None:
            manifest = dict(run=entry.describe(), attempts=[], test={})
        manifest.update(provenance(probe=probe, devices=devices))
        attempt = {
            "start": _now(),
            "resume": resume,
            "command": cmd,
            "cuda_visible_devices": devices,
        }
        manifest["attempts"].append(attempt)
        manifest.update(
            status=RUNNING,
            command=cmd,
            start=manifest.get("start") or attempt["start"],
            end=None,
            exit_status=None,
            pid=os.getpid(),
            host=socket.gethostname(),
            log=LOG,
            save_dir=SAVE_DIR,
        )
        write_json(entry.manifest_path, manifest)
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            code = _execute(cmd, entry.dir / LOG, "train", devices)
        except (KeyboardInterrupt, _Terminated):
            attempt.update(end=_now(), exit_status=None)
            manifest.update(status=INTERRUPTED, end=attempt["end"])
            write_json(entry.manifest_path, manifest)
            raise KeyboardInterrupt() from None
        finally:
            signal.signal(signal.SIGTERM, previous)
        attempt.update(end=_now(), exit_status=code)
        status = FINISHED if code == 0 else (INTERRUPTED if code < 0 else FAILED)
        manifest.update(status=status, end=attempt["end"], exit_status=code)
        manifest["config"] = _config_record(entry)
        manifest["resolved_config"] = _resolved_config(entry)
        write_json(entry.manifest_path, manifest)
        if status != FINISHED:
            return manifest
    if test:
        run_tests(entry, manifest, echo=echo)
    return manifest


def _config_record(entry):
    path = entry.save_dir / "config.yaml"
    if not path.is_file():
        return None
    return {"path": f"{SAVE_DIR}/config.yaml", "sha256": sha256_file(path)}


def _resolved_config(entry):
    """MMF's config.yaml as text: every option the run used, interpolations resolved."""
    try:
        return (entry.save_dir / "config.yaml").read_text(encoding="utf-8")
    except OSError:
        return None


def run_tests(entry, manifest, echo=None):
    """Score the best checkpoint on the dataset's test splits (once per split)."""
    from .logs import parse_file

    tests = manifest.setdefault("test", {})
    for split in TEST_SPLITS[entry.dataset]:
        if tests.get(split, {}).get("status") in (FINISHED, "skipped"):
            continue
        if _unlabelled(entry, split):
            tests[split] = {"status": "skipped", "reason": "annotations carry no labels"}
            write_json(entry.manifest_path, manifest)
            continue
        if echo:
            echo(f"{entry.key}: testing on {split}")
        cmd = test_command(entry, split)
        log = entry.dir / "test" / f"{split}.log"
        record = {
            "start": _now(),
            "command": cmd,
            "log": f"test/{split}.log",
            "checkpoint": f"{SAVE_DIR}/best.ckpt",
        }
        code = _execute(cmd, log, f"test {split}", visible_devices(entry.gpus))
        record.update(end=_now(), exit_status=code, status=FINISHED if code == 0 else FAILED)
        if code == 0:
            parsed = parse_file(log)
            record["metrics"] = parsed["test"]
            # The update MMF restored: the best checkpoint's, as the training log names it.
            loaded = parsed.get("loaded_updates") or [None]
            record["checkpoint_update"] = loaded[-1]
        tests[split] = record
        write_json(entry.manifest_path, manifest)
    return tests


def matrix(
    results, dataset, models, modes, seeds, settings_name, batch, gpus, data_dir, extra, config=None
):
    return [
        Entry(
            results, dataset, model, mode, seed, settings_name, batch, gpus, data_dir, extra, config
        )
        for model in models
        for mode in modes
        for seed in seeds
    ]


def run_matrix(entries, force=False, test=True, echo=None):
    """Run every entry, going on past failures; returns {key: status}."""
    statuses = {}
    for entry in entries:
        if state(entry) == FINISHED and not force and echo:
            echo(f"{entry.key}: finished already, not rerun ({entry.dir})")
        manifest = run_entry(entry, force=force, test=test, echo=echo)
        statuses[entry.key] = manifest["status"]
        if manifest["status"] != FINISHED and echo:
            echo(
                f"{entry.key}: {manifest['status']} (exit status {manifest['exit_status']}); "
                f"see {entry.dir / LOG}"
            )
    return statuses


# --- command line -------------------------------------------------------------------------


def _list(text, allowed, default, what):
    items = [x.strip() for x in (text or "").replace(" ", ",").split(",") if x.strip()]
    if not items:
        return list(default)
    for item in items:
        if allowed is not None and item not in allowed:
            raise UsageError(f"unknown {what} '{item}' (expected one of {', '.join(allowed)})")
    return items


def _optional(kind):
    """`kind`, with "" meaning the default (Make passes empty variables as "")."""

    def parse(text):
        return "" if text == "" else kind(text)

    parse.__name__ = kind.__name__
    return parse


def add_matrix_arguments(p):
    p.add_argument("--dataset", required=True, choices=list(DATASETS))
    p.add_argument("--models", default="", help="comma-separated (default: visual_bert)")
    p.add_argument("--modes", default="", help="comma-separated fc,pe,full (default: all three)")
    p.add_argument("--seeds", default="", help="comma-separated integers (default: 1)")
    p.add_argument("--gpus", default="", type=_optional(argtypes.positive_int),
                   help="GPUs on this node, MMF's own distributed training (default: 1)")  # fmt: skip
    p.add_argument("--batch", default="", type=_optional(argtypes.positive_int),
                   help="global batch size (default: the settings' one)")  # fmt: skip
    p.add_argument(
        "--settings",
        default="",
        help=f"training settings: {', '.join(settings.names())} (default: paper)",
    )
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--data-dir", default=None, help="MMF env.data_dir (default: MMF's own)")
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra MMF override, appended last (repeatable)",
    )
    p.add_argument(
        "--config",
        default=None,
        help="MMF config instead of the paper's project config (e.g. for offline tests)",
    )


def entries_from_args(args):
    try:
        seeds = [int(s) for s in _list(args.seeds, None, ["1"], "seed")]
    except ValueError:
        raise UsageError(f"--seeds must be integers, got '{args.seeds}'") from None
    for item in args.override:
        if "=" not in item:
            raise UsageError(f"--override expects KEY=VALUE, got '{item}'")
    gpus = args.gpus or 1
    entries = matrix(
        args.results,
        args.dataset,
        _list(args.models, MODELS, DEFAULT_MODELS, "model"),
        _list(args.modes, MODES, MODES, "mode"),
        seeds,
        args.settings or settings.DEFAULT,
        args.batch or None,
        gpus,
        args.data_dir,
        args.override,
        args.config,
    )
    visible_devices(gpus)  # the GPUs are there: checked before anything runs or prints
    return entries


def register(subparsers):
    p = subparsers.add_parser(
        "run",
        help="train (and test) experiment runs with MMF",
        description="Train each (model, mode, seed) on a dataset with mmf_run, then score the best "
        "checkpoint on the test splits. Finished runs are skipped; interrupted or failed ones "
        "resume from their last checkpoint.",
    )
    add_matrix_arguments(p)
    p.add_argument("--dry-run", action="store_true", help="print the mmf_run command lines only")
    p.add_argument("--force", action="store_true", help="delete and rerun finished runs")
    p.add_argument("--no-test", action="store_true", help="skip the test-split evaluation")
    p.set_defaults(func=_main)

    r = subparsers.add_parser(
        "reproduce",
        help="run a dataset's experiments, then write the report",
        description="`pekit run` for the matrix, then `pekit report` on the results folder.",
    )
    add_matrix_arguments(r)
    r.add_argument("--no-test", action="store_true", help="skip the test-split evaluation")
    report.add_report_options(r)
    r.set_defaults(func=_reproduce)


def _echo(text):
    print(text, file=sys.stderr, flush=True)


def _main(args):
    entries = entries_from_args(args)
    if args.dry_run:
        for entry in entries:
            cmd = train_command(entry, resume=state(entry) in (FAILED, INTERRUPTED))
            print(" ".join(shlex.quote(c) for c in cmd))
        return 0
    statuses = run_matrix(entries, force=args.force, test=not args.no_test, echo=_echo)
    return 0 if all(s == FINISHED for s in statuses.values()) else 1


def _reproduce(args):
    report.parse_paper_log_args(args.paper_log)  # the report's options, before hours of training
    statuses = run_matrix(entries_from_args(args), test=not args.no_test, echo=_echo)
    report.write_report_from_args(args, _echo)
    return 0 if all(s == FINISHED for s in statuses.values()) else 1
