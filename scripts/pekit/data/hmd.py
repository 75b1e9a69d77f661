"""Hateful Memes (HMD): lay out the user's copy where MMF a34bc2d's hateful_memes dataset looks.

Accepted sources: the challenge zip (its files under data/, password optional) or a folder with
img/ and the five jsonl files (directly or under data/). Output, under
<data_dir>/datasets/hateful_memes/defaults/:
  annotations/{train,dev_seen,dev_unseen,test_seen,test_unseen}.jsonl  byte copies of the source
  images/img/<id>.png   (jsonl `img` fields are "img/<id>.png", relative to images/)
  features/, extras/    filled by MMF's dataset zoo (released region features, vocabularies)
"""

import filecmp
import json
import os
import shutil
import subprocess
import tempfile
import zipfile
import zlib
from pathlib import Path

from ..core import atomic, ownership
from ..core.bars import progress as progress_bar
from ..core.errors import PekitError, UsageError
from ..facts.vocabulary import DATASETS, HMD
from . import archive
from .paths import dataset_dir

EXPECT_COUNTS = ("strict", "none")


class HMDInputError(PekitError):
    """The Hateful Memes copy is not usable as given."""


class _FolderSource:
    def __init__(self, root, image_folder):
        self.root = Path(root)
        self.label = str(self.root)
        self.image_folder = image_folder

    def read(self, name):
        path = self.root / name
        if not path.is_file():
            return None
        return path.read_bytes()

    def image_names(self):
        """Images present: plain files, or links resolving to one (a dangling link is not)."""
        folder = self.root / self.image_folder
        if not folder.is_dir():
            return set()
        return {e.name for e in os.scandir(folder) if e.is_file()}

    def same_image(self, name, dst):
        return filecmp.cmp(str(self.root / self.image_folder / name), str(dst), shallow=False)

    def copy_image(self, name, dst, move=False):
        src = self.root / self.image_folder / name
        if move:
            os.replace(str(src), str(dst))
        else:
            atomic.copy_file(str(src), str(dst))


