"""The kit deletes or replaces only what it can prove it wrote (pekit.core.ownership).

One test per deleting or replacing operation: the user's own things are put in every path it
would remove, and the command must refuse in one line naming the path, leave the user's files
byte for byte, and write nothing else. Beside each, the kit's own output is still replaced.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers.asset_server import ARCHIVE, VOCAB, WEIGHTS, Server, fetch_assets
from helpers.hmd import make_hmd
from helpers.hmd import out_dir as hmd_out
from helpers.paper_runs import write_run
from pekit import cli
from pekit.core import atomic, ownership
from pekit.core.errors import OwnershipError
from pekit.data.hmd import layout_hmd
from pekit.data.mmh import convert_mmh
from pekit.run import execute, record
from pekit.run.spec import RunSpec
from pekit.setup import gpu_bundle, node, wheelhouse
from pekit.workflows import demo, gpu_check
from pekit.workflows.synthetic_mmh import make_tree


def snapshot(root):
    """Everything under `root`, links not followed: {path: ("dir",) | ("link", target) |
    ("file", bytes, mode)}; equal snapshots mean nothing was written, moved or removed."""
    root = Path(root)
    found = {}
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, str(root))
            if os.path.islink(path):
                found[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                found[rel] = ("dir",)
            else:
                with open(path, "rb") as f:
                    found[rel] = ("file", f.read(), os.stat(path).st_mode)
    return found


def user_folder(path, files=None):
    """A folder of the user's own files (and a subfolder)."""
    path = Path(path)
    (path / "mine").mkdir(parents=True)
    for name, data in (files or {"notes.txt": b"my notes\n", "mine/data.bin": b"\x00\x01"}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return path


def refused(argv, capsys, path):
    """`pekit ARGV` exits 1 with one line on stderr naming `path`; returns the line."""
    capsys.readouterr()
    rc = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert str(path) in err and "left as it is" in err and "mv " in err, err
    return err


def refused_api(call, path):
    with pytest.raises(OwnershipError) as err:
        call()
    line = str(err.value)
    assert "\n" not in line and str(path) in line and "left as it is" in line, line
    return line


# ---- a published dataset folder (atomic.publish_folder): pekit data hmd|mmh ---------------


@pytest.fixture
def hmd_src(tmp_path):
    return make_hmd(tmp_path / "copy")


def hmd_argv(src, data_dir):
    return ["data", "hmd", src, "--data-dir", data_dir, "--expect-counts", "none"]


@pytest.mark.parametrize("kind", ["folder", "file", "link"])
def test_hmd_refuses_what_the_user_put_where_its_annotations_link_goes(
    hmd_src, tmp_path, capsys, kind
):
    data_dir = tmp_path / "mmf"
    out = hmd_out(data_dir)
    ann = out / "annotations"
    if kind == "folder":
        user_folder(ann, {"train.jsonl": b'{"mine": 1}\n', "notes.txt": b"keep\n"})
    elif kind == "file":
        out.mkdir(parents=True)
        ann.write_bytes(b"my file\n")
    else:
        user_folder(tmp_path / "my_annotations")
        out.mkdir(parents=True)
        ann.symlink_to(tmp_path / "my_annotations")
    before = snapshot(tmp_path)
    refused(hmd_argv(hmd_src, data_dir), capsys, ann)
    assert snapshot(tmp_path) == before


def test_hmd_leaves_a_users_folder_named_like_its_versions(hmd_src, tmp_path, capsys):
    data_dir = tmp_path / "mmf"
    out = hmd_out(data_dir)
    layout_hmd(hmd_src, data_dir, expect_counts="none", show_progress=False)
    first = os.readlink(out / "annotations")
    user_folder(out / ".annotations-backup")
    user_folder(out / ".annotations-0123456789ab")  # the kit's very form, never recorded
    user_folder(out / ".hmd-unzip-mine")  # named like the zip's staging folder
    mine = {
        n: snapshot(out / n)
        for n in (".annotations-backup", ".annotations-0123456789ab", ".hmd-unzip-mine")
    }
    (hmd_src / "train.jsonl").write_text(
        (hmd_src / "train.jsonl").read_text().replace("meme", "MEME")
    )
    assert cli.main([str(a) for a in hmd_argv(hmd_src, data_dir)]) == 0
    # The kit's own version was replaced (and its old one removed); the user's stay whole.
    now = os.readlink(out / "annotations")
    assert now != first and not (out / first).exists()
    assert b"MEME" in (out / "annotations" / "train.jsonl").read_bytes()
    for name, snap in mine.items():
        assert snapshot(out / name) == snap, name
    assert json.loads(atomic.record_path(out / "annotations").read_text())["versions"] == [now]


def test_hmd_removes_only_a_staging_folder_it_marked(hmd_src, tmp_path):
    data_dir = tmp_path / "mmf"
    out = hmd_out(data_dir)
    layout_hmd(hmd_src, data_dir, expect_counts="none", show_progress=False)
    killed = out / ".hmd-unzip-abc123"  # what a killed run left: marked
    killed.mkdir()
    (killed / ".pekit-hmd-unzip").write_text("made by pekit\n")
    (killed / "img").mkdir()
    empty = out / ".hmd-unzip-empty"  # killed between its making and its mark
    empty.mkdir()
    layout_hmd(hmd_src, data_dir, expect_counts="none", show_progress=False)
    assert not killed.exists() and not empty.exists()


def test_a_malformed_record_of_versions_is_refused(hmd_src, tmp_path, capsys):
    data_dir = tmp_path / "mmf"
    out = hmd_out(data_dir)
    layout_hmd(hmd_src, data_dir, expect_counts="none", show_progress=False)
    record_file = atomic.record_path(out / "annotations")
    record_file.write_text('{"versions": ["../../home"]}')
    before = snapshot(tmp_path)
    refused(hmd_argv(hmd_src, data_dir), capsys, record_file)
    assert snapshot(tmp_path) == before


def test_a_link_of_an_earlier_kit_is_taken_and_its_version_kept(tmp_path):
    """Before records, the kit made `annotations -> .annotations-<id>`: that link is replaced,
    its version (never recorded) is left where it is."""
    ann = tmp_path / "annotations"
    old = tmp_path / ".annotations-0123456789ab"
    old.mkdir()
    (old / "a.jsonl").write_bytes(b"old")
    ann.symlink_to(old.name)
    assert atomic.publish_folder(ann, {"a.jsonl": b"new"})
    assert (ann / "a.jsonl").read_bytes() == b"new" and (old / "a.jsonl").read_bytes() == b"old"
    assert atomic.publish_folder(ann, {"a.jsonl": b"newer"})
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        ["annotations", old.name, os.readlink(ann), atomic.record_path(ann).name]
    )


