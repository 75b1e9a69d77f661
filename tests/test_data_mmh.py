"""MMHS150K -> MMF `mmh` annotations, on synthetic MMHS150K trees built here."""

import argparse
import json
import os
import signal

import pytest

from helpers.kills import kit_scratch, pekit_killed_at
from helpers.trees import tree_hash
from pekit.commands import data as data_cli
from pekit.core.errors import PekitError
from pekit.data.mmh import MMHInputError, clean_tweet_text, convert_mmh, join_text
from pekit.workflows.synthetic_mmh import TWEETS, make_tree


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture
def src(tmp_path):
    return make_tree(tmp_path / "MMHS150K")


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "mmf_data"


def out_dir(data_dir):
    return data_dir / "datasets" / "mmh" / "defaults"


def test_convert_any_rule_fields_ids_text(src, data_dir):
    before = tree_hash(src)
    s = convert_mmh(src, data_dir, show_progress=False)
    assert tree_hash(src) == before
    ann = out_dir(data_dir) / "annotations"
    rows = {split: read_jsonl(ann / f"{split}.jsonl") for split in ("train", "val", "test")}
    assert [len(rows[s_]) for s_ in ("train", "val", "test")] == [4, 2, 2]
    flat = rows["train"] + rows["val"] + rows["test"]
    # running integer ids over train, val, test; the tweet id kept as a string
    assert [r["id"] for r in flat] == list(range(1, 9))
    assert [r["tweet_id"] for r in flat] == [t[0] for t in TWEETS]
    assert all(isinstance(r["tweet_id"], str) for r in flat)
    assert flat[0]["img"] == "img_resized/1114679353714016256.jpg"
    assert [r["label"] for r in flat] == [0, 1, 1, 1, 1, 0, 1, 0]
    assert [r["labels"] for r in flat] == [t[1] for t in TWEETS]
    assert flat[0]["text"] == "just a normal day"
    assert flat[1]["text"] == "one says racist some ocr"
    assert flat[3]["text"] == "all three OCR with spaces"
    assert flat[4]["text"] == "only ocr"
    assert s["balance"]["train"] == {
        "total": 4,
        "positive": 3,
        "negative": 1,
        "positive_rate": 0.75,
    }
    assert s["balance"]["val"]["positive"] == 1
    assert s["balance"]["test"]["positive"] == 1
    # images are linked, not copied, and SRC stays untouched
    link = out_dir(data_dir) / "images" / "img_resized"
    assert link.is_symlink() and (link / "1114679353714016256.jpg").is_file()
    assert (out_dir(data_dir) / "features").is_dir()


def test_majority_rule(src, data_dir):
    s = convert_mmh(src, data_dir, label_rule="majority", show_progress=False)
    ann = out_dir(data_dir) / "annotations"
    flat = [r for sp in ("train", "val", "test") for r in read_jsonl(ann / f"{sp}.jsonl")]
    assert [r["label"] for r in flat] == [0, 0, 1, 1, 0, 0, 1, 0]
    assert s["balance"]["train"]["positive"] == 2
    assert s["balance"]["val"]["positive"] == 0
    assert json.loads((out_dir(data_dir) / "conversion.json").read_text())["label_rule"] == (
        "majority"
    )


def test_text_rules():
    assert clean_tweet_text("a https://t.co/abc b http://T.CO/x c") == "a b c"
    assert clean_tweet_text("keep https://example.com/x") == "keep https://example.com/x"
    assert join_text("tweet https://t.co/q", "ocr\ttext") == "tweet ocr text"
    assert join_text("tweet", "") == "tweet"
    assert join_text("https://t.co/q", None) == ""


def test_rerun_is_idempotent(src, data_dir):
    convert_mmh(src, data_dir, show_progress=False)
    ann = out_dir(data_dir) / "annotations"
    stamps = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in ann.glob("*.json*")}
    convert_mmh(src, data_dir, show_progress=False)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in ann.glob("*.json*")} == stamps
    assert not [p for p in out_dir(data_dir).rglob("*.tmp")]


def test_copy_images(src, data_dir):
    convert_mmh(src, data_dir, images="copy", show_progress=False)
    img = out_dir(data_dir) / "images" / "img_resized"
    assert not img.is_symlink()
    assert sorted(p.name for p in img.iterdir()) == sorted(t[0] + ".jpg" for t in TWEETS)


