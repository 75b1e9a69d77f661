"""Hateful Memes laid out for MMF from a synthetic copy, in both accepted shapes."""

import contextlib
import re
import shutil
import signal
import subprocess
import sys
import zipfile

import pytest

from helpers.hmd import SPLITS, make_hmd, out_dir, zip_folder
from helpers.kills import kit_scratch, pekit_killed_at
from helpers.trees import tree_hash
from pekit.core.errors import PekitError, UsageError
from pekit.data.hmd import HMDInputError, hmd_split_overrides, layout_hmd


def check_layout(src_folder, data_dir):
    out = out_dir(data_dir)
    for split in SPLITS:
        assert (out / "annotations" / f"{split}.jsonl").read_bytes() == (
            src_folder / f"{split}.jsonl"
        ).read_bytes()
    assert sorted(p.name for p in (out / "images" / "img").iterdir()) == sorted(
        p.name for p in (src_folder / "img").iterdir()
    )
    assert (out / "features").is_dir() and (out / "extras").is_dir()


@pytest.mark.parametrize("shape", ["folder", "folder/data", "zip", "zip-flat"])
def test_layout_both_shapes(tmp_path, shape):
    folder = make_hmd(tmp_path / "copy")
    if shape == "folder":
        src = folder
    elif shape == "folder/data":
        src = tmp_path / "unzipped"
        shutil.copytree(folder, src / "data")
    elif shape == "zip":
        src = zip_folder(folder, tmp_path / "hateful_memes.zip")
    else:
        src = zip_folder(folder, tmp_path / "mirror.zip", prefix="hateful_memes/")
    before = tree_hash(tmp_path)
    data_dir = tmp_path.parent / (tmp_path.name + "-mmf")
    s = layout_hmd(src, data_dir, expect_counts="none", show_progress=False)
    assert tree_hash(tmp_path) == before  # SRC untouched
    assert s["counts"] == SPLITS
    assert s["images_missing"] == 0 and s["images_copied"] == sum(SPLITS.values())
    check_layout(folder, data_dir)
    # idempotent: a re-run copies nothing and changes nothing
    stamps = tree_hash(out_dir(data_dir))
    s2 = layout_hmd(src, data_dir, expect_counts="none", show_progress=False)
    assert s2["images_copied"] == 0
    assert tree_hash(out_dir(data_dir)) == stamps


def test_strict_counts_refuse_a_subset(tmp_path):
    src = make_hmd(tmp_path / "copy")
    with pytest.raises(HMDInputError) as e:
        layout_hmd(src, tmp_path / "mmf", show_progress=False)
    msg = str(e.value)
    assert "train.jsonl has 6 (expected 8500)" in msg
    assert "dev_seen.jsonl has 2 (expected 500)" in msg
    assert "--expect-counts none" in msg
    assert not (out_dir(tmp_path / "mmf") / "annotations").exists()


def test_missing_images_are_reported_not_fatal(tmp_path):
    src = make_hmd(tmp_path / "copy", missing_image="img/01003.png")
    s = layout_hmd(src, tmp_path / "mmf", expect_counts="none", show_progress=False)
    assert s["images_missing"] == 1
    assert s["missing_examples"] == ["img/01003.png"]


@pytest.mark.parametrize(
    "mutate, needles",
    [
        (lambda sp, r: {k: v for k, v in r.items() if k != "text"}, ["missing field(s) text"]),
        (
            lambda sp, r: {k: v for k, v in r.items() if k != "label"} if sp == "train" else r,
            ["train.jsonl: line 1", "missing field(s) label"],
        ),
        (lambda sp, r: dict(r, label=2) if "label" in r else r, ["'label' is 2", "0 or 1"]),
        (lambda sp, r: dict(r, img="elsewhere/x.png"), ["'img'", "img/<file>"]),
        (lambda sp, r: dict(r, id="abc"), ["'id'", "integer"]),
    ],
)
def test_refuses_bad_fields(tmp_path, mutate, needles):
    src = make_hmd(tmp_path / "copy", mutate=mutate)
    with pytest.raises(HMDInputError) as e:
        layout_hmd(src, tmp_path / "mmf", expect_counts="none", show_progress=False)
    for needle in needles:
        assert needle in str(e.value)
    assert not (out_dir(tmp_path / "mmf") / "annotations").exists()


