"""RunRecord: what ran, written as run.json in the run's folder and read by the report and by
`pekit adapters`; the run's state; the provenance of an attempt."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from .. import __version__
from ..core import gitinfo, jsonfile, ownership, pins
from ..core.atomic import write_json
from ..core.digests import sha256_file
from ..core.errors import PekitError
from .spec import LOG, SAVE_DIR

RECORD = "run.json"
# What older versions of the kit called the record; read, never written.
LEGACY_RECORD = "manifest.json"
ENV_PROFILE = "PEKIT_PROFILE"

NEW, FINISHED, FAILED, INTERRUPTED, RUNNING = "new", "finished", "failed", "interrupted", "running"
STATUSES = (FINISHED, FAILED, INTERRUPTED, RUNNING)


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
        """The record `data` describes, every field a reader relies on checked; fields this
        version does not know are ignored."""

        def refuse(name, value, expected):
            raise PekitError(
                f"{where}: field {name!r} is {value!r}; expected {expected}; remove the run "
                "folder to start the run over"
            )

        if not isinstance(data, dict):
            raise PekitError(f"{where}: expected a JSON object")
        run = data.get("run")
        if not isinstance(run, dict):
            refuse("run", run, "an object")
        for key, kind in (("dataset", str), ("model", str), ("mode", str), ("seed", int)):
            if type(run.get(key)) is not kind:
                refuse(f"run.{key}", run.get(key), "a string" if kind is str else "a whole number")
        if data.get("status") not in STATUSES:
            refuse("status", data.get("status"), f"one of {', '.join(STATUSES)}")
        if not isinstance(data.get("identity") or {}, dict):
            refuse("identity", data.get("identity"), "an object")
        for name, kind in (("attempts", list), ("test", dict)):
            if not isinstance(data.get(name, kind()), kind):
                refuse(name, data.get(name), f"a {kind.__name__}")
        log = data.get("log", LOG)
        if not isinstance(log, str) or "/" in log or log in ("", ".", ".."):
            refuse("log", log, "a file name")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

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
    patches = pins.REPO_ROOT / "patches" / "manifest.json"
    mmf = pins.get("mmf")
    return {
        "kit": dict({"version": __version__}, **gitinfo.revision(pins.REPO_ROOT)),
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
        path.read_text(encoding="utf-8"),
    )