class _ZipSource:
    def __init__(self, path, zf, prefix, image_folder, password):
        self.path = path
        self.label = f"{path}:{prefix}"
        self.zf = zf
        self.prefix = prefix
        self.image_folder = image_folder
        self.pwd = password.encode("utf-8") if password else None
        img_prefix = prefix + image_folder + "/"
        self._images = {}
        for info in zf.infolist():
            name = info.filename
            if (
                name.startswith(img_prefix)
                and not info.is_dir()
                and "/" not in name[len(img_prefix) :]
            ):
                self._images[name[len(img_prefix) :]] = info

    def read(self, name):
        try:
            return self.zf.read(self.prefix + name, pwd=self.pwd)
        except KeyError:
            return None
        except RuntimeError as e:  # encrypted member without (or with a wrong) password
            raise HMDInputError(f"{self.path}: cannot read {name}: {e}; pass --password") from None
        except (zipfile.BadZipFile, zlib.error) as e:
            raise HMDInputError(
                f"{self.path}: member {self.prefix + name} is damaged: {e}"
            ) from None

    def image_names(self):
        return set(self._images)

    def same_image(self, name, dst):
        """The zip records each member's CRC-32: compared with the file's, nothing decompressed."""
        info = self._images[name]
        if dst.stat().st_size != info.file_size:
            return False
        crc = 0
        with open(str(dst), "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                crc = zlib.crc32(block, crc)
        return crc == info.CRC

    def copy_image(self, name, dst, move=False):
        try:
            with self.zf.open(self._images[name], pwd=self.pwd) as f:
                atomic.copy_file(None, str(dst), fsrc=f)
        except (zipfile.BadZipFile, zlib.error) as e:
            raise HMDInputError(f"{self.path}: image {name} is damaged: {e}") from None


def _find_root_folder(src, files):
    for root in (src, src / "data"):
        if all((root / f).is_file() for f in files):
            return root
    return None


def _zip_prefix(zf, files):
    names = set(zf.namelist())
    for name in names:
        if name == files[0] or name.endswith("/" + files[0]):
            prefix = name[: -len(files[0])]
            if all(prefix + f in names for f in files):
                return prefix
    return None


def _parse_jsonl(label, name, data, split, facts):
    rows = []
    required = facts["required_fields"]
    unlabelled_ok = split in facts["unlabelled_ok"]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HMDInputError(f"{label}/{name}: not UTF-8 text (byte {e.start})") from None
    ids = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{label}/{name}: line {lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise HMDInputError(f"{where} column {e.colno}: malformed JSON: {e.msg}") from None
        if not isinstance(row, dict):
            raise HMDInputError(f"{where}: expected a JSON object")
        absent = [f for f in required if f not in row and not (f == "label" and unlabelled_ok)]
        if absent:
            raise HMDInputError(
                "{}: missing field(s) {}; expected {}".format(
                    where, ", ".join(absent), ", ".join(required)
                )
            )
        if type(row["id"]) is not int and not (isinstance(row["id"], str) and row["id"].isdigit()):
            raise HMDInputError(
                "{}: field 'id' is {!r}; expected an integer".format(where, row["id"])
            )
        if not isinstance(row["img"], str) or not row["img"].startswith(
            facts["image_folder"] + "/"
        ):
            raise HMDInputError(
                "{}: field 'img' is {!r}; expected '{}/<file>'".format(
                    where, row["img"], facts["image_folder"]
                )
            )
        if not isinstance(row["text"], str):
            raise HMDInputError(
                "{}: field 'text' is {!r}; expected a string".format(where, row["text"])
            )
        if "label" in row and not (type(row["label"]) is int and row["label"] in (0, 1)):
            raise HMDInputError(
                "{}: field 'label' is {!r}; expected 0 or 1".format(where, row["label"])
            )
        key = int(row["id"])
        if key in ids:
            raise HMDInputError(f"{where}: id {row['id']} repeats line {ids[key]}")
        ids[key] = lineno
        rows.append(row)
    return rows


def _open_source(src, password, files, image_folder, stack, staging_parent):
    if src.is_dir():
        root = _find_root_folder(src, files)
        if root is None:
            raise HMDInputError(
                "{}: expected {} with {}/ (directly or under data/)".format(
                    src, ", ".join(files), image_folder
                )
            )
        return _FolderSource(root, image_folder), False
    if not src.is_file():
        raise HMDInputError(f"{src}: no such file or folder")
    if not zipfile.is_zipfile(str(src)):
        raise HMDInputError(f"{src}: not a zip file nor a folder")
    zf = zipfile.ZipFile(str(src))
    stack.append(zf.close)
    archive.check_members(zf, str(src))
    prefix = _zip_prefix(zf, files)
    if prefix is None:
        raise HMDInputError(
            "{}: the zip does not hold {} in one folder".format(src, ", ".join(files))
        )
    encrypted = any(i.flag_bits & 0x1 for i in zf.infolist())
    if encrypted and password and shutil.which("unzip"):
        # Python's zipfile decrypts byte by byte (hours for the challenge zip); unzip takes minutes.
        members = [prefix + f for f in files] + [prefix + image_folder + "/*"]
        return _unzip(src, password, members, prefix, image_folder, stack, staging_parent), True
    return _ZipSource(src, zf, prefix, image_folder, password), False


STAGING_PREFIX = ".hmd-unzip-"
STAGING_MARK = ".pekit-hmd-unzip"  # in a staging folder: the kit made it (and removes it)


def _unzip(src, password, members, prefix, image_folder, stack, staging_parent):
    """Extract the checked `members` (and nothing else) into a staging folder in the output."""
    # Staged beside the output (same file system, so images are moved, not copied twice), and
    # marked as the kit's at once: a later run removes only a marked (or empty) staging folder.
    staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=str(staging_parent))
    with open(os.path.join(staging, STAGING_MARK), "w", encoding="utf-8") as f:
        f.write("made by pekit data hmd: the challenge zip, unzipped for a moment\n")
    stack.append(lambda: ownership.remove_marked(staging, STAGING_MARK))
    cmd = ["unzip", "-q", "-o", "-P", password, str(src), *members, "-d", staging]
    result = subprocess.run(cmd, capture_output=True)
    if result.returncode not in (0, 11):  # 11: a pattern matched nothing (an empty img/)
        err = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise HMDInputError(
            f"{src}: unzip failed (exit {result.returncode}): {err[-1] if err else ''}; "
            "check --password"
        )
    archive.check_extracted(staging)
    return _FolderSource(Path(staging) / prefix, image_folder)


def layout_hmd(src, data_dir=None, password=None, expect_counts="strict", show_progress=True):
    """Check an HMD copy and lay it out for MMF; return a summary (counts, missing images).

    Every check that can refuse runs before the output changes. Images are written one by one
    (each atomically; a re-run finishes them), then the five annotation files as one folder
    switched in one step (atomic.publish_folder): a kill leaves the old annotations or the new
    ones, never a mix.
    """
    if expect_counts not in EXPECT_COUNTS:
        raise UsageError(f"expect-counts {expect_counts!r}: expected strict or none")
    facts = DATASETS[HMD].facts
    splits = list(facts["splits"])
    files = [s + ".jsonl" for s in splits]
    image_folder = facts["image_folder"]
    src = Path(src).expanduser().resolve()
    out = atomic.output_folder(dataset_dir(DATASETS[HMD].mmf_name, data_dir))
    if out == src or src in out.parents:
        raise HMDInputError(f"{src}: the source holds the output {out}; choose another --data-dir")
    with atomic.locked(out):
        # Only what the kit wrote is replaced: the annotations link (else refused, nothing
        # written), and the staging folders a killed run left, by their mark (the lock says
        # no run is using them); a folder of the user's named like them is left alone.
        atomic.check_published(out / "annotations", instead="choose another --data-dir")
        for old in out.glob(STAGING_PREFIX + "*"):
            if not old.is_symlink() and not ownership.remove_marked(old, STAGING_MARK):
                if ownership.is_empty_folder(old):
                    old.rmdir()  # killed between its making and its mark
        atomic.remove_scratch(out / "images" / image_folder)
        cleanup = []
        try:
            source, staged_copy = _open_source(src, password, files, image_folder, cleanup, out)
            summary = _lay_out(source, staged_copy, out, facts, expect_counts, show_progress)
        finally:
            for fn in reversed(cleanup):
                fn()
    summary.update(source=str(src), out=str(out))
    return summary


def _lay_out(source, staged_copy, out, facts, expect_counts, show_progress):
    splits = list(facts["splits"])
    image_folder = facts["image_folder"]
    raw, rows = {}, {}
    for split in splits:
        name = split + ".jsonl"
        raw[split] = source.read(name)
        rows[split] = _parse_jsonl(source.label, name, raw[split], split, facts)
    counts = {s: len(rows[s]) for s in splits}
    if expect_counts == "strict":
        wrong = [
            f"{s}.jsonl has {counts[s]} (expected {facts['splits'][s]})"
            for s in splits
            if counts[s] != facts["splits"][s]
        ]
        if wrong:
            raise HMDInputError(
                "{}: {}; this is not the complete phase-2 release (use --expect-counts none "
                "for a subset)".format(source.label, "; ".join(wrong))
            )
    have = source.image_names()
    wanted = {r["img"][len(image_folder) + 1 :] for s in splits for r in rows[s]}
    missing = sorted(wanted - have)

    for sub in ("features", "extras"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    img_out = out / "images" / image_folder
    img_out.mkdir(parents=True, exist_ok=True)
    copied = 0
    bar = progress_bar(len(have), "hmd: images", enabled=show_progress)
    try:
        for name in sorted(have):
            dst = img_out / name
            if not (dst.is_file() and not dst.is_symlink() and source.same_image(name, dst)):
                source.copy_image(name, dst, move=staged_copy)
                copied += 1
            bar.update()
    finally:
        bar.close()
    # The annotations last, in one step: they are what MMF reads first, and they name the images.
    atomic.publish_folder(
        out / "annotations",
        {s + ".jsonl": raw[s] for s in splits},
        instead="choose another --data-dir",
    )
    return {
        "counts": counts,
        "images_present": len(have & wanted),
        "images_missing": len(missing),
        "missing_examples": [image_folder + "/" + m for m in missing[:5]],
        "images_copied": copied,
    }


def hmd_split_overrides(val=None, test=None):
    """MMF command-line overrides choosing HMD's validation and test annotation files.

    The paper validated on dev_seen (500 items: its logs show 32 batches of 16); MMF a34bc2d's
    default is dev_unseen (540). By default the paper's validation split and the first test split
    (datasets.json).
    """
    facts = DATASETS[HMD].facts
    val = facts["paper_val_split"] if val is None else val
    test = facts["default_test_split"] if test is None else test
    allowed = [s for s in facts["splits"] if s != "train"]
    for role, split in (("validation", val), ("test", test)):
        if split not in allowed:
            raise UsageError(
                "{} split {!r}: expected one of {}".format(role, split, ", ".join(allowed))
            )
    name = DATASETS[HMD].mmf_name
    base = f"dataset_config.{name}.annotations"
    path = name + "/defaults/annotations/%s.jsonl"
    return [
        f"{base}.val[0]={path % val}",
        f"{base}.test[0]={path % test}",
    ]