def test_publish_removes_a_version_a_killed_run_recorded(tmp_path):
    ann = tmp_path / "annotations"
    atomic.publish_folder(ann, {"a.jsonl": b"1"})
    # A run killed after its pending record and version, before its switch:
    txid = "00112233aabb"
    atomic._begin(
        ann, txid, {"version": f".annotations-{txid}", "link": f".annotations.pekit-{txid}.new"}
    )
    (tmp_path / f".annotations-{txid}").mkdir()
    (tmp_path / f".annotations-{txid}" / "a.jsonl").write_bytes(b"half")
    assert not atomic.publish_folder(ann, {"a.jsonl": b"1"})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["annotations", os.readlink(ann), atomic.record_path(ann).name]
    )


@pytest.fixture
def mmh_src(tmp_path):
    return make_tree(tmp_path / "MMHS150K")


def mmh_out(data_dir):
    return data_dir / "datasets" / "mmh" / "defaults"


@pytest.mark.parametrize(
    "where", ["annotations", "conversion.json", "images link", "copy over a link"]
)
def test_mmh_refuses_what_the_user_put_where_it_writes(mmh_src, tmp_path, capsys, where):
    data_dir = tmp_path / "mmf"
    out = mmh_out(data_dir)
    argv = ["data", "mmh", mmh_src, "--data-dir", data_dir]
    if where == "annotations":
        path = user_folder(out / "annotations", {"train.jsonl": b"{}\n"})
    elif where == "conversion.json":
        out.mkdir(parents=True)
        path = out / "conversion.json"
        path.write_text('{"my": "settings"}\n')
    else:
        (out / "images").mkdir(parents=True)
        path = out / "images" / "img_resized"
        user_folder(tmp_path / "my_images")
        path.symlink_to(tmp_path / "my_images")
        if where == "copy over a link":
            argv += ["--images", "copy"]
    before = snapshot(tmp_path)
    refused(argv, capsys, path)
    assert snapshot(tmp_path) == before


