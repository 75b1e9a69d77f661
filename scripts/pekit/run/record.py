"""RunRecord: what ran, written as run.json in the run's folder and read by the report and by
`pekit adapters`; the run's state; the provenance of an attempt."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import math
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from .. import __version__
from ..core import gitinfo, jsonfile, location, ownership, schema
from ..core.atomic import write_json
from ..core.digests import sha256_file
from ..core.errors import PekitError
from ..facts import pins
from .spec import LOG, SAVE_DIR

RECORD = "run.json"
# What older versions of the kit called the record; read, never written.
LEGACY_RECORD = "manifest.json"
ENV_PROFILE = "PEKIT_PROFILE"

NEW, FINISHED, FAILED, INTERRUPTED, RUNNING = "new", "finished", "failed", "interrupted", "running"
STATUSES = (FINISHED, FAILED, INTERRUPTED, RUNNING)
PRECISIONS = ("fp32", "bf16", "fp16")


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclass
class RunRecord:
    """A run's record. `run` is the spec (RunSpec.describe()); the provenance fields (kit,
    profile, patches, mmf, environment) are those of the latest attempt."""

    run: Dict[str, Any]
    status: str = RUNNING
    identity: Optional[Dict[str, Any]] = None  # what it trains with (run/identity.py)
    attempts: List[Dict[str, Any]] = field(default_factory=list)
    test: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    # Per split (validation and test): MMF's per-example predictions of the best checkpoint
    # (execute.run_predictions).
    predictions: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    command: Optional[List[str]] = None
    start: Optional[str] = None
    end: Optional[str] = None
    exit_status: Optional[int] = None
    pid: Optional[int] = None
    host: Optional[str] = None
    log: str = LOG
    save_dir: str = SAVE_DIR
    kit: Dict[str, Any] = field(default_factory=dict)
    profile: Optional[str] = None
    patches: Dict[str, Any] = field(default_factory=dict)
    mmf: Dict[str, Any] = field(default_factory=dict)
    environment: Dict[str, Any] = field(default_factory=dict)
    config: Optional[Dict[str, Any]] = None
    resolved_config: Optional[str] = None

    @classmethod
    def from_dict(cls, data, where="run record"):
        """The record `data` describes, every field a reader relies on checked (type, range,
        agreement with the others: schema.Fields); fields this version does not know are
        ignored. A refusal is one line naming `where`, the field and what was expected."""
        check = schema.Fields(where, "; remove the run folder to start the run over")
        if not isinstance(data, dict):
            raise PekitError(f"{where}: expected a JSON object, got {schema.kind(data)}")
        _check_run(check, data.get("run"))
        status = check.string(data.get("status"), "status", choices=STATUSES)
        exit_status = check.integer(
            data.get("exit_status"), "exit_status", optional=True, low=-128, high=255
        )
        if not _exit_agrees(status, exit_status):
            check.refuse("exit_status", exit_status, f"{_EXITS[status]} for a {status} run")
        _check_identity(check, data.get("identity"))
        attempts = check.array(data.get("attempts", []), "attempts", limit=100_000)
        for i, attempt in enumerate(attempts):
            _check_attempt(check, attempt, f"attempts[{i}]")
        tests = check.obj(data.get("test", {}), "test")
        for split, result in tests.items():
            at = f"test.{schema.key(split)}"
            check.name(split, at, what="a split name")
            _check_test(check, result, at)
        predictions = check.obj(data.get("predictions", {}), "predictions")
        for split, result in predictions.items():
            at = f"predictions.{schema.key(split)}"
            check.name(split, at, what="a split name")
            _check_prediction(check, result, at)
        check.strings(data.get("command"), "command", optional=True, limit=10_000)
        for key in ("start", "end"):
            check.time(data.get(key), key, optional=True)
        check.integer(data.get("pid"), "pid", optional=True, low=1, high=2**31 - 1)
        check.string(data.get("host"), "host", optional=True, limit=255)
        for key in ("log", "save_dir"):
            value = data.get(key, getattr(cls, key))
            check.string(value, key, pattern=_FILE_NAME, what="a file name")
        out = {k: v for k, v in data.items() if k in _FIELDS}
        for key in ("kit", "patches", "mmf", "environment"):
            out[key] = check.obj(data.get(key), key, optional=True) or {}
        check.string(data.get("profile"), "profile", optional=True, limit=1000)
        config = check.obj(data.get("config"), "config", optional=True)
        if config is not None:
            check.string(config.get("path"), "config.path", optional=True, limit=4096)
            check.sha256(config.get("sha256"), "config.sha256", optional=True)
        check.string(data.get("resolved_config"), "resolved_config", optional=True, limit=1 << 24)
        return cls(**out)

    def to_dict(self):
        return dataclasses.asdict(self)

    def save(self, folder):
        write_json(Path(folder) / RECORD, self.to_dict())

    def test_metrics(self):
        """{split: metrics} of the test splits scored."""
        return {
            split: t["metrics"]
            for split, t in self.test.items()
            if isinstance(t, dict) and t.get("status") == FINISHED and t.get("metrics")
        }


_FIELDS = {f.name for f in dataclasses.fields(RunRecord)}
# A name of a file in the run's folder: no folder, nothing above it.
_FILE_NAME = re.compile(r"^(?!\.\.?$)[^/\x00]{1,255}$")
TEST_STATUSES = (FINISHED, FAILED, "skipped")
PREDICTION_STATUSES = (FINISHED, FAILED)
DATASET_TYPES = ("val", "test")  # MMF's, as a split's predictions were made on it
# A file in the run's folder or below, relative to it: nothing above it, no absolute path.
_RUN_PATH = re.compile(r"^(?!/)(?!(?:[^/]*/)*\.\.?(?:/|$))[^\x00\n]{1,4096}$")
# Metrics the report and study average: scores from 0 to 1 (null where undefined).
SCORES = ("roc_auc", "accuracy", "binary_f1")
# The exit status each state allows (None: not recorded, or no exit: a kill or a live run).
_EXITS = {
    FINISHED: "0 or null",
    FAILED: "a non-zero exit status or null",
    INTERRUPTED: "a non-zero exit status or null",
    RUNNING: "null (it has not exited)",
}


def _exit_agrees(status, code):
    if code is None:
        return True
    return {FINISHED: code == 0, FAILED: code != 0, INTERRUPTED: code != 0}.get(status, False)


def _finite_number(value):
    if type(value) is float:
        return math.isfinite(value)
    return type(value) is int and value.bit_length() <= 1000


def _check_run(check, run):
    """The spec a record keeps (RunSpec.describe()), as the report, status and the identity of
    a record without one read it."""
    check.obj(run, "run")
    for key in ("dataset", "model", "mode"):
        check.name(run.get(key), f"run.{key}")
    check.name(run.get("variant"), "run.variant", optional=True)
    # MMF seeds numpy, which takes 0 to 2**32 - 1.
    check.integer(run.get("seed"), "run.seed", low=0, high=2**32 - 1)
    check.name(run.get("settings"), "run.settings", optional=True)
    check.integer(run.get("batch_size"), "run.batch_size", optional=True, low=1, high=2**31 - 1)
    check.integer(run.get("gpus"), "run.gpus", optional=True, low=1, high=4096)
    check.integer(run.get("nodes"), "run.nodes", optional=True, low=1, high=4096)
    size = check.obj(run.get("size"), "run.size", optional=True)
    if size is not None:
        check.name(size.get("key"), "run.size.key")
        check.integer(size.get("value"), "run.size.value", low=1, high=2**31 - 1)


def _check_identity(check, identity):
    """What a run trained with (run/identity.py), as reuse, the report's settings label and its
    paper-training judgement read it."""
    identity = check.obj(identity, "identity", optional=True)
    if not identity:
        return
    check.name(identity.get("settings"), "identity.settings", optional=True)
    values = check.obj(identity.get("settings_values"), "identity.settings_values", optional=True)
    if values is not None:
        check.integer(
            values.get("batch_size"),
            "identity.settings_values.batch_size",
            optional=True,
            low=1,
            high=2**31 - 1,
        )
    check.integer(
        identity.get("batch_size"), "identity.batch_size", optional=True, low=1, high=2**31 - 1
    )
    check.integer(identity.get("gpus"), "identity.gpus", optional=True, low=1, high=4096)
    check.integer(identity.get("nodes"), "identity.nodes", optional=True, low=1, high=4096)
    check.string(identity.get("device"), "identity.device", optional=True, choices=("cpu",))
    check.string(identity.get("precision"), "identity.precision", optional=True, choices=PRECISIONS)
    check.strings(identity.get("overrides"), "identity.overrides", optional=True, limit=10_000)
    check.string(identity.get("config"), "identity.config", optional=True, limit=4096)
    check.obj(identity.get("pretrained"), "identity.pretrained", optional=True)
    check.string(identity.get("mmf_commit"), "identity.mmf_commit", optional=True, limit=64)
    check.obj(identity.get("patches"), "identity.patches", optional=True)


def _check_attempt(check, attempt, at):
    check.obj(attempt, at)
    check.time(attempt.get("start"), f"{at}.start")
    check.time(attempt.get("end"), f"{at}.end", optional=True)
    check.boolean(attempt.get("resume"), f"{at}.resume", optional=True)
    check.strings(attempt.get("command"), f"{at}.command", optional=True, limit=10_000)
    check.string(
        attempt.get("cuda_visible_devices"), f"{at}.cuda_visible_devices", optional=True, limit=4096
    )
    check.integer(
        attempt.get("exit_status"), f"{at}.exit_status", optional=True, low=-128, high=255
    )
    check.integer(attempt.get("processes"), f"{at}.processes", optional=True, low=1, high=2**20)
    check.integer(attempt.get("nodes"), f"{at}.nodes", optional=True, low=1, high=4096)
    check.string(attempt.get("device"), f"{at}.device", optional=True, choices=("cuda", "cpu"))


def _check_outcome(check, result, at, statuses, what):
    """A test's or predictions' status and exit status, which must agree; returns the status."""
    check.obj(result, at)
    status = check.string(result.get("status"), f"{at}.status", choices=statuses)
    code = check.integer(
        result.get("exit_status"), f"{at}.exit_status", optional=True, low=-128, high=255
    )
    if status == FINISHED and code not in (0, None):
        check.refuse(f"{at}.exit_status", code, f"0 or null for {what}")
    return status


def _check_test(check, result, at):
    """One test split's result (execute.run_tests), as the report and a resumed run read it."""
    _check_outcome(check, result, at, TEST_STATUSES, "a finished test")
    metrics = check.obj(result.get("metrics"), f"{at}.metrics", optional=True) or {}
    for key, value in metrics.items():
        field = f"{at}.metrics.{schema.key(key)}"
        if key in SCORES:
            check.number(value, field, optional=True, low=0, high=1)
        elif key == "update":
            check.integer(value, field, optional=True, low=0)
        elif not (value is None or isinstance(value, str) or _finite_number(value)):
            check.refuse(field, value, "a finite number, a string or null")
    check.strings(result.get("command"), f"{at}.command", optional=True, limit=10_000)
    for key in ("log", "checkpoint", "reason"):
        check.string(result.get(key), f"{at}.{key}", optional=True, limit=4096)
    for key in ("start", "end"):
        check.time(result.get(key), f"{at}.{key}", optional=True)
    check.integer(result.get("checkpoint_update"), f"{at}.checkpoint_update", optional=True, low=0)


