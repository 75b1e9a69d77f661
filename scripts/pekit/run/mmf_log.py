"""Read MMF training logs (ours and the paper's published ones) into one tidy dict per log.

MMF a34bc2d writes one `key: value, key: value` line per summary (mmf/utils/logger.py
`log_progress`), prefixed by a timestamp and logger name (green ANSI on stdout, plain in
save_dir/train.log):
- training, every log_interval updates (callbacks/logistics.py `on_update_end`):
  `progress: 100/22000, train/<ds>/cross_entropy: 0.7194, train/<ds>/cross_entropy/avg: ...,
  train/total_loss: ..., train/total_loss/avg: ..., max mem: 5831.0, epoch: 1, num_updates: 100,
  iterations: 100, max_updates: 22000, lr: 0.00001, ups: 2.04, time: 49s 123ms,
  time_since_start: 52s 789ms, eta: 3h 10m 02s`
- validation, every evaluation_interval updates (`on_validation_end`, early stopping's info):
  `progress: 1000/22000, val/<ds>/cross_entropy: ..., val/total_loss: ..., val/<ds>/accuracy: ...,
  val/<ds>/binary_f1: ..., val/<ds>/roc_auc: ..., num_updates: 1000, ..., val_time: 20s 337ms,
  best_update: 1000, best_iteration: 1000, best_val/<ds>/roc_auc: 0.577900`
- after training, the restored best checkpoint is evaluated again (`on_test_end`, no val_time) and
  a test run writes the same line with `test/` keys; then `Finished run in <time>`.
- `Total Parameters: X. Trained Parameters: Y` (utils/general.py `print_model_parameters`).
- `Current num updates: N` after MMF loaded a checkpoint (utils/checkpoint.py): a resumed attempt,
  or the checkpoint a test run scores.
A resumed run repeats updates after its last checkpoint: the last line for an update wins.
"""

from __future__ import annotations

import math
import os
import re
import stat
import statistics

from ..core.errors import PekitError

ANSI = re.compile(r"\x1b\[[0-9;]{0,32}[A-Za-z]")
# Counts of at most 15 digits: a longer one is no count of MMF's (and no float holds it).
PARAMS = re.compile(r"Total Parameters: (\d{1,15})\. Trained Parameters: (\d{1,15})(?!\d)")
FINISHED = re.compile(r"Finished run in (.{1,200}?)\s*$")
LOADED = re.compile(r"Current num updates: (\d{1,15})(?!\d)")
DURATION = re.compile(r"(\d{1,12})(ms|h|m|s)")
# Where a summary starts: its progress field, or (a test run has no max_updates, so no progress)
# its first metric. Keys are bounded, so that a hostile line costs linear time.
SUMMARY = re.compile(r"(?:progress: |(?:train|val|test)/[^\s:,]{1,256}: )")
# The longest line read: MMF's summaries are a few KiB; the rest of a longer line is skipped.
LINE_LIMIT = 1 << 16
# The most updates (or parameters) a count of a log may say; more is not a training's.
MAX_COUNT = 10**15
# Scores from 0 to 1: a value outside is no score (read as undefined, like MMF's nan).
SCORES = ("roc_auc", "accuracy", "binary_f1")


def duration_seconds(text):
    """MMF's Timer format ('1h 30m 02s 123ms') in seconds; None if it is not one."""
    parts = DURATION.findall(text or "")
    if not parts or DURATION.sub("", text).strip():
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return round(sum(int(n) * scale[u] for n, u in parts), 3)


