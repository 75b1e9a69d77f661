"""Broken and hostile input through the `pekit` command, as a user meets it.

Every case ends one of two ways: refused, with exit code 1 (or 2 for usage) and one line on
stderr naming the file or option, nothing written and the source untouched; or accepted with
the right result. Never a traceback. Cases of one kind live beside their module's tests
(archives in test_data_hmd, kills in test_patch_engine, ...); these go through the CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers.hmd import make_hmd, zip_folder
from helpers.mmf_log_writer import training_log
from helpers.paper_runs import write_run
from helpers.trees import tree_hash
from pekit.core import jsonfile
from pekit.workflows.synthetic_mmh import TWEETS, make_tree

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def pekit(*argv, limited=False, cwd=None):
    """(exit code, stdout, stderr) of `pekit ARGV`; `limited`: as root without the capabilities
    that let root ignore file permissions (so permission failures happen as for a user)."""
    cmd = [sys.executable, "-m", "pekit", *map(str, argv)]
    if limited:
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *cmd]
    proc = subprocess.run(cmd, capture_output=True, cwd=cwd)
    return (
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )


def refused(result, code, *needles):
    rc, out, err = result
    assert rc == code, (rc, out, err)
    assert "Traceback" not in out + err, err
    assert len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


# ---- data -------------------------------------------------------------------------------


@pytest.fixture
def mmh(tmp_path):
    return make_tree(tmp_path / "MMHS150K")


def test_mmh_gt_that_is_a_folder(mmh, tmp_path):
    (mmh / "MMHS150K_GT.json").unlink()
    (mmh / "MMHS150K_GT.json").mkdir()
    refused(
        pekit("data", "mmh", mmh, "--data-dir", tmp_path / "o"),
        1,
        "MMHS150K_GT.json",
        "expected a file",
    )


def test_mmh_split_file_that_is_not_utf8(mmh, tmp_path):
    (mmh / "splits" / "val_ids.txt").write_bytes(b"\xff\xfe1114679353714016260\n")
    refused(pekit("data", "mmh", mmh, "--data-dir", tmp_path / "o"), 1, "val_ids.txt", "not UTF-8")


def test_mmh_tweet_text_with_a_lone_surrogate(mmh, tmp_path):
    gt = mmh / "MMHS150K_GT.json"
    gt.write_text(gt.read_text().replace("all three", "all \\ud800 three"))
    refused(
        pekit("data", "mmh", mmh, "--data-dir", tmp_path / "o"),
        1,
        "unpaired surrogate",
        TWEETS[3][0],
    )


def test_mmh_ocr_symlink_loop(mmh, tmp_path):
    loop = mmh / "img_txt" / (TWEETS[0][0] + ".json")
    loop.symlink_to(loop)
    refused(pekit("data", "mmh", mmh, "--data-dir", tmp_path / "o"), 1, loop.name, "cannot read")


def test_mmh_ocr_path_that_is_a_folder(mmh, tmp_path):
    (mmh / "img_txt" / (TWEETS[0][0] + ".json")).mkdir()
    refused(pekit("data", "mmh", mmh, "--data-dir", tmp_path / "o"), 1, "cannot read")


def test_data_dir_that_is_a_file(mmh, tmp_path):
    (tmp_path / "f").write_text("x")
    refused(pekit("data", "mmh", mmh, "--data-dir", tmp_path / "f"), 1, "not a folder")


@pytest.mark.skipif(
    not (IS_ROOT and shutil.which("setpriv")),
    reason="needs root and setpriv to drop the capabilities that bypass permissions",
)
def test_data_dir_that_is_read_only(mmh, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    out.chmod(0o555)
    refused(pekit("data", "mmh", mmh, "--data-dir", out, limited=True), 1, str(out))
    assert list(out.iterdir()) == []


@pytest.mark.skipif(
    not (IS_ROOT and shutil.which("setpriv")),
    reason="needs root and setpriv to drop the capabilities that bypass permissions",
)
def test_unreadable_input(mmh, tmp_path):
    (mmh / "MMHS150K_GT.json").chmod(0)
    refused(
        pekit("data", "mmh", mmh, "--data-dir", tmp_path / "o", limited=True),
        1,
        "MMHS150K_GT.json",
        "cannot read",
    )


@pytest.fixture
def tiny_disk(tmp_path):
    """A 512 KiB file system (tmpfs, mounted as root), removed after the test."""
    if not IS_ROOT or not shutil.which("mount"):
        pytest.skip("a full disk is made with a small tmpfs, which needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)]).returncode:
        pytest.skip("mounting a tmpfs is not allowed here")
    yield mnt
    subprocess.run(["umount", str(mnt)])


def test_a_full_disk_keeps_the_old_output_whole(tmp_path, tiny_disk):
    small = make_tree(tmp_path / "small")
    big = make_tree(
        tmp_path / "big", tweets=[(t[0], t[1], t[2] + " " + "x" * 120_000, t[3]) for t in TWEETS]
    )
    assert pekit("data", "mmh", small, "--data-dir", tiny_disk)[0] == 0
    out = tiny_disk / "datasets" / "mmh" / "defaults"
    before = tree_hash(out)
    refused(pekit("data", "mmh", big, "--data-dir", tiny_disk), 1, "No space left on device")
    assert tree_hash(out) == before
    # One version (the one in use) and the record naming it: nothing of the failed run.
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == sorted(
        [os.readlink(out / "annotations"), ".annotations.pekit.json"]
    )


def test_hmd_split_file_that_is_not_utf8(tmp_path):
    src = make_hmd(tmp_path / "copy")
    (src / "dev_seen.jsonl").write_bytes(b'{"id": 1, "img": "img/1.png", "text": "\xff"}\n')
    refused(
        pekit("data", "hmd", src, "--data-dir", tmp_path / "o", "--expect-counts", "none"),
        1,
        "dev_seen.jsonl",
        "not UTF-8",
    )


def test_hmd_zip_with_a_harmless_extra_member_is_accepted(tmp_path):
    folder = make_hmd(tmp_path / "copy")
    (folder / "LICENSE.txt").write_text("license")
    src = zip_folder(folder, tmp_path / "hm.zip")
    rc, _, err = pekit("data", "hmd", src, "--data-dir", tmp_path / "o", "--expect-counts", "none")
    assert rc == 0, err


# ---- logs and report ----------------------------------------------------------------------


def _log(tmp_path, *extra_lines):
    text = training_log("hateful_memes", max_updates=1000, log_interval=500)
    path = tmp_path / "train.log"
    path.write_text(text + "".join(line + "\n" for line in extra_lines))
    return path


@pytest.mark.parametrize(
    "line",
    [
        "2022-01-01T00:00:00 | mmf.trainers.callbacks.logistics: progress: 1e400/22000, "
        "train/hateful_memes/cross_entropy: nan, train/total_loss: nan, max mem: 10.0",
        "2022-01-01T00:00:00 | mmf.trainers.callbacks.logistics: progress: 1000/1000, "
        "val/hateful_memes/roc_auc: inf, val_time: 1s, best_update: nan, "
        "best_val/hateful_memes/roc_auc: nan",
    ],
)
def test_logs_with_non_finite_numbers_give_strict_json(tmp_path, line):
    rc, out, err = pekit("logs", _log(tmp_path, line))
    assert rc == 0, err
    parsed = jsonfile.loads(out)  # refuses NaN and Infinity
    assert parsed["log"].endswith("train.log")


@pytest.mark.parametrize("tolerance", ["nan", "inf", "-0.1", "abc"])
def test_report_tolerance_must_be_a_finite_number(tmp_path, tolerance):
    write_run(tmp_path / "r", "hmd", "fc")
    refused(
        pekit("report", "--results", tmp_path / "r", "--tolerance", tolerance), 2, "--tolerance"
    )


def test_report_md_that_is_a_folder(tmp_path):
    results = tmp_path / "r"
    write_run(results, "hmd", "fc")
    (results / "report.md").mkdir()
    refused(pekit("report", "--results", results), 1, "report.md", "is a folder")
    assert not (results / "report.json").exists()


@pytest.mark.parametrize(
    "run_record, says",
    [
        ([], "is a JSON list"),
        ({"status": "finished"}, "field 'run' is None"),
        (
            {
                "run": {"dataset": "hmd", "model": "visual_bert", "mode": "fc", "seed": 1},
                "status": "done",
            },
            "field 'status' is 'done'",
        ),
        ({"run": {"dataset": "hmd", "model": "visual_bert", "mode": "fc"}}, "field 'run.seed'"),
        (
            {"run": {"dataset": "hmd", "model": "visual_bert", "mode": "fc", "seed": "1"}},
            "field 'run.seed'",
        ),
    ],
)
def test_report_refuses_a_malformed_run_record(tmp_path, run_record, says):
    results = tmp_path / "r"
    write_run(results, "hmd", "fc")
    path = next(results.glob("runs/*/*/*/seed*/run.json"))
    path.write_text(json.dumps(run_record))
    refused(pekit("report", "--results", results), 1, str(path), says)


def test_report_flags_a_run_of_an_unknown_mode(tmp_path):
    results = tmp_path / "r"
    write_run(results, "hmd", "fc")
    path = next(results.glob("runs/*/*/*/seed*/run.json"))
    run_record = json.loads(path.read_text())
    run_record["run"]["mode"] = "lora9"
    path.write_text(json.dumps(run_record))
    rc, _, err = pekit("report", "--results", results)
    assert rc == 0 and "left out of the report: unknown mode 'lora9'" in err, err
    report = json.loads((results / "report.json").read_text())
    assert report["table2"] and all(row.get("mode") != "lora9" for row in report["table2"])
    assert "unknown mode 'lora9'" in (results / "report.md").read_text()


# ---- options ----------------------------------------------------------------------------


@pytest.mark.parametrize("mirror", ["not a url", "ftp://host/x", "http://"])
def test_assets_mirror_must_be_a_url(tmp_path, mirror):
    refused(pekit("assets", "fetch", "--data-dir", tmp_path, "--mirror", mirror), 2, "--mirror")


def test_run_batch_must_be_a_number(tmp_path):
    refused(
        pekit("run", "--dataset", "hmd", "--batch", "abc", "--results", tmp_path, "--dry-run"),
        2,
        "--batch",
    )
