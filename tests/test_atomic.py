"""The kit's writes: a folder published in one step, a journaled set of files, the umask."""

import json
import os

import pytest

from pekit.core import atomic
from pekit.core.errors import PekitError


def _read(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_publish_folder_switches_in_one_step_and_keeps_one_version(tmp_path):
    ann = tmp_path / "annotations"
    assert atomic.publish_folder(ann, {"a.jsonl": b"1", "b.jsonl": b"2"})
    first = os.readlink(ann)
    assert ann.is_symlink() and _read(ann) == {"a.jsonl": b"1", "b.jsonl": b"2"}
    assert not atomic.publish_folder(ann, {"a.jsonl": b"1", "b.jsonl": b"2"})  # unchanged
    assert os.readlink(ann) == first
    assert atomic.publish_folder(ann, {"a.jsonl": b"3"})
    assert _read(ann) == {"a.jsonl": b"3"}
    versions = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".annotations-"))
    assert versions == [os.readlink(ann)]  # the old version is gone


def test_publish_folder_refuses_a_real_folder_where_its_link_goes(tmp_path):
    """An older kit's layout or the user's own folder: pekit cannot tell them apart, so it
    leaves the folder as it is and says so in one line (tests/test_ownership.py has more)."""
    ann = tmp_path / "annotations"
    ann.mkdir()
    (ann / "a.jsonl").write_bytes(b"old")
    with pytest.raises(PekitError, match="where pekit keeps its link") as err:
        atomic.publish_folder(ann, {"a.jsonl": b"new"})
    assert str(ann) in str(err.value) and "\n" not in str(err.value)
    assert _read(ann) == {"a.jsonl": b"old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotations"]


def test_a_failed_publish_leaves_the_old_folder(tmp_path, monkeypatch):
    ann = tmp_path / "annotations"
    atomic.publish_folder(ann, {"a.jsonl": b"old"})
    real_fsync = os.fsync

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        atomic.publish_folder(ann, {"a.jsonl": b"new"})
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert _read(ann) == {"a.jsonl": b"old"}
    assert len([p for p in tmp_path.iterdir() if p.name.startswith(".annotations-")]) == 1


def test_remove_scratch_removes_the_kits_names_only(tmp_path):
    kit = [".a.json.pekit-0123456789ab.new", ".a.json.pekit-abc_12xy.tmp"]
    mine = [".a.json.new", "a.pekit-0123456789ab.new", ".bashrc", "notes.tmp"]
    for name in kit + mine:
        (tmp_path / name).write_text("x")
    atomic.remove_scratch(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(mine)


def test_new_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic.write_text(tmp_path / "a.txt", "x")
        assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_json_is_written_without_nan(tmp_path):
    atomic.write_json(tmp_path / "r.json", {"loss": float("nan"), "x": [float("inf"), 1.0]})
    assert json.loads((tmp_path / "r.json").read_text()) == {"loss": None, "x": [None, 1.0]}


def test_a_journal_naming_a_file_outside_its_folders_is_refused(tmp_path):
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    (outside / "victim").write_text("mine")
    staged = outside / ".victim.pekit-0123456789ab.new"
    staged.write_text("overwritten")
    journal = {
        "txid": "0123456789ab",
        "files": [{"file": str(outside / "victim"), "staged": str(staged)}],
    }
    (inside / atomic.JOURNAL).write_text(json.dumps(journal))
    with pytest.raises(PekitError, match="outside"):
        with atomic.FileSet([inside]):
            pass
    assert (outside / "victim").read_text() == "mine"


def test_a_fileset_finishes_what_its_journal_names(tmp_path):
    with atomic.FileSet([tmp_path]) as fs:
        fs.add(tmp_path / "a", b"old a")
        fs.add(tmp_path / "b", b"old b")
    # A run killed after its journal and one rename: the other file is staged still.
    fs = atomic.FileSet([tmp_path])
    fs.lock()
    fs.add(tmp_path / "a", b"new a")
    fs.add(tmp_path / "b", b"new b")
    (first, staged_first), _ = fs._staged
    atomic.write_json(
        tmp_path / atomic.JOURNAL,
        {
            "txid": fs.txid,
            "journals": [str(tmp_path / atomic.JOURNAL)],
            "files": [{"file": f, "staged": s} for f, s in fs._staged],
        },
    )
    os.replace(staged_first, first)
    fs.unlock()
    assert (tmp_path / "a").read_bytes() == b"new a" and (tmp_path / "b").read_bytes() == b"old b"
    with atomic.FileSet([tmp_path]) as again:
        assert sorted(again.recovered) == [str(tmp_path / "b")]
    assert (tmp_path / "b").read_bytes() == b"new b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


@pytest.mark.parametrize("exchange", ["renameat2", "two renames"])
def test_a_staged_folder_replaces_the_old_one_whole_or_not_at_all(tmp_path, monkeypatch, exchange):
    dest = tmp_path / "features.lmdb"
    dest.mkdir()
    (dest / "data.mdb").write_text("old")
    if exchange == "two renames":

        def unsupported(a, b):
            raise OSError(38, "Function not implemented")

        monkeypatch.setattr(atomic, "_exchange", unsupported)
    # Only a folder its caller proved the kit's is replaced (replace=True).
    with pytest.raises(PekitError, match="where pekit writes a new folder"):
        with atomic.staged_folder(dest) as new:
            pass
    with pytest.raises(RuntimeError):
        with atomic.staged_folder(dest, replace=True) as new:
            (new / "data.mdb").write_text("half")
            raise RuntimeError("killed half way")
    assert (dest / "data.mdb").read_text() == "old"
    with atomic.staged_folder(dest, replace=True) as new:
        (new / "data.mdb").write_text("new")
    assert (dest / "data.mdb").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.lmdb"]