def test_mmh_replaces_its_own_outputs_of_every_layout(mmh_src, tmp_path):
    data_dir = tmp_path / "mmf"
    out = mmh_out(data_dir)
    convert_mmh(mmh_src, data_dir, show_progress=False)
    first = os.readlink(out / "annotations")
    # An older kit's conversion.json (a file with the kit's keys) becomes the link again.
    conversion = json.loads((out / "conversion.json").read_text())
    (out / "conversion.json").unlink()
    (out / "conversion.json").write_text(json.dumps(conversion))
    convert_mmh(mmh_src, data_dir, label_rule="majority", show_progress=False)
    assert (out / "conversion.json").is_symlink() and os.readlink(out / "annotations") != first
    # The kit's images link gives way to a copy.
    convert_mmh(mmh_src, data_dir, images="copy", show_progress=False)
    img = out / "images" / "img_resized"
    assert img.is_dir() and not img.is_symlink() and any(img.iterdir())


# ---- a folder built whole beside its place (atomic.staged_folder) -------------------------


def fake_pip(monkeypatch, wheels=("a-1.0-py3-none-any.whl",)):
    """`pip download` without the network: writes `wheels` into its --dest."""

    def run_pip(cmd, what, env=None):
        if "--dest" in cmd:
            dest = Path(cmd[cmd.index("--dest") + 1])
            for name in wheels:
                (dest / name).write_bytes(b"wheel " + name.encode())

    monkeypatch.setattr(wheelhouse, "run_pip", run_pip)


@pytest.mark.parametrize(
    "case", ["no record", "an added file", "a changed wheel", "a subfolder", "a file"]
)
def test_a_wheelhouse_is_replaced_only_as_the_kit_wrote_it(tmp_path, capsys, monkeypatch, case):
    fake_pip(monkeypatch)
    out = tmp_path / "wh"
    if case == "file":
        out.write_bytes(b"my file")
    elif case == "no record":
        user_folder(out)
    else:
        wheelhouse.build(out, python="3.12", echo=lambda _: None)
        if case == "an added file":
            (out / "my-own-1.0-py3-none-any.whl").write_bytes(b"the user's")
        elif case == "a changed wheel":
            (out / "a-1.0-py3-none-any.whl").write_bytes(b"the user's own build of a")
        else:
            user_folder(out / "extra")
    before = snapshot(tmp_path)
    refused(["wheelhouse", out, "--python", "3.12"], capsys, out)
    assert snapshot(tmp_path) == before


def test_the_kits_wheelhouse_is_replaced_and_a_users_staged_lookalike_kept(tmp_path, monkeypatch):
    fake_pip(monkeypatch)
    out = tmp_path / "wh"
    wheelhouse.build(out, python="3.12", echo=lambda _: None)
    lookalike = user_folder(tmp_path / ".wh.pekit-0123456789ab.new")
    mine = snapshot(lookalike)
    fake_pip(monkeypatch, wheels=("b-2.0-py3-none-any.whl",))
    wheelhouse.build(out, python="3.12", echo=lambda _: None)
    assert sorted(p.name for p in out.iterdir()) == [
        "b-2.0-py3-none-any.whl",
        "requirements.txt",
        "wheelhouse.json",
    ]
    assert snapshot(lookalike) == mine
    assert sorted(p.name for p in tmp_path.iterdir()) == [lookalike.name, "wh"]


def test_a_staged_folder_a_killed_run_recorded_is_removed(tmp_path):
    dest = tmp_path / "out"
    txid = "aabbccddeeff"
    atomic._begin(dest, txid, {"staged": f".out.pekit-{txid}.new"})
    (tmp_path / f".out.pekit-{txid}.new" / "half").mkdir(parents=True)
    with atomic.staged_folder(dest) as new:
        (new / "x").write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def bundle(out, files):
    """An earlier bundle as the kit records it: `files` ({path: bytes}) and its bundle.json."""
    for name, data in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    record = {"kind": "pekit-gpu-bundle", "files": {n: len(d) for n, d in files.items()}}
    (out / gpu_bundle.RECORD).write_text(json.dumps(record))