def assert_refused(src, data_dir, *needles, **kwargs):
    before = tree_hash(src)
    with pytest.raises(MMHInputError) as e:
        convert_mmh(src, data_dir, show_progress=False, **kwargs)
    for needle in needles:
        assert needle in str(e.value), str(e.value)
    assert tree_hash(src) == before
    # nothing half-written
    assert not (out_dir(data_dir) / "annotations").exists()
    return str(e.value)


def test_refuses_malformed_gt_json(src, data_dir):
    gt = src / "MMHS150K_GT.json"
    text = gt.read_text()
    gt.write_text(text.replace('"labels": [', '"labels": [,', 1))
    line = text[: text.index('"labels": [')].count("\n") + 1
    assert_refused(src, data_dir, str(gt), "malformed JSON", f"line {line} column ", "char ")


def test_refuses_malformed_ocr_json(src, data_dir):
    bad = src / "img_txt" / "1114679353714016257.json"
    bad.write_text('{"img_text": "unterminated}')
    assert_refused(src, data_dir, str(bad), "malformed JSON", "line 1")


def test_refuses_split_ids_absent_from_gt(src, data_dir):
    val = src / "splits" / "val_ids.txt"
    val.write_text(val.read_text() + "999999999999999999\n")
    assert_refused(src, data_dir, str(val), "1 of 3 tweet ids are not keys", "999999999999999999")


def test_refuses_overlapping_splits(src, data_dir):
    test = src / "splits" / "test_ids.txt"
    test.write_text(test.read_text() + TWEETS[0][0] + "\n")
    assert_refused(src, data_dir, "train_ids.txt", "test_ids.txt", "share 1 tweet ids")


def test_refuses_train_identical_to_test(src, data_dir):
    # a known bad copy ships train_ids.txt identical to test_ids.txt
    (src / "splits" / "train_ids.txt").write_bytes((src / "splits" / "test_ids.txt").read_bytes())
    assert_refused(src, data_dir, "is identical to", "broken")


def test_refuses_repeated_split_id(src, data_dir):
    val = src / "splits" / "val_ids.txt"
    val.write_text(val.read_text() + TWEETS[4][0] + "\n")
    assert_refused(src, data_dir, str(val), "repeats line 1")


@pytest.mark.parametrize(
    "labels", [[0, 7, 0], [0, "1", 0], [0, 1], None, [0, 1.0, 0], [True, 0, 0]]
)
def test_refuses_unknown_labels(tmp_path, labels):
    tweets = list(TWEETS)
    tid = tweets[2][0]
    tweets[2] = (tid, labels, "text", None)
    src = make_tree(tmp_path / "MMHS150K", tweets)
    assert_refused(src, tmp_path / "out", "MMHS150K_GT.json", f"tweet {tid}", "'labels'")


def test_refuses_missing_tweet_text(tmp_path):
    tweets = list(TWEETS)
    tweets[1] = (tweets[1][0], [0, 0, 0], None, None)
    src = make_tree(tmp_path / "MMHS150K", tweets)
    assert_refused(src, tmp_path / "out", "'tweet_text'", "expected a string")


def test_missing_images_fail_then_skip(tmp_path):
    gone = (TWEETS[1][0], TWEETS[6][0])
    src = make_tree(tmp_path / "MMHS150K", skip_images=gone)
    data_dir = tmp_path / "out"
    assert_refused(src, data_dir, "2 images are missing", "train 1", "test 1", "--missing-images")
    s = convert_mmh(src, data_dir, missing_images="skip", show_progress=False)
    assert s["skipped"] == {"train": 1, "val": 0, "test": 1}
    assert s["balance"]["train"]["total"] == 3
    ann = out_dir(data_dir) / "annotations"
    tids = [r["tweet_id"] for sp in ("train", "test") for r in read_jsonl(ann / f"{sp}.jsonl")]
    assert not set(gone) & set(tids)


def test_refuses_non_mmhs_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MMHInputError, match="not an MMHS150K folder"):
        convert_mmh(tmp_path / "empty", tmp_path / "out", show_progress=False)


def test_refused_rerun_keeps_previous_output(src, data_dir):
    convert_mmh(src, data_dir, show_progress=False)
    ann = out_dir(data_dir) / "annotations"
    before = {p.name: _content(p) for p in ann.iterdir()}
    (src / "splits" / "train_ids.txt").write_bytes((src / "splits" / "test_ids.txt").read_bytes())
    with pytest.raises(MMHInputError):
        convert_mmh(src, data_dir, label_rule="majority", show_progress=False)
    assert {p.name: _content(p) for p in ann.iterdir()} == before