def test_refuses_malformed_jsonl(tmp_path):
    src = make_hmd(tmp_path / "copy")
    with open(src / "dev_unseen.jsonl", "a") as f:
        f.write('{"id": 1, "img": \n')
    with pytest.raises(HMDInputError, match=r"dev_unseen.jsonl: line 3 column \d+: malformed JSON"):
        layout_hmd(src, tmp_path / "mmf", expect_counts="none", show_progress=False)


def test_refuses_incomplete_copy(tmp_path):
    src = make_hmd(tmp_path / "copy")
    (src / "test_unseen.jsonl").unlink()
    with pytest.raises(HMDInputError, match="test_unseen.jsonl"):
        layout_hmd(src, tmp_path / "mmf", expect_counts="none", show_progress=False)
    with pytest.raises(HMDInputError, match="not a zip file"):
        layout_hmd(src / "README.md", tmp_path / "mmf", show_progress=False)


@pytest.mark.skipif(not (shutil.which("zip") and shutil.which("unzip")), reason="needs zip/unzip")
def test_password_zip(tmp_path):
    folder = make_hmd(tmp_path / "copy" / "data")
    zip_path = tmp_path / "challenge.zip"
    subprocess.run(
        ["zip", "-q", "-r", "-P", "secret", str(zip_path), "data"],
        cwd=tmp_path / "copy",
        check=True,
    )
    with pytest.raises(HMDInputError, match="unzip failed"):
        layout_hmd(zip_path, tmp_path / "mmf", password="wrong", expect_counts="none")
    s = layout_hmd(zip_path, tmp_path / "mmf", password="secret", expect_counts="none")
    assert s["images_copied"] == sum(SPLITS.values())
    check_layout(folder, tmp_path / "mmf")
    assert not list(out_dir(tmp_path / "mmf").glob(".hmd-unzip-*"))


def test_split_overrides():
    assert hmd_split_overrides() == [
        "dataset_config.hateful_memes.annotations.val[0]="
        "hateful_memes/defaults/annotations/dev_seen.jsonl",
        "dataset_config.hateful_memes.annotations.test[0]="
        "hateful_memes/defaults/annotations/test_seen.jsonl",
    ]
    assert hmd_split_overrides("dev_unseen", "test_unseen")[0].endswith("dev_unseen.jsonl")
    with pytest.raises(UsageError):
        hmd_split_overrides("train")


# ---------------------------------------------------------------------------------------------
# Hostile archives: every member name is checked before anything is extracted or written.


def _hostile_zip(folder, path, extra):
    """A zip of a good copy (under data/) plus `extra` members: (ZipInfo or name, bytes)."""
    zip_folder(folder, path)
    with zipfile.ZipFile(path, "a") as zf:
        for info, data in extra:
            zf.writestr(info, data)
    return path


def _link_member(name, target):
    info = zipfile.ZipInfo(name)
    info.external_attr = (0o120777 << 16) | 0x20
    return info, target.encode()


@pytest.mark.parametrize(
    "extra, says",
    [
        ([("../../../../x/train.jsonl", b"{}")], "'..' or '.' in its path"),
        ([("data/img/../../escape.png", b"x")], "'..' or '.' in its path"),
        ([("data/img/..", b"x")], "'..' or '.' in its path"),
        ([("/etc/passwd-copy", b"x")], "an absolute path"),
        ([("data\\img\\evil.png", b"x")], "a backslash"),
        ([_link_member("data/img/link.png", "/etc/passwd")], "a symbolic link"),
        ([("data/README.md", b"again")], "appears twice"),
    ],
)
def test_a_hostile_member_refuses_the_archive_before_any_write(tmp_path, extra, says):
    folder = make_hmd(tmp_path / "copy")
    victim = tmp_path / "x"  # what a traversal would reach: must stay as it is
    (victim / "img").mkdir(parents=True)
    (victim / "img" / "keep.png").write_bytes(b"mine")
    with pytest.warns(UserWarning) if "twice" in says else contextlib.nullcontext():
        src = _hostile_zip(folder, tmp_path / "hostile.zip", extra)
    before = tree_hash(victim)
    data_dir = tmp_path / "mmf"
    with pytest.raises(PekitError, match=re.escape(says)):
        layout_hmd(src, data_dir, expect_counts="none", show_progress=False)
    assert tree_hash(victim) == before
    assert not (out_dir(data_dir) / "annotations").exists()
    assert not (out_dir(data_dir) / "images").exists()


