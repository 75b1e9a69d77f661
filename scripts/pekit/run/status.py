"""`pekit status`: every run folder under RESULTS/runs, its state and how far training got, read
from its run.json and train.log (run/mmf_log.py's parsing, through run/progress.py), and the
splits whose predictions failed."""

from __future__ import annotations

import datetime
import types
from pathlib import Path

from ..core.durations import readable
from ..core.errors import PekitError
from . import mmf_log as logs
from . import progress, record
from .spec import LOG

ERROR = "error"
# What a broken run folder raises while it is read (its record's checked reader refuses in one
# line; its log cannot be opened): shown on its line, never a crash.
UNREADABLE = (PekitError, OSError)


def run_folders(results):
    """The run folders under `results`/runs (runs/<dataset>/<model>/<variant>/seed<N>)."""
    runs = Path(results) / "runs"
    return sorted(p for p in runs.glob("*/*/*/seed*") if p.is_dir())


def _time(text):
    try:
        return datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def wall_time(rec, state, now=None):
    """Seconds the run's attempts took, from run.json; the live attempt counts until `now`. An
    attempt whose runner died has no end: it is left out. None when no attempt tells."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    total, known = 0.0, False
    for i, attempt in enumerate(rec.attempts):
        if not isinstance(attempt, dict):
            continue
        start, end = _time(attempt.get("start")), _time(attempt.get("end"))
        if end is None and state == record.RUNNING and i == len(rec.attempts) - 1:
            end = now
        if start is not None and end is not None:
            total += (end - start).total_seconds()
            known = True
    return total if known else None


def _progress(folder, rec, key):
    """The Progress of the run's log (empty when there is none yet)."""
    found = progress.Progress(key, progress.max_updates(rec.command if rec else None))
    log = folder / (rec.log if rec else LOG)
    if log.is_file():
        with open(log, encoding="utf-8", errors="replace") as f:
            found.feed(logs.read_lines(f))
    return found


def describe(folder, runs, now=None):
    """A run folder's status as a dict; an unreadable one's has state 'error' and its error."""
    key = "/".join(folder.relative_to(runs).parts)
    row = {"key": key, "folder": str(folder)}
    try:
        rec = record.load(folder)
        # record.state() reads only the spec's folder; it also tells a dead runner's run.
        state = record.state(types.SimpleNamespace(dir=folder)) if rec else record.NEW
        found = _progress(folder, rec, key)
    except UNREADABLE as e:
        row.update(state=ERROR, error=" ".join(str(e).split()) or type(e).__name__)
        return row
    row["state"] = state
    row.update(found.summary())
    if state != record.RUNNING:
        row["eta_s"] = None  # a stopped run has no time left, whatever its last rate
    wall = wall_time(rec, state, now) if rec else None
    if wall is None:
        wall = found.parsed["wall_time_s"]
    row["wall_time_s"] = None if wall is None else round(wall)
    # Failed predictions leave the training finished; they are shown beside it, not hidden.
    row["predictions_failed"] = record.prediction_failures(rec) if rec else {}
    return row


def status(results, now=None):
    runs = Path(results) / "runs"
    return [describe(folder, runs, now) for folder in run_folders(results)]


def line(row, width=0):
    """'KEY  STATE  update N/M  best val AUROC X @U  left T  wall T' for one row, and the splits
    whose predictions failed, with the first one's reason."""
    head = f"{row['key']:<{width}}  {row['state']:<11}"
    if row["state"] == ERROR:
        return f"{head}  {row['error']}"
    update = "n/a" if row["update"] is None else row["update"]
    total = f"/{row['max_updates']}" if row["max_updates"] else ""
    parts = [f"update {update}{total}"]
    if row["best_val_auroc"] is None:
        parts.append("best val AUROC n/a")
    else:
        parts.append(f"best val AUROC {row['best_val_auroc']:.4f} @{row['best_update']}")
    if row["state"] == record.RUNNING:
        parts.append(f"left {readable(row['eta_s'])}")
    parts.append(f"wall {readable(row['wall_time_s'])}")
    failed = row.get("predictions_failed")
    if failed:
        first = " ".join(str(next(iter(failed.values()))).split())  # one line, whatever it held
        parts.append(f"predictions failed on {', '.join(failed)}: {first}")
    return f"{head}  {'  '.join(parts)}"