@pytest.mark.parametrize(
    "case", ["a user's folder", "a file added inside", "a changed file", "no file list"]
)
def test_a_bundle_is_replaced_only_as_the_kit_wrote_it(tmp_path, case):
    out = tmp_path / "bundle"
    if case == "a user's folder":
        user_folder(out)
    else:
        bundle(out, {"run.sh": b"#!/bin/sh\n", "kit/README.md": b"kit\n"})
        if case == "a file added inside":
            (out / "kit" / "my-notes.txt").write_text("mine")
        elif case == "a changed file":
            (out / "kit" / "README.md").write_text("my own readme, longer")
        else:
            (out / gpu_bundle.RECORD).write_text(json.dumps({"kind": "pekit-gpu-bundle"}))
    before = snapshot(tmp_path)
    refused_api(lambda: gpu_bundle.build(out, tmp_path / "node.json", echo=None), out)
    assert snapshot(tmp_path) == before


def test_a_bundle_as_the_kit_wrote_it_may_be_replaced(tmp_path):
    out = tmp_path / "bundle"
    bundle(out, {"run.sh": b"#!/bin/sh\n", "kit/README.md": b"kit\n"})
    assert gpu_bundle._check_destination(out) == out


@pytest.mark.parametrize("case", ["user's files", "marked"])
def test_lmdb_force_replaces_only_an_lmdb_it_wrote(tmp_path, capsys, case):
    pytest.importorskip("lmdb")
    np = pytest.importorskip("numpy")
    from pekit.features.files import synthetic_features, write_features

    src = tmp_path / "features"
    write_features(src, "42", *synthetic_features(np.random.default_rng(0), num_boxes=4, dim=8))
    out = tmp_path / "features.lmdb"
    argv = ["features", "lmdb", "--src", src, "--out", out, "--force"]
    if case == "user's files":
        user_folder(out, {"data.mdb": b"my own database"})
        before = snapshot(tmp_path)
        refused(argv, capsys, out)
        assert snapshot(tmp_path) == before
    else:
        assert cli.main([str(a) for a in argv]) == 0
        first = (out / "data.mdb").stat().st_ino
        assert cli.main([str(a) for a in argv]) == 0  # the kit's own, replaced
        assert (out / "data.mdb").stat().st_ino != first
        assert sorted(p.name for p in tmp_path.iterdir()) == ["features", "features.lmdb"]


# ---- folders the kit marks: a node's venv, the demo's world, gpu-check's world ------------


def test_a_venv_folder_is_replaced_only_with_the_kits_mark(tmp_path):
    users = user_folder(tmp_path / "venv")
    before = snapshot(tmp_path)
    with pytest.raises(node.NodeError) as err:
        node._clear(users)
    assert "\n" not in str(err.value) and str(users) in str(err.value)
    assert "notes.txt" in str(err.value) and "move it away" in str(err.value)
    assert snapshot(tmp_path) == before
    (users / node.VENV_MARK).write_text("made by pekit node.py venv\n")
    node._clear(users)  # the kit's venv: removed to be made again
    assert not users.exists()


def test_the_demo_rebuilds_only_its_own_world(tmp_path, capsys, monkeypatch):
    results = tmp_path / "demo"
    user_folder(results / demo.WORLD)
    before = snapshot(tmp_path)
    refused(["demo", "--results", results], capsys, results / demo.WORLD)
    assert snapshot(tmp_path) == before
    # The demo's own (interrupted) world: rebuilt.
    import shutil

    from pekit.workflows import synthetic, synthetic_mmh

    shutil.rmtree(str(results / demo.WORLD))
    made = []
    monkeypatch.setattr(synthetic, "build_world", lambda root, **kw: made.append(root))
    monkeypatch.setattr(synthetic_mmh, "build_data", lambda root: made.append(root))
    world = results / demo.WORLD
    world.mkdir()
    (world / demo.MARK).write_text("made by pekit demo\n")
    (world / "half-built").write_text("x")
    demo.Demo(results).worlds()
    assert not (world / "half-built").exists() and (world / ".built").is_file() and made


@pytest.mark.parametrize("where", ["world", "run folder"])
def test_gpu_check_refuses_a_folder_it_did_not_make(tmp_path, where):
    out = tmp_path / "gpu-check"
    if where == "world":
        path = user_folder(out / "work" / "world")
    else:
        spec = RunSpec(out / "work" / "runs" / "paper", "hmd", "visual_bert", "fc", 1)
        path = user_folder(spec.dir)
    before = snapshot(tmp_path)
    refused_api(lambda: gpu_check.check(out, echo=lambda _: None), path)
    assert snapshot(tmp_path) == before


def test_gpu_checks_world_is_removed_by_its_mark(tmp_path):
    world = tmp_path / "world"
    ownership.make_marked(world, gpu_check.WORLD_MARK, "made by pekit gpu-check\n")
    (world / "data").mkdir()
    assert gpu_check._check_world(world)
    assert ownership.remove_marked(world, gpu_check.WORLD_MARK) and not world.exists()


