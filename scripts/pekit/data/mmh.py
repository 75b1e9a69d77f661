"""MMHS150K (Gomez et al. 2020) -> MMF annotations for the `mmh` dataset.

Output, under <data_dir>/datasets/mmh/defaults/:
  annotations/{train,val,test}.jsonl  one object per tweet:
      id        running integer from 1 over train, val, test (tweet ids near 1e18 overflow
                the int32 id tensor MMF builds)
      tweet_id  the original tweet id, as a string
      img       "img_resized/<tweet_id>.jpg", relative to images/ (features: <tweet_id>.npy)
      text      see join_text()
      label     0/1 by the chosen rule (see LABEL_RULES)
      labels    the three annotator codes, kept for reference
  images/img_resized   a link to (or copy of) SRC/img_resized
  conversion.json      the settings and class balance of the last conversion
"""

import json
import os
import re
from pathlib import Path

from .. import atomic
from ..errors import PekitError
from ..progress import progress as progress_bar
from .facts import dataset_facts
from .paths import dataset_dir

SPLITS = ("train", "val", "test")
# t.co is Twitter's link shortener: every link and attached media in a tweet shows up as one.
_TCO_LINK = re.compile(r"https?://t\.co/\w*", re.IGNORECASE)
_SPACES = re.compile(r"\s+")

LABEL_RULES = {
    # hate if any of the three annotators gave a hate code (the paper's MMH numbers need this)
    "any": lambda codes: 1 if any(codes) else 0,
    # hate if at least 2 of 3 annotators did (the dataset authors' rule)
    "majority": lambda codes: 1 if sum(1 for c in codes if c) >= 2 else 0,
}
MISSING_IMAGE_ACTIONS = ("fail", "skip")
IMAGE_MODES = ("link", "copy", "none")


class MMHInputError(PekitError):
    """The MMHS150K copy is not usable as given."""


def clean_tweet_text(text):
    """Drop t.co links and collapse whitespace."""
    return _SPACES.sub(" ", _TCO_LINK.sub(" ", text)).strip()


def join_text(tweet_text, ocr_text=None):
    """The model's text: cleaned tweet text, then a space, then the image's OCR text when present.

    Both parts have whitespace collapsed; an empty part is left out, so a tweet without OCR is just
    its cleaned text.
    """
    parts = [clean_tweet_text(tweet_text)]
    if ocr_text:
        parts.append(_SPACES.sub(" ", ocr_text).strip())
    return " ".join(p for p in parts if p)