def test_bad_option_is_refused(src, data_dir):
    with pytest.raises(PekitError, match="label rule"):
        convert_mmh(src, data_dir, label_rule="some", show_progress=False)


def test_cli_prints_class_balance(src, data_dir, capsys):
    parser = argparse.ArgumentParser()
    data_cli.register(parser.add_subparsers())
    args = parser.parse_args(["data", "mmh", str(src), "--data-dir", str(data_dir)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "label rule: any" in out
    assert "train       4         3         1       75.0" in out


# ---------------------------------------------------------------------------------------------
# A kill at any step of a conversion: readers see the old set or the new one, then and always.


def _content(path):
    """A file's bytes, or where a link points."""
    return os.readlink(path) if path.is_symlink() else path.read_bytes()


def reader_view(out):
    """What a reader of the output sees: every annotation file and conversion.json."""
    ann = out / "annotations"
    if not ann.exists():
        return None
    view = {name: _content(ann / name) for name in sorted(os.listdir(ann))}
    view["<conversion.json>"] = (out / "conversion.json").read_bytes()
    return view


def test_a_kill_at_any_step_of_a_conversion_leaves_the_old_set_or_the_new(src, data_dir, tmp_path):
    out = out_dir(data_dir)
    reference = tmp_path / "reference"
    convert_mmh(src, reference, label_rule="majority", show_progress=False)
    new = reader_view(out_dir(reference))
    killed = 0
    for step in range(1, 200):
        convert_mmh(src, data_dir, label_rule="any", show_progress=False)
        old = reader_view(out)
        assert old != new
        rc, output = pekit_killed_at(
            step, "data", "mmh", src, "--data-dir", data_dir, "--label-rule", "majority"
        )
        if rc != -signal.SIGKILL:
            assert rc == 0, output
            break
        killed += 1
        assert reader_view(out) in (old, new), step
        # The same command again finishes, and leaves nothing of the killed run behind.
        convert_mmh(src, data_dir, label_rule="majority", show_progress=False)
        assert reader_view(out) == new
        assert not kit_scratch(out), kit_scratch(out)
        assert len(list(out.glob(".annotations-*"))) == 1
    print(f"mmh conversion: {killed} kill points, each the old set or the new")
    assert killed >= 8, killed
    assert reader_view(out) == new


def test_a_refusal_comes_before_any_write(src, data_dir):
    """--images copy, then the default link mode: refused before the annotations change."""
    convert_mmh(src, data_dir, images="copy", show_progress=False)
    before = tree_hash(out_dir(data_dir))
    with pytest.raises(MMHInputError, match="exists and is not a link.*nothing written"):
        convert_mmh(src, data_dir, label_rule="majority", show_progress=False)
    assert tree_hash(out_dir(data_dir)) == before


def test_a_copy_follows_an_image_whose_bytes_change_but_not_its_size(src, data_dir):
    convert_mmh(src, data_dir, images="copy", show_progress=False)
    image = src / "img_resized" / (TWEETS[0][0] + ".jpg")
    data = bytearray(image.read_bytes())
    data[-1] ^= 0xFF
    image.write_bytes(bytes(data))
    convert_mmh(src, data_dir, images="copy", show_progress=False)
    assert (out_dir(data_dir) / "images" / "img_resized" / image.name).read_bytes() == bytes(data)


def test_a_dangling_image_link_is_a_missing_image(src, data_dir):
    image = src / "img_resized" / (TWEETS[2][0] + ".jpg")
    image.unlink()
    image.symlink_to(src / "nowhere.jpg")
    with pytest.raises(MMHInputError, match="1 images are missing"):
        convert_mmh(src, data_dir, show_progress=False)


def test_files_get_the_users_umask(src, data_dir):
    old = os.umask(0o022)
    try:
        convert_mmh(src, data_dir, images="copy", show_progress=False)
    finally:
        os.umask(old)
    out = out_dir(data_dir)
    for path in [
        out / "annotations" / "train.jsonl",
        out / "conversion.json",
        out / "images" / "img_resized" / (TWEETS[0][0] + ".jpg"),
    ]:
        assert path.stat().st_mode & 0o777 == 0o644, path