def _check_prediction(check, result, at):
    """One split's predictions (execute.run_predictions), as a resumed run and status read them."""
    status = _check_outcome(check, result, at, PREDICTION_STATUSES, "finished predictions")
    check.string(
        result.get("dataset_type"), f"{at}.dataset_type", optional=True, choices=DATASET_TYPES
    )
    for key in ("file", "submission", "log", "checkpoint"):
        path = result.get(key)
        check.string(
            path, f"{at}.{key}", optional=True, pattern=_RUN_PATH, what="a path in the run"
        )
    if status == FINISHED and result.get("file") is None:
        check.refuse(f"{at}.file", None, "the file of finished predictions")
    check.integer(result.get("examples"), f"{at}.examples", optional=True, low=0)
    check.boolean(result.get("labelled"), f"{at}.labelled", optional=True)
    check.integer(result.get("checkpoint_update"), f"{at}.checkpoint_update", optional=True, low=0)
    check.string(result.get("reason"), f"{at}.reason", optional=True, limit=4096)
    check.strings(result.get("command"), f"{at}.command", optional=True, limit=10_000)
    for key in ("start", "end"):
        check.time(result.get(key), f"{at}.{key}", optional=True)


def prediction_failures(rec):
    """{split: reason} of the splits whose predictions failed."""
    return {
        split: p.get("reason") or "failed"
        for split, p in rec.predictions.items()
        if p.get("status") == FAILED
    }


