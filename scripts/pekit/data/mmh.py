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
  annotations/conversion.json  the settings and class balance of the conversion
  annotations/img_resized      with --images link: a link to SRC/img_resized
  images/img_resized   a copy of SRC/img_resized, or a link to ../annotations/img_resized
  conversion.json      a link to annotations/conversion.json
`annotations` is a link to a versioned folder, switched in one step (atomic.publish_folder):
readers, and a kill, see the old annotations or the new ones, never a mix.
"""

import filecmp
import json
import os
import re
from pathlib import Path

from ..core import atomic, ownership
from ..core.bars import progress as progress_bar
from ..core.errors import PekitError
from ..facts.vocabulary import DATASETS, MMH
from .paths import dataset_dir

SPLITS = ("train", "val", "test")
CONVERSION = "conversion.json"
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


def _read(path):
    """A source file's bytes; what keeps it from being read is refused with the file."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise MMHInputError(
            f"{path}: cannot read: {e.strerror}; expected a readable file"
        ) from None


def _no_surrogates(text, where):
    """JSON's \\ud800-style escapes can hold half a character, which no UTF-8 file can."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise MMHInputError(
            f"{where} holds an unpaired surrogate (\\u{ord(text[e.start]):04x}) at character "
            f"{e.start}; expected text"
        ) from None
    return text


def load_json(path):
    """Parse a JSON file; malformed JSON is refused with the file and position."""
    data = _read(path)
    try:
        return json.loads(data.decode("utf-8"))
    except json.JSONDecodeError as e:
        raise MMHInputError(
            f"{path}: malformed JSON at line {e.lineno} column {e.colno} (char {e.pos}): {e.msg}"
        ) from None
    except UnicodeDecodeError as e:
        raise MMHInputError(f"{path}: not UTF-8 text (byte {e.start}): {e.reason}") from None


def read_split_ids(path):
    """Tweet ids, one per line, in file order; blank lines ignored, repeats refused."""
    try:
        text = _read(path).decode("utf-8")
    except UnicodeDecodeError as e:
        raise MMHInputError(f"{path}: not UTF-8 text (byte {e.start}): {e.reason}") from None
    ids = []
    seen = {}
    for lineno, line in enumerate(text.splitlines(), 1):
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
    return _no_surrogates(text, f"{gt_path}: tweet {tid}: field 'tweet_text'")


def _ocr_text(path):
    obj = load_json(path)
    text = obj.get("img_text") if isinstance(obj, dict) else None
    if not isinstance(text, str):
        raise MMHInputError(f"{path}: field 'img_text' is {text!r}; expected a string")
    return _no_surrogates(text, f"{path}: field 'img_text'")


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
    for name, path in need.items():
        want_dir = name == "images"
        if path.is_dir() != want_dir:
            raise MMHInputError(
                f"{path}: expected a {'folder' if want_dir else 'file'}, found a "
                f"{'folder' if path.is_dir() else 'file'}"
            )
    need["ocr"] = src / facts["ocr_folder"]
    if need["ocr"].exists() and not need["ocr"].is_dir():
        raise MMHInputError(f"{need['ocr']}: expected a folder of OCR json files")
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
    facts = DATASETS[MMH].facts
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

    # One directory listing each instead of 150K stat calls. An image is a file, or a link
    # resolving to one: a dangling link is a missing image.
    have_images = {e.name for e in os.scandir(paths["images"]) if e.is_file()}
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

    out = atomic.output_folder(dataset_dir(DATASETS[MMH].mmf_name, data_dir))
    img_out = out / "images" / image_folder
    if images == "link" and img_out.exists() and not img_out.is_symlink():
        raise MMHInputError(
            f"{img_out} exists and is not a link (an earlier --images copy?); remove it, or "
            "pass --images copy; nothing written"
        )
    summary = {
        "source": str(src),
        "label_rule": label_rule,
        "missing_images": missing_images,
        "images": images,
        "balance": balance,
        "missing": {s: len(missing[s]) for s in SPLITS},
        "skipped": {s: len(missing[s]) if missing_images == "skip" else 0 for s in SPLITS},
    }
    # The images first, then the annotations with conversion.json, as one folder switched in
    # one step (atomic.publish_folder): a kill leaves the old set or the new one.
    with atomic.locked(out):
        _check_ownership(out, img_out, image_folder, images)
        atomic.remove_scratch(img_out.parent)
        atomic.remove_scratch(out, prefixes=(f".{CONVERSION}.pekit-",))  # its staged link
        if img_out.is_dir() and not img_out.is_symlink():
            atomic.remove_scratch(img_out)
        (out / "features").mkdir(parents=True, exist_ok=True)
        contents = {
            split + ".jsonl": (("\n".join(lines) + "\n") if lines else "").encode("utf-8")
            for split, lines in out_lines.items()
        }
        contents[CONVERSION] = (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode()
        if images == "copy":
            _copy_images(paths["images"], img_out, have_images, show_progress)
        elif images == "link":
            # The link to SRC's images is kept in the annotations folder, so that it switches
            # with them; images/<folder> reads it through a link of its own, made once.
            contents[image_folder] = atomic.Link(str(paths["images"]))
            atomic.replace_link(img_out, _images_link(image_folder), instead=INSTEAD)
        # out/conversion.json reads the one in the annotations, through a link made first.
        if (out / CONVERSION).is_file() and not (out / CONVERSION).is_symlink():
            (out / CONVERSION).unlink()  # the kit's own record of an older layout (checked)
        atomic.replace_link(out / CONVERSION, Path("annotations") / CONVERSION, instead=INSTEAD)
        atomic.publish_folder(out / "annotations", contents, instead=INSTEAD)

    summary.update(
        {
            "out": str(out),
            "annotations": {s: str(out / "annotations" / (s + ".jsonl")) for s in SPLITS},
            "warnings": warnings,
        }
    )
    return summary


INSTEAD = "choose another --data-dir"
# The keys of conversion.json, which an older kit wrote as a file in the output folder.
_CONVERSION_KEYS = {
    "source",
    "label_rule",
    "missing_images",
    "images",
    "balance",
    "missing",
    "skipped",
}


def _images_link(image_folder):
    """Where images/<folder> points in link mode: the link kept in the annotations."""
    return str(Path("..") / "annotations" / image_folder)


def _check_ownership(out, img_out, image_folder, images):
    """Refuse, before anything is written, what the conversion would replace and the kit
    cannot prove it wrote: the annotations (atomic.check_published), a conversion.json that is
    neither the kit's link nor its record of an older layout, an images link not the kit's."""
    atomic.check_published(out / "annotations", instead=INSTEAD)
    conversion = out / CONVERSION
    if conversion.is_symlink():
        if os.readlink(str(conversion)) != str(Path("annotations") / CONVERSION):
            raise ownership.refuse(conversion, "not the link pekit makes there", INSTEAD)
    elif os.path.lexists(str(conversion)):
        try:
            doc = json.loads(conversion.read_text(encoding="utf-8"))
            kits = isinstance(doc, dict) and set(doc) == _CONVERSION_KEYS
        except (OSError, ValueError, UnicodeError, RecursionError):
            kits = False
        if not kits:
            raise ownership.refuse(
                conversion, "not the record of a conversion pekit wrote", INSTEAD
            )
    if img_out.is_symlink() and os.readlink(str(img_out)) != _images_link(image_folder):
        raise ownership.refuse(img_out, "not the link pekit makes there", INSTEAD)


def _copy_images(src_dir, dst, names, show_progress):
    """Copy what differs, by content (a changed image of the same size is copied again)."""
    if dst.is_symlink():
        dst.unlink()  # the kit's link of --images link (checked: _check_ownership)
    dst.mkdir(parents=True, exist_ok=True)
    bar = progress_bar(len(names), "mmh: images", enabled=show_progress)
    try:
        for name in sorted(names):
            s, d = src_dir / name, dst / name
            if not (d.is_file() and filecmp.cmp(str(s), str(d), shallow=False)):
                atomic.copy_file(str(s), str(d))
            bar.update()
    finally:
        bar.close()


def format_balance(balance):
    """Lines of a class-balance table for the CLI."""
    rows = ["split   total  positive  negative  positive%"]
    for split, b in balance.items():
        rate = "-" if b["positive_rate"] is None else f"{100 * b['positive_rate']:.1f}"
        rows.append(f"{split:<6} {b['total']:6d} {b['positive']:9d} {b['negative']:9d} {rate:>10}")
    return rows