def test_a_damaged_member_is_refused_in_one_line(tmp_path):
    src = zip_folder(make_hmd(tmp_path / "copy"), tmp_path / "hm.zip")
    data = bytearray(src.read_bytes())
    at = data.find(b"meme 1001")  # inside train.jsonl's stored bytes
    data[at] ^= 0x01
    src.write_bytes(bytes(data))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pekit",
            "data",
            "hmd",
            str(src),
            "--data-dir",
            str(tmp_path / "mmf"),
            "--expect-counts",
            "none",
        ],
        capture_output=True,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "damaged" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("label", [True, 1.0, "1", None])
def test_labels_are_the_integers_0_and_1(tmp_path, label):
    src = make_hmd(
        tmp_path / "copy", mutate=lambda sp, r: dict(r, label=label) if "label" in r else r
    )
    with pytest.raises(HMDInputError, match="expected 0 or 1"):
        layout_hmd(src, tmp_path / "mmf", expect_counts="none", show_progress=False)


def test_an_image_changed_in_place_is_copied_again(tmp_path):
    src = make_hmd(tmp_path / "copy")
    layout_hmd(src, tmp_path / "mmf", expect_counts="none", show_progress=False)
    image = next((src / "img").iterdir())
    data = bytearray(image.read_bytes())
    data[0] ^= 0xFF
    image.write_bytes(bytes(data))
    s = layout_hmd(src, tmp_path / "mmf", expect_counts="none", show_progress=False)
    assert s["images_copied"] == 1
    assert (out_dir(tmp_path / "mmf") / "images" / "img" / image.name).read_bytes() == bytes(data)


def test_a_data_dir_that_is_a_file_is_refused(tmp_path):
    src = make_hmd(tmp_path / "copy")
    (tmp_path / "file").write_text("x")
    with pytest.raises(PekitError, match="exists and is not a folder"):
        layout_hmd(src, tmp_path / "file" / "mmf", expect_counts="none", show_progress=False)


@pytest.mark.skipif(not (shutil.which("zip") and shutil.which("unzip")), reason="needs zip/unzip")
def test_a_kill_at_any_step_leaves_the_old_annotations_or_the_new(tmp_path):
    """The challenge zip's path (unzip into a staging folder in the output), killed anywhere."""
    zips = {}
    for name in ("old", "new"):
        folder = make_hmd(tmp_path / name / "data")
        if name == "new":
            for f in folder.glob("*.jsonl"):
                f.write_text(f.read_text().replace("meme", "MEME"))
        zips[name] = tmp_path / f"{name}.zip"
        subprocess.run(
            ["zip", "-q", "-r", "-P", "pw", str(zips[name]), "data"],
            cwd=str(tmp_path / name),
            check=True,
        )
    data_dir = tmp_path / "mmf"
    out = out_dir(data_dir)

    def view():
        ann = out / "annotations"
        return {p.name: p.read_bytes() for p in sorted(ann.iterdir())} if ann.exists() else None

    layout_hmd(zips["new"], data_dir, password="pw", expect_counts="none", show_progress=False)
    new = view()
    killed = 0
    for step in range(1, 400):
        layout_hmd(zips["old"], data_dir, password="pw", expect_counts="none", show_progress=False)
        old = view()
        rc, output = pekit_killed_at(
            step,
            "data",
            "hmd",
            zips["new"],
            "--data-dir",
            data_dir,
            "--password",
            "pw",
            "--expect-counts",
            "none",
        )
        if rc != -signal.SIGKILL:
            assert rc == 0, output
            break
        killed += 1
        assert view() in (old, new), step
        layout_hmd(zips["new"], data_dir, password="pw", expect_counts="none", show_progress=False)
        assert view() == new
        assert not kit_scratch(out), kit_scratch(out)
    print(f"hmd layout: {killed} kill points, each the old set or the new")
    assert killed >= 5, killed