def record_path(folder):
    """The run record of `folder`: run.json, else an older kit's manifest.json, else None."""
    for name in (RECORD, LEGACY_RECORD):
        path = Path(folder) / name
        if path.exists():
            return path
    return None


FOREIGN_FIX = "choose another --results"


def check_folder(folder, force=False):
    """Refuse (OwnershipError, one line) a run folder the kit cannot prove its own: anything
    there but an empty folder or a folder holding a run record; with `force` (which deletes the
    folder), also one reached through a link."""
    folder = Path(folder)
    if not os.path.lexists(str(folder)) or ownership.is_empty_folder(folder):
        return
    if not folder.is_dir():
        raise ownership.refuse(folder, "where pekit keeps a run's folder", FOREIGN_FIX)
    if record_path(folder) is None:
        raise ownership.refuse(
            folder,
            f"not a pekit run folder (no {RECORD}); pekit writes no run into it",
            FOREIGN_FIX,
        )
    if force and folder.is_symlink():
        raise ownership.refuse(
            folder,
            "a run reached through a link: --force deletes only a run folder itself",
            FOREIGN_FIX,
        )


def load(folder):
    """The RunRecord of a run folder, or None before the run's first start."""
    path = record_path(folder)
    if path is None:
        return None
    return RunRecord.from_dict(jsonfile.load(path, "run record"), str(path))


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