# ---- a run folder: only with its run record ------------------------------------------------


def run_argv(tmp_path, *extra):
    return ["run", "--dataset", "hmd", "--modes", "fc", "--results", tmp_path / "results",
            "--data-dir", tmp_path / "data", *extra]  # fmt: skip


def kit_run_dir(tmp_path):
    return tmp_path / "results" / "runs" / "hmd" / "visual_bert" / "fc" / "seed1"


@pytest.mark.parametrize(
    "case, force", [("user's files", False), ("user's files", True), ("a link to a run", True)]
)
def test_a_run_folder_without_its_record_is_refused(tmp_path, capsys, fake_mmf, force, case):
    run = kit_run_dir(tmp_path)
    if case == "user's files":
        user_folder(run)
    else:
        elsewhere = user_folder(tmp_path / "elsewhere")
        (elsewhere / record.RECORD).write_text(json.dumps({"run": {}, "status": "finished"}))
        run.parent.mkdir(parents=True)
        run.symlink_to(elsewhere)  # read as a run; --force would delete through the link
    before = snapshot(tmp_path)
    refused(run_argv(tmp_path, *(["--force"] if force else [])), capsys, run)
    assert snapshot(tmp_path) == before
    assert fake_mmf() == []


def test_a_dry_run_names_a_folder_that_is_not_a_run(tmp_path, capsys, fake_mmf):
    user_folder(kit_run_dir(tmp_path))
    capsys.readouterr()
    assert cli.main(["run", "--dry-run", *map(str, run_argv(tmp_path)[1:])]) == 2
    assert "not a pekit run folder" in capsys.readouterr().err


def test_force_still_retrains_the_kits_own_run(tmp_path, capsys, fake_mmf):
    argv = [str(a) for a in run_argv(tmp_path, "--settings", "smoke")]
    assert cli.main(argv) == 0
    run = kit_run_dir(tmp_path)
    (run / "stale.txt").write_text("from the first run")
    assert cli.main([*argv, "--force"]) == 0
    assert not (run / "stale.txt").exists() and (run / record.RECORD).is_file()


def test_execute_refuses_an_unrecorded_folder_before_anything(tmp_path):
    spec = RunSpec(tmp_path / "results", "hmd", "visual_bert", "fc", 1)
    user_folder(spec.dir)
    before = snapshot(tmp_path)
    refused_api(lambda: execute.run(spec, force=True, test=False, probe=False), spec.dir)
    assert snapshot(tmp_path) == before


# ---- assets: partial downloads, downloaded files, unpacked entries ------------------------


@pytest.fixture
def asset_server():
    with Server({"toy.tar.gz": ARCHIVE, "weights.bin": WEIGHTS, "vocab.txt": VOCAB}) as s:
        yield s


@pytest.mark.parametrize(
    "case", ["a .part", "a file at its name", "an unpacked entry's place", "its unpacking folder"]
)
def test_assets_refuse_what_the_user_put_where_they_write(asset_server, tmp_path, case):
    dest = tmp_path / "data" / "models" / "toy.pretrained.defaults"
    names = ["toy.pretrained"]
    if case == "a .part":
        dest.mkdir(parents=True)
        path = dest / "toy.tar.gz.part"
        path.write_bytes(b"my own half file")
    elif case == "a file at its name":
        dest = tmp_path / "data" / "hf" / "toy-bert"
        dest.mkdir(parents=True)
        path = dest / "vocab.txt"
        path.write_bytes(b"my own vocabulary\n")
        names = ["toy-bert"]
    elif case == "an unpacked entry's place":
        path = user_folder(dest / "model")
    else:
        path = user_folder(dest / ".toy.tar.gz.unpacking")
    before = snapshot(tmp_path)
    with pytest.raises(OwnershipError) as err:
        fetch_assets(asset_server, tmp_path, names)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    assert snapshot(tmp_path) == before


