"""`pekit predict`: score new memes with a trained run, through MMF's own evaluation.

The memes (one image and text, or a table of id, image, text) become a small dataset in the
layout MMF's hateful_memes reader expects: an annotations file and one region-feature file per
meme, extracted with MMF's Faster R-CNN (features/frcnn.py, as for MMH) or taken from a folder
of features the dataset already has. MMF then predicts on it with the run's own command line
(config, model, mode, tokenizer, data folder) and the chosen checkpoint: the run's best.ckpt, a
checkpoint given, or exported adapters put onto their base (adapters/checkpoint.py). So the
inputs are built as MMF builds them for that model and the probabilities are MMF's, exactly as
the run's prediction files (run/predictions.py) have them for the same examples and features.

Everything is checked before MMF starts (one line naming the row and field); the output is
written in one atomic write after MMF has scored every meme, so nothing partial is left.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List

from ..core import atomic, jsonfile, schema
from ..core.bars import progress as progress_bar
from ..core.errors import PekitError, UsageError
from ..facts.vocabulary import DATASETS
from ..run import command
from ..run import predictions as preds
from ..run import record as record_mod
from ..run.spec import SAVE_DIR

TABLE_FORMATS = (".jsonl", ".csv")
OUTPUT_FORMATS = (".jsonl", ".csv")
COLUMNS = ("id", "proba", "label")
# MMF's hateful_memes reader takes a meme's image from `img` (its annotations' name) and its
# features from <basename of img without extension>.npy; tables may say `image` or `img`.
IMAGE_FIELDS = ("image", "img")
MAX_TABLE = 1 << 30
# Training-only options of the recorded command that a scoring run must not inherit.
TRAINING_ONLY = ("checkpoint.resume=", "checkpoint.max_to_keep=", "run_type=")


@dataclass(frozen=True)
class Meme:
    id: str
    text: str
    image: Path  # the image file; with given features, only its name matters
    where: str  # the table row (or option) it came from, for messages

    @property
    def feature_name(self):
        return self.image.stem


# ---- the memes -------------------------------------------------------------------------------


def one_meme(image, text, meme_id="1"):
    return [Meme(str(meme_id), _text(text, "--text"), Path(image).expanduser(), "--image")]


def read_table(path, images=None):
    """The memes of a JSONL or CSV table with columns id, image (or img) and text; `image` is
    relative to `images` (default: the table's folder). One line names any bad row."""
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise UsageError(f"{path}: a table must be .jsonl or .csv, got '{suffix or path.name}'")
    data = jsonfile.read_bytes(path, "table", limit=MAX_TABLE)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise PekitError(f"{path}: not UTF-8 (byte {e.start})") from None
    rows = _jsonl_rows(path, text) if suffix == ".jsonl" else _csv_rows(path, text)
    folder = Path(images).expanduser() if images else path.parent
    memes, seen = [], {}
    for where, row in rows:
        meme = _meme(where, row, folder)
        if meme.id in seen:
            raise PekitError(f"{where}: id {meme.id!r} repeats the one of {seen[meme.id]}")
        seen[meme.id] = where
        memes.append(meme)
    if not memes:
        raise PekitError(f"{path}: no memes in it")
    return memes


def _jsonl_rows(path, text):
    for where, row in jsonfile.lines(text, path):
        if not isinstance(row, dict):
            raise PekitError(f"{where}: expected a JSON object, got {schema.kind(row)}")
        yield where, row


def _csv_rows(path, text):
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in ("id", "text") if c not in header]
    if missing or not any(f in header for f in IMAGE_FIELDS):
        raise PekitError(
            f"{path}: header {','.join(header) or '(empty)'}; expected the columns id, image "
            "(or img) and text"
        )
    for number, row in enumerate(reader, 2):
        if None in row:
            raise PekitError(f"{path}:{number}: more fields than the header's {len(header)}")
        yield f"{path}:{number}", row


def _meme(where, row, folder):
    meme_id = row.get("id")
    if isinstance(meme_id, bool) or not isinstance(meme_id, (str, int)) or not str(meme_id).strip():
        raise PekitError(f"{where}: field 'id' is {schema.shown(meme_id)}; expected a non-empty id")
    image = next((row[f] for f in IMAGE_FIELDS if row.get(f) not in (None, "")), None)
    if not isinstance(image, str):
        raise PekitError(
            f"{where}: field 'image' is {schema.shown(image)}; expected an image file's path"
        )
    return Meme(
        str(meme_id).strip(),
        _text(row.get("text"), f"{where}: field 'text'"),
        folder / image,
        where,
    )