def load_json(path):
    """Parse a JSON file; malformed JSON is refused with the file and position."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        return json.loads(data.decode("utf-8"))
    except json.JSONDecodeError as e:
        raise MMHInputError(
            f"{path}: malformed JSON at line {e.lineno} column {e.colno} (char {e.pos}): {e.msg}"
        ) from None
    except UnicodeDecodeError as e:
        raise MMHInputError(f"{path}: not UTF-8 text (byte {e.start}): {e.reason}") from None


def read_split_ids(path):
    """Tweet ids, one per line, in file order; blank lines ignored, repeats refused."""
    ids = []
    seen = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            tid = line.strip()
            if not tid:
                continue
            if tid in seen:
                raise MMHInputError(
                    f"{path}: line {lineno}: tweet id {tid} repeats line {seen[tid]}; "
                    "each id must appear once"
                )
            seen[tid] = lineno
            ids.append(tid)
    return ids


def _examples(ids, n=5):
    ids = sorted(ids)
    more = " ..." if len(ids) > n else ""
    return ", ".join(ids[:n]) + more


def _check_splits(split_ids, split_paths, gt_path, gt):
    sets = {s: set(ids) for s, ids in split_ids.items()}
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            common = sets[a] & sets[b]
            if not common:
                continue
            if sets[a] == sets[b]:
                raise MMHInputError(
                    f"{split_paths[a]} is identical to {split_paths[b]} ({len(sets[a])} ids): "
                    "this copy of MMHS150K is broken; take the split files from the authors' "
                    "release or the Kaggle copy"
                )
            raise MMHInputError(
                f"{split_paths[a]} and {split_paths[b]} share {len(common)} tweet ids "
                f"(e.g. {_examples(common)}); splits must not overlap"
            )
    for s in SPLITS:
        absent = [t for t in split_ids[s] if t not in gt]
        if absent:
            raise MMHInputError(
                f"{split_paths[s]}: {len(absent)} of {len(split_ids[s])} tweet ids are not keys "
                f"of {gt_path} (e.g. {_examples(absent)})"
            )


def _label_codes(tid, rec, gt_path, n_annotators, valid_codes):
    codes = rec.get("labels") if isinstance(rec, dict) else None
    if (
        not isinstance(codes, list)
        or len(codes) != n_annotators
        or not all(type(c) is int and c in valid_codes for c in codes)
    ):
        raise MMHInputError(
            f"{gt_path}: tweet {tid}: field 'labels' is {codes!r}; expected {n_annotators} "
            f"integers among {sorted(valid_codes)} (one per annotator)"
        )
    return codes


def _tweet_text(tid, rec, gt_path):
    text = rec.get("tweet_text")
    if not isinstance(text, str):
        raise MMHInputError(
            f"{gt_path}: tweet {tid}: field 'tweet_text' is {text!r}; expected a string"
        )
    return text


def _ocr_text(path):
    obj = load_json(path)
    text = obj.get("img_text") if isinstance(obj, dict) else None
    if not isinstance(text, str):
        raise MMHInputError(f"{path}: field 'img_text' is {text!r}; expected a string")
    return text


def _locate(src, facts):
    src = Path(src).expanduser().resolve()
    if not src.is_dir():
        raise MMHInputError(f"{src}: not a folder; expected the MMHS150K folder")
    need = {
        "gt": src / facts["gt_file"],
        "images": src / facts["image_folder"],
    }
    for name in SPLITS:
        need[name] = src / facts["splits_folder"] / facts["split_files"][name]
    missing = [str(p) for p in need.values() if not p.exists()]
    if missing:
        raise MMHInputError(
            "{} is not an MMHS150K folder: missing {}".format(src, ", ".join(missing))
        )
    need["ocr"] = src / facts["ocr_folder"]
    return src, need


def convert_mmh(
    src,
    data_dir=None,
    label_rule="any",
    missing_images="fail",
    images="link",
    show_progress=True,
):
    """Convert an MMHS150K folder; return a summary with the class balance of every split.

    Everything is read and checked before anything is written; SRC is only read.
    """
    if label_rule not in LABEL_RULES:
        raise PekitError(
            "label rule {!r}: expected one of {}".format(label_rule, ", ".join(LABEL_RULES))
        )
    if missing_images not in MISSING_IMAGE_ACTIONS:
        raise PekitError(f"missing-images {missing_images!r}: expected fail or skip")
    if images not in IMAGE_MODES:
        raise PekitError("images {!r}: expected one of {}".format(images, ", ".join(IMAGE_MODES)))
    facts = dataset_facts("mmh")
    src, paths = _locate(src, facts)
    rule = LABEL_RULES[label_rule]
    valid_codes = frozenset(int(c) for c in facts["label_codes"])
    n_annotators = facts["annotators"]
    image_folder = facts["image_folder"]

    gt_path = paths["gt"]
    gt = load_json(gt_path)
    if not isinstance(gt, dict):
        raise MMHInputError(f"{gt_path}: expected a JSON object keyed by tweet id")
    split_paths = {s: paths[s] for s in SPLITS}
    split_ids = {s: read_split_ids(split_paths[s]) for s in SPLITS}
    _check_splits(split_ids, split_paths, gt_path, gt)

    # One directory listing each instead of 150K stat calls.
    have_images = set(os.listdir(paths["images"]))
    have_ocr = set(os.listdir(paths["ocr"])) if paths["ocr"].is_dir() else set()

    total = sum(len(v) for v in split_ids.values())
    bar = progress_bar(total, "mmh: converting", enabled=show_progress)
    out_lines = {}
    balance = {}
    missing = {}
    next_id = 1
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    try:
        for split in SPLITS:
            lines = []
            positives = 0
            missing[split] = []
            for tid in split_ids[split]:
                rec = gt[tid]
                codes = _label_codes(tid, rec, gt_path, n_annotators, valid_codes)
                text = _tweet_text(tid, rec, gt_path)
                image = tid + ".jpg"
                if image not in have_images:
                    missing[split].append(tid)
                    if missing_images == "skip":
                        bar.update()
                        continue
                ocr_name = tid + ".json"
                ocr = _ocr_text(paths["ocr"] / ocr_name) if ocr_name in have_ocr else None
                label = rule(codes)
                positives += label
                lines.append(
                    dumps(
                        {
                            "id": next_id,
                            "tweet_id": tid,
                            "img": image_folder + "/" + image,
                            "text": join_text(text, ocr),
                            "label": label,
                            "labels": codes,
                        }
                    )
                )
                next_id += 1
                bar.update()
            out_lines[split] = lines
            n = len(lines)
            balance[split] = {
                "total": n,
                "positive": positives,
                "negative": n - positives,
                "positive_rate": round(positives / n, 4) if n else None,
            }
    finally:
        bar.close()

    n_missing = sum(len(v) for v in missing.values())
    if n_missing and missing_images == "fail":
        per_split = ", ".join(f"{s} {len(missing[s])}" for s in SPLITS if missing[s])
        raise MMHInputError(
            f"{paths['images']}: {n_missing} images are missing ({per_split}; e.g. "
            f"{_examples([t + '.jpg' for s in SPLITS for t in missing[s]])}); restore them, or "
            "pass --missing-images skip to leave those tweets out"
        )

    warnings = []
    for s in SPLITS:
        expected = facts["splits"][s]
        if len(split_ids[s]) != expected:
            warnings.append(
                f"{split_paths[s]} lists {len(split_ids[s])} ids; the published split has "
                f"{expected}"
            )

    out = dataset_dir("mmh", data_dir)
    summary = {
        "source": str(src),
        "label_rule": label_rule,
        "missing_images": missing_images,
        "images": images,
        "balance": balance,
        "missing": {s: len(missing[s]) for s in SPLITS},
        "skipped": {s: len(missing[s]) if missing_images == "skip" else 0 for s in SPLITS},
    }
    with atomic.Staged() as staged:
        for split in SPLITS:
            data = ("\n".join(out_lines[split]) + "\n") if out_lines[split] else ""
            staged.add_bytes(out / "annotations" / (split + ".jsonl"), data.encode("utf-8"))
        staged.add_bytes(
            out / "conversion.json",
            (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8"),
        )
    (out / "features").mkdir(parents=True, exist_ok=True)
    _place_images(paths["images"], out / "images" / image_folder, images, have_images)

    summary.update(
        {
            "out": str(out),
            "annotations": {s: str(out / "annotations" / (s + ".jsonl")) for s in SPLITS},
            "warnings": warnings,
        }
    )
    return summary


def _place_images(src_dir, dst, mode, names):
    if mode == "none":
        return
    if mode == "link":
        if dst.exists() and not dst.is_symlink():
            raise PekitError(f"{dst} exists and is not a link; remove it or use --images copy")
        atomic.symlink(str(src_dir), str(dst))
        return
    if dst.is_symlink():
        dst.unlink()
    dst.mkdir(parents=True, exist_ok=True)
    for name in sorted(names):
        s = src_dir / name
        d = dst / name
        try:
            if d.stat().st_size == s.stat().st_size:
                continue
        except OSError:
            pass
        if s.is_file():
            atomic.copy_file(str(s), str(d))


def format_balance(balance):
    """Lines of a class-balance table for the CLI."""
    rows = ["split   total  positive  negative  positive%"]
    for split, b in balance.items():
        rate = "-" if b["positive_rate"] is None else f"{100 * b['positive_rate']:.1f}"
        rows.append(f"{split:<6} {b['total']:6d} {b['positive']:9d} {b['negative']:9d} {rate:>10}")
    return rows