def test_assets_keep_an_archive_the_user_put_there_and_replace_their_own(asset_server, tmp_path):
    dest = tmp_path / "data" / "models" / "toy.pretrained.defaults"
    dest.mkdir(parents=True)
    (dest / "toy.tar.gz").write_bytes(ARCHIVE)  # the right bytes, fetched by the user
    (result,) = fetch_assets(asset_server, tmp_path, ["toy.pretrained"])
    assert result["status"] == "fetched" and asset_server.requests == []
    assert (dest / "toy.tar.gz").read_bytes() == ARCHIVE and (dest / "model").is_dir()
    # What the kit unpacked, it replaces: a second unpacking (the record made stale).
    records = list(dest.glob(".pekit-asset.*.json"))
    doc = json.loads(records[0].read_text())
    assert doc["extracted"] == ["model"]
    doc["files"]["toy.tar.gz"]["sha256"] = "0" * 64
    records[0].write_text(json.dumps(doc))
    (dest / "toy.tar.gz").unlink()
    (dest / ".built.json").unlink()
    (result,) = fetch_assets(asset_server, tmp_path, ["toy.pretrained"])
    assert result["status"] == "fetched" and (dest / "model").is_dir()
    assert not (dest / "toy.tar.gz").exists()


# ---- adapters export, report plots ---------------------------------------------------------


@pytest.mark.parametrize("name", ["adapters.safetensors", "adapters.json"])
def test_adapters_export_refuses_files_it_did_not_export(tmp_path, capsys, name):
    pytest.importorskip("torch")
    from helpers import tiny_model

    run = _pe_run(tmp_path, tiny_model)
    out = tmp_path / "mine"
    user_folder(out, {name: b"my own file", "notes.txt": b"keep"})
    before = snapshot(tmp_path)
    refused(["adapters", "export", run, "--out", out], capsys, out / name)
    assert snapshot(tmp_path) == before
    # Into a folder of the user's that holds neither: written, the rest untouched.
    (out / name).unlink()
    assert cli.main(["adapters", "export", str(run), "--out", str(out)]) == 0
    assert (out / "notes.txt").read_bytes() == b"keep"
    # The kit's own export: replaced.
    assert cli.main(["adapters", "export", str(run), "--out", str(out)]) == 0


def _pe_run(tmp_path, tiny_model):
    import torch

    from pekit.run.record import RunRecord

    torch.manual_seed(0)
    pe = tiny_model.TinyModel(adapter=True)
    run = tmp_path / "results" / "runs" / "hmd" / "visual_bert" / "pe" / "seed1"
    (run / "mmf").mkdir(parents=True)
    RunRecord(run=dict(tiny_model.RUN), status="finished").save(run)
    tiny_model.mmf_checkpoint(pe, run / "mmf" / "best.ckpt")
    return run


def test_report_draws_only_over_its_own_plots(tmp_path):
    from pekit.report import build

    plots = tmp_path / "plots"
    names = ["hmd_visual_bert_loss.png", "hmd_visual_bert_val_auroc.png"]
    user_folder(plots, {"hmd_visual_bert_loss.png": b"my own plot", "notes.txt": b"keep"})
    before = snapshot(tmp_path)
    refused_api(
        lambda: build.claim_plots(plots, names, tmp_path / "report.json"),
        plots / "hmd_visual_bert_loss.png",
    )
    assert snapshot(tmp_path) == before
    # An earlier report.json that lists it (a report before the plots' record): the kit's.
    (tmp_path / "report.json").write_text(
        json.dumps({"plots": [{"file": str(plots / "hmd_visual_bert_loss.png")}]})
    )
    build.claim_plots(plots, names, tmp_path / "report.json")
    recorded = json.loads((plots / build.PLOTS_RECORD).read_text())["files"]
    assert recorded == sorted(names)
    build.claim_plots(plots, names, tmp_path / "nothing.json")  # its record suffices


def test_report_command_refuses_a_plot_it_did_not_draw(tmp_path, capsys):
    results = tmp_path / "results"
    write_run(results, "hmd", "fc")
    assert cli.main(["report", "--results", str(results)]) == 0
    drawn = sorted(p.name for p in (results / "plots").glob("*.png"))
    assert drawn
    assert cli.main(["report", "--results", str(results)]) == 0  # its own plots: drawn again
    # A results folder without the report's records: a PNG at a plot's name is the user's.
    os.unlink(results / "plots" / ".pekit-plots.json")
    (results / "report.json").unlink()
    for name in drawn:
        os.unlink(results / "plots" / name)
    mine = results / "plots" / drawn[-1]
    mine.write_bytes(b"my own plot")
    (results / "plots" / "notes.txt").write_text("unrelated, untouched")
    before = snapshot(tmp_path)
    refused(["report", "--results", results], capsys, mine)
    assert snapshot(tmp_path) == before