def _number(value):
    """A field's value: a float where it is a number (an infinite one read as nan: no
    measurement), else its text."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return value
    return number if not math.isinf(number) else math.nan


def _finite(value, low=None):
    """`value` where it is a finite float (at least `low`), else None."""
    if not isinstance(value, float) or not math.isfinite(value):
        return None
    return value if low is None or value >= low else None


def parse_fields(text):
    """'progress: 1/2, a: 0.5, max mem: 10.0' -> {'progress': '1/2', 'a': 0.5, 'max mem': 10.0}."""
    fields = {}
    for item in text.split(", "):
        key, sep, value = item.partition(": ")
        if not sep:
            # A value holding ', ' (an experiment name): keep it with the previous field.
            if fields:
                last = list(fields)[-1]
                fields[last] = f"{fields[last]}, {item}"
            continue
        fields[key.strip()] = _number(value.strip())
    return fields


def _split_metrics(fields, split):
    """{'val/hmd/roc_auc': x, 'val/total_loss': y} -> ('hmd', {'roc_auc': x, 'loss': y})."""
    dataset, out = None, {}
    for key, value in fields.items():
        parts = key.split("/")
        if parts[0] != split or not isinstance(value, float):
            continue
        if parts[1:] == ["total_loss"]:
            out["loss"] = value
        elif parts[1:] == ["total_loss", "avg"]:
            out["loss_avg"] = value
        elif len(parts) == 3:
            dataset = parts[1]
            if parts[2] in SCORES and not 0.0 <= value <= 1.0:
                value = math.nan  # no score: undefined, as MMF writes a one-class AUROC
            out[parts[2]] = value
    return dataset, out


def _whole(value):
    """A count from a log field, or None when it is not a finite number from 0 to MAX_COUNT."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return int(number) if math.isfinite(number) and 0 <= number <= MAX_COUNT else None


def _progress(fields):
    done, _, total = str(fields.get("progress", "")).partition("/")
    return _whole(done), _whole(total)


def parse_lines(lines, source=None):
    """Parse MMF log lines; returns the tidy dict described in the module docstring."""
    train, val, evals = {}, {}, []
    params = None
    dataset = max_updates = None
    best_update = criterion = None
    segments, seg_time, last_update, seg_started = [], 0.0, None, False
    finished_in = None
    peak_mem = None
    ups = []
    ups_timed = []  # from each log line's `time` (ms precision): MMF's `ups` divides by whole
    prev_update = None  # seconds, so it cannot tell 3 updates in 0.15 s from 3 in 1 s
    loaded = []
    for raw in lines:
        line = ANSI.sub("", raw.rstrip("\n"))
        m = PARAMS.search(line)
        if m:
            total, trained = int(m.group(1)), int(m.group(2))
            if not 0 <= trained <= total or total == 0:
                continue  # no model's counts
            params = {"total": total, "trained": trained}
            if seg_started:
                # MMF starting again on the same save dir: a resumed attempt.
                segments.append(seg_time)
                seg_time, seg_started = 0.0, False
            continue
        m = LOADED.search(line)
        if m:
            loaded.append(int(m.group(1)))
            continue
        m = FINISHED.search(line)
        if m:
            finished_in = duration_seconds(m.group(1))
            continue
        m = SUMMARY.search(line)
        if not m:
            continue
        fields = parse_fields(line[m.start() :])
        update, total = _progress(fields)
        if total is not None:
            max_updates = total
        if update is not None and any(k.startswith("train/") for k in fields):
            ds, metrics = _split_metrics(fields, "train")
            dataset = dataset or ds
            if seg_started and last_update is not None and update <= last_update:
                # A resumed attempt whose start-up lines are missing: the clock restarted.
                segments.append(seg_time)
                seg_time = 0.0
                prev_update = None
            if not seg_started:
                prev_update = None
            last_update, seg_started = update, True
            elapsed = duration_seconds(str(fields.get("time_since_start", "")))
            if elapsed is not None:
                seg_time = max(seg_time, elapsed)
            entry = {"update": update, **metrics}
            if _finite(fields.get("lr")) is not None:
                entry["lr"] = fields["lr"]
            if _finite(fields.get("ups"), 0.0):
                entry["ups"] = fields["ups"]
                ups.append(fields["ups"])
            interval = duration_seconds(str(fields.get("time", "")))
            if prev_update is not None and update > prev_update and interval:
                entry["ups_timed"] = round((update - prev_update) / interval, 3)
                ups_timed.append(entry["ups_timed"])
            prev_update = update
            if _finite(fields.get("max mem"), 0.0) is not None:
                entry["max_mem_mb"] = fields["max mem"]
                peak_mem = max(peak_mem or 0.0, fields["max mem"])
            train[update] = entry
            continue
        for split in ("val", "test"):
            if not any(k.startswith(split + "/") for k in fields):
                continue
            ds, metrics = _split_metrics(fields, split)
            dataset = dataset or ds
            entry = {"update": update, **metrics}
            if split == "val" and "val_time" in fields and update is not None:
                if _whole(fields.get("best_update")) is not None:
                    best_update = _whole(fields["best_update"])
                for key in fields:
                    if key.startswith("best_val/"):
                        criterion = key.split("/", 1)[1]
                val[update] = entry
            else:
                # The evaluation of the restored best model after training, or a test run.
                evals.append(dict(entry, split=split))
            break
    segments.append(seg_time)
    wall = sum(segments)
    if finished_in is not None:
        wall = max(wall, finished_in)
    val_curve = [val[u] for u in sorted(val)]
    return {
        "log": source,
        "dataset": dataset,
        "max_updates": max_updates,
        "last_update": max(list(train) + list(val)) if (train or val) else None,
        "attempts": len(segments),
        "finished": finished_in is not None,
        "parameters": params,
        "loaded_updates": loaded,
        "train": [train[u] for u in sorted(train)],
        "val": val_curve,
        "criterion": criterion or (f"{dataset}/roc_auc" if dataset else None),
        "best": _best(val_curve, best_update, criterion),
        "final_val": next((e for e in reversed(evals) if e["split"] == "val"), None),
        "test": next((e for e in reversed(evals) if e["split"] == "test"), None),
        "ups": round(statistics.median(ups), 3) if ups else None,
        "ups_mean": round(statistics.mean(ups), 3) if ups else None,
        "ups_timed": round(statistics.median(ups_timed), 3) if ups_timed else None,
        "peak_memory_mb": peak_mem,
        "wall_time_s": wall or None,
    }