def _text(value, what):
    if not isinstance(value, str):
        raise PekitError(f"{what} is {schema.shown(value)}; expected the meme's text")
    return value


# ---- features --------------------------------------------------------------------------------


def check_images(memes):
    """Every image there and readable; refuses with the first that is not."""
    from PIL import Image

    for meme in memes:
        if not meme.image.is_file():
            raise PekitError(f"{meme.where}: image {meme.image} not found")
        try:
            with Image.open(str(meme.image)) as im:
                im.verify()  # reads the whole file: a truncated image is caught here
        except Exception as e:  # PIL raises many kinds for a bad file
            raise PekitError(f"{meme.where}: image {meme.image} unreadable ({e})") from None


def given_features(memes, folder):
    """{meme id: (features .npy, info .npy)} from a folder of the dataset's features."""
    from ..features.files import feature_paths

    found = {}
    for meme in memes:
        paths = feature_paths(folder, meme.feature_name)
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise PekitError(f"{meme.where}: no features {missing[0]} for image {meme.image.name}")
        found[meme.id] = paths
    return found


def extract_features(memes, extractor, out, batch_size=8, show_progress=True):
    """Extract each meme's features into `out` as <index>.npy; a failing image refuses all."""
    from ..features.files import write_features

    bar = progress_bar(len(memes), "predict: features", enabled=show_progress, unit="meme")
    try:
        for start in range(0, len(memes), batch_size):
            batch = memes[start : start + batch_size]
            try:
                results = extractor.extract([m.image for m in batch])
            except Exception:
                results = [_extract_one(extractor, m) for m in batch]
            for offset, (features, info) in enumerate(results):
                write_features(out, str(start + offset), features, info)
            bar.update(len(batch))
    finally:
        bar.close()


def _extract_one(extractor, meme):
    try:
        return extractor.extract([meme.image])[0]
    except Exception as e:  # the extractor's own error, said with the row it came from
        raise PekitError(
            f"{meme.where}: feature extraction failed ({type(e).__name__}: {e})"
        ) from None


# ---- the model -------------------------------------------------------------------------------


def finished_run(run_dir):
    """The run record of a finished run folder, or a refusal saying what is missing."""
    run_dir = Path(run_dir).expanduser().resolve()
    rec = record_mod.load(run_dir)
    if rec is None:
        raise PekitError(f"{run_dir}: no run record (run.json): not a run folder")
    if rec.status != record_mod.FINISHED or not rec.command:
        raise PekitError(f"{run_dir}: the run is {rec.status}; predict needs a finished run")
    return run_dir, rec


def checkpoint_of(run_dir, checkpoint=None, adapters=None, base=None, work=None):
    """The checkpoint to score with: `checkpoint`, base + `adapters`, else the run's best."""
    if adapters or base:
        if not (adapters and base):
            raise UsageError("--adapters and --base go together: adapters are put onto a base")
        from ..adapters.checkpoint import load

        return Path(load(adapters, base, Path(work) / "model.ckpt"))
    path = Path(checkpoint).expanduser() if checkpoint else run_dir / SAVE_DIR / "best.ckpt"
    if not path.is_file():
        raise PekitError(f"checkpoint {path} not found")
    return path.resolve()


def mmf_command(rec, checkpoint, annotations, features, work):
    """The run's recorded command, turned from training into MMF's prediction of the memes."""
    dataset = DATASETS[rec.run["dataset"]].mmf_name
    keep = [c for c in command.one_node(rec.command) if not str(c).startswith(TRAINING_ONLY)]
    return (
        keep
        + ["run_type=test", f"env.save_dir={work / 'save'}"]
        + command.checkpoint_options(checkpoint)
        + command.prediction_options(work / "report")
        + [
            # Absolute paths: MMF joins them to its data folder, which leaves them as they are.
            f"dataset_config.{dataset}.annotations.test=[{str(annotations)!r}]",
            f"dataset_config.{dataset}.features.test=[{str(features)!r}]",
        ]
    )


# ---- scoring ---------------------------------------------------------------------------------


def write_dataset(memes, work):
    """The memes as MMF's annotations (ids 0..n-1: MMF's reader wants integer ids)."""
    annotations = work / "annotations.jsonl"
    lines = [
        json.dumps({"id": index, "img": f"img/{index}.png", "text": meme.text})
        for index, meme in enumerate(memes)
    ]
    annotations.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return annotations


