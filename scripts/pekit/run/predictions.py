"""Per-example predictions of a run's best checkpoint, as MMF's own evaluation writes them.

With `evaluation.predict=true` (run/command.py `predict`), MMF a34bc2d runs its prediction_loop
on each dataset type of run_type ("val", "test"), and its TestReporter writes one CSV per type
into env.report_dir, `<dataset>_<experiment>_<val|test>_<time>.csv` with the columns id,proba,label
(the datasets' generate_binary_prediction: proba the softmax probability of class 1, label the
argmax). Nothing here computes a prediction; this module

- plans the processes (`plan`): the validation split together with the first test split
  (run_type val_test, one process), each further test split alone;
- checks and converts MMF's file of a split (`convert`): its ids must be exactly the split's
  annotation ids, each once, and every proba a probability; the gold label is joined by id
  from the split's annotations (empty where they carry none);
- publishes it (`publish`): predictions/<split>.csv `id,proba,label,gold` and, for a dataset with
  a submission layout, a test split's <split>.submission.csv `id,proba,label`, both at once and
  atomically (core.atomic.FileSet), so that a reader never sees half a file.

A problem is a PredictionError: one line, which the run record keeps as the split's reason.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from ..core import jsonfile
from ..core.atomic import FileSet
from ..core.errors import PekitError
from ..core.regular import read_regular
from .record import FINISHED

FOLDER = "predictions"
LOGS = f"{FOLDER}/logs"  # one MMF log per process
MMF_DIRS = f"{FOLDER}/mmf"  # MMF's save dir per process; its report/ is temporary
REPORT = "report"
MMF_COLUMNS = ("id", "proba", "label")  # MMF's file, and the challenge's submission layout
COLUMNS = MMF_COLUMNS + ("gold",)
VAL, TEST = "val", "test"  # MMF's dataset types
# Larger than any split's file (MMH's test: 10,000 rows, a few hundred KiB).
MAX_BYTES = 256 * 1024 * 1024
# The time MMF's TestReporter puts in a file name (Timer.get_time_hhmmss, %Y-%m-%dT%H:%M:%S).
_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"


class PredictionError(PekitError):
    """Why a split's predictions cannot be published, in one line."""


@dataclass(frozen=True)
class Process:
    """One mmf_run writing predictions: of the validation split `val` and/or test split `test`."""

    val: Optional[str]
    test: Optional[str]

    @property
    def name(self):
        """dev_seen+test_seen: names its log and MMF's save dir."""
        return "+".join(s for s in (self.val, self.test) if s)

    @property
    def splits(self) -> List[Tuple[str, str]]:
        """[(split, MMF's dataset type)] in the order MMF predicts them (val before test)."""
        return [(s, t) for s, t in ((self.val, VAL), (self.test, TEST)) if s]

    @property
    def log(self):
        return f"{LOGS}/{self.name}.log"

    @property
    def save_dir(self):
        return f"{MMF_DIRS}/{self.name}"


def plan(val_split, test_splits, done=()):
    """The processes making the predictions of the splits not in `done`: the validation split
    with the first test split left (each process costs MMF's start-up, some 12 s of CPU, and MMF
    predicts on both dataset types in one), then each other test split alone (MMF's config
    names one test split per dataset)."""
    val = val_split if val_split not in done else None
    tests = [s for s in test_splits if s not in done]
    first = tests.pop(0) if tests else None
    processes = [Process(val, first)] if val or first else []
    return processes + [Process(None, s) for s in tests]


def finished(run_dir, result):
    """Whether a split's recorded predictions are finished and their file is still there."""
    if not isinstance(result, dict) or result.get("status") != FINISHED:
        return False
    return bool(result.get("file")) and (Path(run_dir) / result["file"]).is_file()


# --- reading ---------------------------------------------------------------------------------


def _text(path, what):
    try:
        return read_regular(path, MAX_BYTES, what).decode("utf-8")
    except UnicodeDecodeError:
        raise PredictionError(f"{path}: the {what} is not UTF-8 text") from None
    except PekitError as e:
        raise PredictionError(str(e)) from None


