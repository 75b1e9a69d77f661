"""Reading what the evidence is computed from: a run's per-example predictions and the memes'
texts.

A finished run keeps one file per scored split, `predictions/<split>.csv`:

    id,proba,label,gold
    42953,0.8121,1,1

proba the probability of "hateful" (0 to 1), label the predicted class (0/1), gold the gold
label (0/1), or empty on every row of a split without labels. A file that breaks any of this
(header, a field, a duplicate id, gold on some rows only) refuses the report in one line naming
the file and the row, as a malformed run record does: a number computed from it would be wrong
without saying so. A run without a predictions folder (an older kit's) has none: the evidence
says so for that run.

The texts come from the dataset's annotations (<data dir>/datasets/<MMF name>/defaults/
annotations/<split>.jsonl, field "text"); they are a help to the reader, so annotations that
cannot be read leave the texts empty with the reason, never refuse the report.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from ..core import schema
from ..core.errors import PekitError
from ..core.regular import read_regular
from ..data.paths import dataset_dir
from ..facts.vocabulary import DATASETS
from ..run.predictions import COLUMNS, FOLDER, paths

HEADER = COLUMNS  # what the runner publishes (run/predictions.py)
# Far above any split's file (MMH's test: 10,000 rows of some 30 bytes).
MAX_BYTES = 256 * 1024 * 1024
MAX_ANNOTATION_BYTES = 1024 * 1024 * 1024
FIX = "; write the file again, or move it away to report the run without it"


class Predictions:
    """One run's predictions on one split, in the order of the ids: ids (strings), proba (floats),
    label (0/1 ints) and gold (0/1 ints, or None for a split without labels) as numpy arrays;
    `row` maps an id to its place."""

    def __init__(self, split, file, ids, proba, label, gold):
        import numpy as np

        self.split = split
        self.file = str(file)
        self.ids = list(ids)
        self.proba = np.asarray(proba, dtype=np.float64)
        self.label = np.asarray(label, dtype=np.int64)
        self.gold = None if gold is None else np.asarray(gold, dtype=np.int64)
        self.row = {i: k for k, i in enumerate(self.ids)}

    @property
    def labelled(self):
        return self.gold is not None

    def __len__(self):
        return len(self.ids)


def _refuse(path, row, line, message):
    raise PekitError(f"{path}: row {row} (line {line}): {message}{FIX}")


def _field(path, row, line, name, value, expected):
    _refuse(path, row, line, f"field '{name}' is {schema.shown(value)}; expected {expected}")


def _proba(path, row, line, text):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        _field(path, row, line, "proba", text, "a number from 0 to 1")
    return value


def _parse_row(path, row, line, fields):
    """(id, proba, label, gold or None) of one data row, or a refusal naming it."""
    if len(fields) != len(HEADER):
        _refuse(
            path, row, line, f"{len(fields)} fields; expected {len(HEADER)} ({','.join(HEADER)})"
        )
    ident, proba, label, gold = fields
    if not ident or len(ident) > 256 or ident != ident.strip():
        _field(path, row, line, "id", ident, "an example's id (1 to 256 characters)")
    if label not in ("0", "1"):
        _field(path, row, line, "label", label, "0 or 1 (the predicted class)")
    if gold not in ("0", "1", ""):
        _field(path, row, line, "gold", gold, "0, 1, or empty on a split without labels")
    return ident, _proba(path, row, line, proba), int(label), int(gold) if gold else None


def _rows(path, text):
    """[(row number, line number, fields)] of the data rows, the header checked."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or tuple(header) != HEADER:
            shown = "missing" if header is None else schema.shown(",".join(header))
            raise PekitError(f"{path}: line 1: header is {shown}; expected {','.join(HEADER)}{FIX}")
        out = []
        for fields in reader:
            if fields:  # a blank line, at the end most likely: no example
                out.append((len(out) + 1, reader.line_num, fields))
        return out
    except csv.Error as e:
        raise PekitError(f"{path}: line {reader.line_num}: not CSV: {e}{FIX}") from None


def _agree_on_gold(path, parsed):
    """Refuse a file with gold labels on some rows only: either the split has labels or not."""
    first_has = parsed[0][2][3] is not None
    for row, line, (_, _, _, gold) in parsed:
        if (gold is not None) != first_has:
            said = "empty" if gold is None else "set"
            _refuse(
                path,
                row,
                line,
                f"gold is {said} but not on row 1; expected it on every row or none",
            )


def read_predictions(path, split, folder=None):
    """The Predictions in the CSV file at `path`, or a one-line PekitError naming the file and
    row (a link out of `folder`, a FIFO or an oversized file refused before reading)."""
    data = read_regular(path, MAX_BYTES, what="predictions file", folder=folder)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise PekitError(f"{path}: not UTF-8 text (byte {e.start}){FIX}") from None
    parsed, seen = [], {}
    for row, line, fields in _rows(path, text):
        values = _parse_row(path, row, line, fields)
        if values[0] in seen:
            _refuse(
                path, row, line, f"id {schema.shown(values[0])} is also on row {seen[values[0]]}"
            )
        seen[values[0]] = row
        parsed.append((row, line, values))
    if not parsed:
        raise PekitError(f"{path}: no rows; expected one row per example of the split{FIX}")
    _agree_on_gold(path, parsed)
    # In the order of the ids: the file's order of rows changes no number (the bootstrap's
    # draws are positions) and no order of the report's.
    columns = list(zip(*sorted(values for _, _, values in parsed)))
    gold = None if columns[3][0] is None else columns[3]
    return Predictions(split, path, columns[0], columns[1], columns[2], gold)


def run_predictions(folder, dataset):
    """({split: Predictions}, None) of a run folder's predictions on its dataset's validation
    and test splits, or ({}, why there are none). Other files there (the challenge's submission
    layout, MMF's own) are not the evidence's."""
    where = Path(folder) / FOLDER
    if not where.exists():
        return {}, "no predictions (a run by a kit that did not write them)"
    if not where.is_dir():
        return {}, f"{where} is not a folder"
    facts = DATASETS[dataset]
    out = {}
    for split in (facts.val_split, *facts.test_splits):
        path = Path(folder) / paths(split)[0]
        if path.exists() or path.is_symlink():
            out[split] = read_predictions(path, split, folder=folder)
    if not out:
        return {}, f"no predictions: {where} holds no <split>.csv of {dataset}'s splits"
    return out, None


# --- the memes' texts ---------------------------------------------------------------------


def text_key(ident):
    """An id as the texts are joined on: a whole number without its leading zeros (HMD's ids
    are numbers in the annotations, and may be written zero-padded, as its image names are)."""
    text = str(ident)
    plain = text.isascii() and text.isdigit() and len(text) <= 64  # int() of 5,000 digits refuses
    return str(int(text)) if plain else text


def _annotations(dataset, split, data_dir):
    return dataset_dir(DATASETS[dataset].mmf_name, data_dir) / "annotations" / f"{split}.jsonl"


def meme_texts(dataset, split, data_dir=None):
    """({text_key(id): text} of the split's annotations, None), or ({}, why there are none):
    annotations that cannot be read leave the texts out, with the reason."""
    path = _annotations(dataset, split, data_dir)
    try:
        data = read_regular(path, MAX_ANNOTATION_BYTES, what="annotations")
    except PekitError as e:
        return {}, str(e)
    out = {}
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):  # `pekit data` checked the file: no text here
            continue
        if isinstance(row, dict) and isinstance(row.get("text"), str):
            out[text_key(row.get("id"))] = row["text"]
    if not out:
        return {}, f"{path}: no row with an id and a text"
    return out, None