def link_features(memes, found, out):
    """The given features under the names write_dataset gave the memes."""
    for index, meme in enumerate(memes):
        for source, suffix in zip(found[meme.id], (".npy", "_info.npy")):
            os.symlink(os.path.abspath(source), out / f"{index}{suffix}")


def read_mmf_predictions(report, dataset, memes):
    """[(meme, proba text, label)] from the file MMF wrote into `report` (checked as the
    runner checks it, run/predictions.py), each meme exactly once."""
    found = preds.mmf_file(report, DATASETS[dataset].mmf_name, preds.TEST)
    scored = {int(ident): (proba, int(label)) for ident, proba, label in preds.mmf_rows(found)}
    if sorted(scored) != list(range(len(memes))):
        raise PekitError(f"{found}: MMF scored {len(scored)} of {len(memes)} memes")
    return [(meme, *scored[i]) for i, meme in enumerate(memes)]


def render(rows, out):
    """The output file's text: JSONL or CSV of id, proba, label."""
    if out.suffix.lower() == ".jsonl":
        return "".join(
            json.dumps({"id": m.id, "proba": float(p), "label": label}) + "\n"
            for m, p, label in rows
        )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows((m.id, p, label) for m, p, label in rows)
    return buffer.getvalue()


def output_path(out):
    out = Path(out).expanduser()
    if out.suffix.lower() not in OUTPUT_FORMATS:
        raise UsageError(f"--out {out}: expected a .jsonl or .csv file")
    return Path(atomic.output_file(out))


def predict(
    memes,
    run_dir,
    out,
    features=None,
    extractor=None,
    checkpoint=None,
    adapters=None,
    base=None,
    env=None,
    echo=None,
):
    """Score `memes` with the run `run_dir`; writes `out` (JSONL or CSV) whole; returns rows.

    `features`: a folder of the dataset's features (<image name>.npy); else `extractor()` makes
    the FRCNN extractor that computes them from the images."""
    echo = echo or (lambda text: print(text, file=sys.stderr, flush=True))
    out = output_path(out)
    run_dir, rec = finished_run(run_dir)
    found = given_features(memes, features) if features else None
    if found is None:
        check_images(memes)
    # The scratch folder is beside the output (a base + adapters checkpoint can be 450 MB), and
    # removed with everything in it, whatever happens.
    with tempfile.TemporaryDirectory(dir=str(out.parent), prefix=".pekit-predict-") as tmp:
        work = Path(tmp)
        if "," in str(work):
            raise UsageError(
                f"--out {out}: MMF splits its data paths at commas; choose a folder without one"
            )
        model = checkpoint_of(run_dir, checkpoint, adapters, base, work)
        feature_dir = work / "features"
        feature_dir.mkdir()
        if found is None:
            if extractor is None:
                raise UsageError("no features: give --features, or the FRCNN for --images")
            extract_features(memes, extractor(), feature_dir)
        else:
            link_features(memes, found, feature_dir)
        annotations = write_dataset(memes, work)
        cmd = mmf_command(rec, model, annotations, feature_dir, work)
        log = work / "mmf.log"
        echo(f"pekit predict: MMF scores {len(memes)} memes with {model}")
        with open(log, "wb") as f:
            code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
        if code != 0:
            kept = out.with_name(out.name + ".mmf.log")
            shutil.copyfile(log, kept)
            raise PekitError(f"MMF's prediction exited {code}; its log: {kept}")
        rows = read_mmf_predictions(work / "report", rec.run["dataset"], memes)
    atomic.write_text(out, render(rows, out))
    return rows


def frcnn_extractor(model_dir=None, mmf_src=None, device=None, data_dir=None):
    """A factory of MMF's FRCNN extractor with the fetched weights (or `model_dir`'s): made
    only once the memes are checked."""
    from ..features.frcnn import from_model_dir

    return lambda: from_model_dir(
        model_dir, mmf_src, device, data_dir=data_dir, option="--frcnn-dir"
    )


def memes_from(args) -> List[Meme]:
    """The memes of `pekit predict`'s options: --image and --text, or --table [--images]."""
    if args.table:
        if args.image or args.text is not None:
            raise UsageError("give --table, or --image with --text, not both")
        return read_table(args.table, args.images)
    if not args.image or args.text is None:
        raise UsageError("give --image IMAGE --text TEXT, or --table FILE")
    return one_meme(args.image, args.text, args.id or "1")