def _id(value):
    """The id MMF gives an example: `int(annotation["id"])` (its datasets' __getitem__), so that
    "01234" and 1234 are one example; None when it is no whole number."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    if isinstance(value, str) and not re.fullmatch(r"\s*[+-]?\d{1,18}\s*", value):
        return None
    return int(value)


def gold_labels(path):
    """{id: gold} of a split's annotations (JSON lines with "id" and maybe "label"), in the
    file's order; gold is the label 0 or 1, or None where the line carries no label."""
    gold = {}
    for where, row in jsonfile.lines(_text(path, "annotations"), path, PredictionError):
        key = _id(row.get("id")) if isinstance(row, dict) else None
        if key is None:
            raise PredictionError(f"{where}: expected an object with a whole-number id")
        if key in gold:
            raise PredictionError(f"{where}: id {key} a second time")
        label = row.get("label")
        if "label" in row and (type(label) is not int or label not in (0, 1)):
            raise PredictionError(f"{where}: label {jsonfile.dumps(label)[:40]}; expected 0 or 1")
        gold[key] = label
    return gold


def _probability(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None


def mmf_rows(path):
    """[(id, proba, label)] of the CSV MMF wrote, each value its text as MMF wrote it."""
    reader = csv.reader(io.StringIO(_text(path, "predictions MMF wrote"), newline=""))
    try:
        header = next(reader, None)
        if header != list(MMF_COLUMNS):
            raise PredictionError(
                f"{path}: header {','.join(header or [])[:80]!r}; expected {','.join(MMF_COLUMNS)}"
            )
        rows = []
        for row in reader:
            where = f"{path}: line {reader.line_num}"
            if len(row) != len(MMF_COLUMNS):
                raise PredictionError(f"{where}: {len(row)} values; expected {len(MMF_COLUMNS)}")
            ident, proba, label = row
            if _id(ident) is None:
                raise PredictionError(f"{where}: id {ident[:40]!r} is not a whole number")
            if _probability(proba) is None:
                raise PredictionError(f"{where}: proba {proba[:40]!r} is not a probability")
            if label not in ("0", "1"):
                raise PredictionError(f"{where}: label {label[:40]!r}; expected 0 or 1")
            rows.append((ident, proba, label))
    except csv.Error as e:
        raise PredictionError(f"{path}: not a CSV file ({e})") from None
    return rows


def mmf_file(folder, mmf_name, dataset_type):
    """The one file MMF's TestReporter wrote for `dataset_type` into report folder `folder`."""
    form = re.compile(rf"{re.escape(mmf_name)}_(?:.*_)?{dataset_type}_{_TIME}\.csv")
    try:
        found = sorted(p for p in Path(folder).iterdir() if form.fullmatch(p.name))
    except OSError:
        found = []
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise PredictionError(
            f"{folder}: {what} predictions file of MMF's for its {dataset_type} set"
        )
    return found[0]


# --- converting and publishing ---------------------------------------------------------------


def join(rows, gold, where):
    """MMF's rows with the gold label of each id appended ("" where the annotations carry
    none); refused unless MMF predicted every annotated id exactly once, and nothing else."""
    seen, out = set(), []
    for ident, proba, label in rows:
        key = _id(ident)
        if key in seen:
            raise PredictionError(f"{where}: id {ident} predicted twice")
        if key not in gold:
            raise PredictionError(f"{where}: id {ident} is not in the split's annotations")
        seen.add(key)
        out.append((ident, proba, label, "" if gold[key] is None else str(gold[key])))
    missing = [k for k in gold if k not in seen]
    if missing:
        raise PredictionError(
            f"{where}: {len(missing)} of the split's {len(gold)} ids not predicted "
            f"(first: {missing[0]})"
        )
    return out


def convert(report_file, annotations):
    """The rows of predictions/<split>.csv from MMF's file and the split's annotations, and
    whether every example is labelled."""
    gold = gold_labels(annotations)
    rows = join(mmf_rows(report_file), gold, str(report_file))
    return rows, bool(gold) and all(g is not None for g in gold.values())


def _csv(header, rows):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def paths(split):
    """The published files of `split`, relative to the run's folder: (predictions, submission)."""
    return f"{FOLDER}/{split}.csv", f"{FOLDER}/{split}.submission.csv"


def publish(run_dir, split, rows, submission):
    """Write the split's files together (both or neither, each whole); returns their paths
    relative to `run_dir` (the submission's None when it has none)."""
    table, layout = paths(split)
    folder = Path(run_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    with FileSet([folder]) as files:
        files.add(Path(run_dir) / table, _csv(COLUMNS, rows))
        if submission:
            files.add(Path(run_dir) / layout, _csv(MMF_COLUMNS, [r[:3] for r in rows]))
    return table, (layout if submission else None)


def unpublish(run_dir, split):
    """Remove the split's published files: predictions about to be made again, or failed, are
    not shown by the files of an earlier attempt."""
    for name in paths(split):
        with contextlib.suppress(FileNotFoundError):
            (Path(run_dir) / name).unlink()
