"""`pekit features lmdb`: one LMDB that MMF's own reader reads exactly as the .npy folder."""

import pickle

import pytest

from pekit import cli
from pekit.core.errors import PekitError
from pekit.features import lmdb as features_lmdb
from pekit.features.files import synthetic_features, write_features

np = pytest.importorskip("numpy")
pytest.importorskip("lmdb")

NAMES = ("01235", "10001", "42", "img_7")


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    src = tmp_path / "features"
    for i, name in enumerate(NAMES):
        write_features(src, name, *synthetic_features(rng, num_boxes=60 + 10 * i, dim=32))
    return src


def test_layout_is_mmf_lmdb_conversion(folder, tmp_path):
    import lmdb

    s = features_lmdb.convert(folder)
    out = tmp_path / "features.lmdb"
    assert s == {"out": str(out), "count": len(NAMES)}
    assert features_lmdb.read_keys(out) == sorted(n.encode() for n in NAMES)
    assert features_lmdb.read_values(out, [*NAMES, "absent"]) == len(NAMES)
    env = lmdb.open(str(out), readonly=True, lock=False)
    with env.begin() as txn:
        item = pickle.loads(txn.get(b"01235"))
    env.close()
    info = np.load(folder / "01235_info.npy", allow_pickle=True).item()
    assert item["feature_path"] == "01235"
    assert np.array_equal(item["features"], np.load(folder / "01235.npy"))
    for key in features_lmdb.INFO_FIELDS:
        assert np.array_equal(np.asarray(item[key]), np.asarray(info[key])), key
    # the source folder is only read; no temporaries are left beside the output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features", "features.lmdb"]


@pytest.mark.mmf
@pytest.mark.parametrize("readahead", [False, True])
def test_mmf_reads_lmdb_as_folder(mmf_installed, folder, readahead):
    """MMF's FeatureReader gives identical tensors and infos from the LMDB and the folder, with
    the reader's read-ahead as MMF's config says (training.lmdb_readahead, `fast` patches)."""
    import torch
    from mmf.datasets.databases.readers.feature_readers import FeatureReader

    from pekit.bench.loader import lmdb_readahead

    out = features_lmdb.convert(folder)["out"]
    from_npy = FeatureReader(str(folder), depth_first=False, max_features=100)
    from_lmdb = FeatureReader(out, depth_first=False, max_features=100)
    with lmdb_readahead(readahead):
        from_lmdb.read(NAMES[0] + ".npy")
    assert from_lmdb.feat_reader.env.flags()["readahead"] is readahead
    for name in NAMES:
        # how the hateful_memes/mmh datasets name features: "<img basename>.npy"
        feat_a, info_a = from_npy.read(name + ".npy")
        feat_b, info_b = from_lmdb.read(name + ".npy")
        assert tuple(feat_a.shape) == (100, 32)
        assert torch.equal(feat_a, feat_b)
        assert int(info_a["max_features"]) == int(info_b["max_features"])
        for key in features_lmdb.INFO_FIELDS:
            assert np.array_equal(np.asarray(info_a[key]), np.asarray(info_b[key])), key


def test_refuses_names_mmf_would_confuse(tmp_path):
    rng = np.random.default_rng(1)
    for name in ("0042", "42"):
        write_features(tmp_path / "f", name, *synthetic_features(rng, num_boxes=4, dim=8))
    with pytest.raises(PekitError, match="would be read as '42'"):
        features_lmdb.convert(tmp_path / "f")
    assert not (tmp_path / "f.lmdb").exists()


def test_existing_output_needs_force_and_suffix(folder, tmp_path):
    features_lmdb.convert(folder)
    with pytest.raises(PekitError, match="--force"):
        features_lmdb.convert(folder)
    assert features_lmdb.convert(folder, force=True)["count"] == len(NAMES)
    with pytest.raises(PekitError, match=r"\.lmdb"):
        features_lmdb.convert(folder, tmp_path / "out.db")


def test_cli(folder, tmp_path, capsys):
    out = tmp_path / "x.lmdb"
    assert cli.main(["features", "lmdb", "--src", str(folder), "--out", str(out)]) == 0
    assert f"wrote {out}: {len(NAMES)} feature records" in capsys.readouterr().out
    assert cli.main(["features", "lmdb", "--src", str(tmp_path / "none")]) == 1


class _Runs:
    """Unpickled, it would run `touch PATH`."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize("which", ["_info.npy", ".npy"])
def test_a_feature_file_whose_pickle_runs_code_is_refused_unrun(folder, tmp_path, capsys, which):
    ran = tmp_path / "ran"
    hostile = np.empty((), dtype=object)
    hostile[()] = {"num_boxes": 1, "bbox": _Runs(ran)}
    np.save(folder / f"{NAMES[0]}{which}", hostile, allow_pickle=True)
    out = tmp_path / "x.lmdb"
    assert cli.main(["features", "lmdb", "--src", str(folder), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{NAMES[0]}.npy: cannot read the features" in err and len(err.splitlines()) == 1
    assert not ran.exists() and not out.exists()