def state(spec):
    """new, finished, failed, interrupted or running (another runner holds it)."""
    record = load(spec.dir)
    if record is None:
        return NEW
    if record.status == RUNNING and not _alive(record.pid, record.host):
        return INTERRUPTED
    return record.status


# --- provenance ---------------------------------------------------------------------------

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


def provenance(probe=True, devices=None):
    """The RunRecord fields saying what an attempt ran with."""
    patches = location.kit_root() / "patches" / "manifest.json"
    mmf = pins.get("mmf")
    return {
        "kit": dict({"version": __version__}, **gitinfo.revision(location.kit_root())),
        "profile": os.environ.get(ENV_PROFILE, "local"),
        "patches": {
            "manifest": "patches/manifest.json",
            "sha256": sha256_file(patches) if patches.is_file() else None,
        },
        "mmf": {"commit": mmf["commit"], "version": mmf.get("version")},
        "environment": dict(environment(devices=devices)) if probe else {},
    }


def config_record(spec):
    """The sha256 of MMF's config.yaml of the run, and its text (every option the run used,
    interpolations resolved)."""
    path = spec.save_dir / "config.yaml"
    if not path.is_file():
        return None, None
    return (
        {"path": f"{SAVE_DIR}/config.yaml", "sha256": sha256_file(path)},
        path.read_text(encoding="utf-8", errors="replace"),
    )