def _best(val_curve, best_update, criterion):
    """The validation entry at MMF's best update; without one, the highest roc_auc."""
    if not val_curve:
        return None
    if best_update is not None:
        for entry in val_curve:
            if entry["update"] == best_update:
                return dict(entry)
    metric = (criterion or "roc_auc").split("/")[-1]
    scored = [e for e in val_curve if metric in e]
    if not scored:
        return None
    return dict(max(scored, key=lambda e: (e[metric], -e["update"])))


def read_lines(f, limit=LINE_LIMIT):
    """The lines of the text file `f`, each at most `limit` characters: the rest of a longer
    line (no summary of MMF's) is skipped, so that a log of one endless line costs no memory."""
    while True:
        line = f.readline(limit)
        if not line:
            return
        if len(line) >= limit and not line.endswith("\n"):
            while True:
                rest = f.readline(limit)
                if not rest or rest.endswith("\n"):
                    break
            continue
        yield line


def parse_file(path):
    """parse_lines of the log at `path`: any bytes (not UTF-8: replaced), any line length. A
    log that cannot be read (missing, a folder, a pipe: never waited on) is refused naming it."""
    try:
        fd = os.open(str(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise PekitError(f"{path}: cannot read the log: {e.strerror or e}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            kind = "a folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "not a regular file"
            raise PekitError(f"{path}: cannot read the log: {kind}; expected an MMF log")
        with os.fdopen(fd, encoding="utf-8", errors="replace") as f:
            fd = None
            return parse_lines(read_lines(f), source=str(path))
    except OSError as e:
        raise PekitError(f"{path}: cannot read the log: {e.strerror or e}") from None
    finally:
        if fd is not None:
            os.close(fd)
