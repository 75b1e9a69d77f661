"""Region features: files MMF's reader loads, and MMF's FRCNN extractor with random weights."""

import json

import pytest

from helpers.frcnn import FRCNN_TEST_CONFIG
from pekit.data.mmh import convert_mmh
from pekit.features.files import is_done, synthetic_features, write_features
from pekit.workflows.synthetic_mmh import make_tree

np = pytest.importorskip("numpy")


def read_like_mmf(features_dir, name, max_features=100):
    from mmf.datasets.databases.readers.feature_readers import FeatureReader

    reader = FeatureReader(str(features_dir), depth_first=False, max_features=max_features)
    return reader.read(name + ".npy")


def test_write_features_atomic_and_done_marker(tmp_path):
    rng = np.random.default_rng(0)
    feats, info = synthetic_features(rng, num_boxes=100)
    assert not is_done(tmp_path, "123")
    write_features(tmp_path, "123", feats, info)
    assert is_done(tmp_path, "123")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["123.npy", "123_info.npy"]
    assert np.load(tmp_path / "123.npy").shape == (100, 2048)
    loaded = np.load(tmp_path / "123_info.npy", allow_pickle=True).item()
    assert loaded["bbox"].shape == (100, 4) and loaded["num_boxes"] == 100


@pytest.mark.mmf
def test_mmf_reader_loads_written_features(mmf_installed, tmp_path):
    rng = np.random.default_rng(1)
    write_features(tmp_path, "77", *synthetic_features(rng, num_boxes=60))
    feats, info = read_like_mmf(tmp_path, "77")
    assert tuple(feats.shape) == (100, 2048)  # padded to max_features
    assert info["bbox"].shape == (60, 4) and int(info["max_features"]) == 60


@pytest.fixture
def converted_mmh(tmp_path):
    from PIL import Image

    src = make_tree(tmp_path / "MMHS150K")
    rng = np.random.default_rng(2)
    for i, path in enumerate(sorted((src / "img_resized").iterdir())[:3]):
        pixels = rng.integers(0, 255, size=(80 + 10 * i, 120, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path, format="JPEG")
    data_dir = tmp_path / "mmf_data"
    convert_mmh(src, data_dir, show_progress=False)
    return src, data_dir


@pytest.mark.mmf
@pytest.mark.slow
def test_frcnn_extractor_random_weights(
    mmf_installed, mmf_checkout, converted_mmh, tmp_path, monkeypatch
):
    import tempfile

    import torch

    from pekit.features.frcnn import Extractor, extract_mmh, locate_mmf_src

    src, data_dir = converted_mmh
    config = tmp_path / "frcnn_config.yaml"
    config.write_text(json.dumps(FRCNN_TEST_CONFIG))  # YAML is a superset of JSON
    # The kit leaves nothing in the system's temporary folder (MMF's tools/ is imported from its
    # checkout); torch keeps its own compiler cache there (torchinductor_<user>), by design.
    scratch = tmp_path / "system-tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    torch.manual_seed(0)
    extractor = Extractor(locate_mmf_src(str(mmf_checkout)), config, None, "cpu", num_boxes=100)
    # 3 real images, 5 empty (unreadable) files: the run goes on past failures
    s = extract_mmh(extractor, data_dir, batch_size=2, limit=4, show_progress=False)
    assert s["total"] == 8 and s["already_done"] == 0
    features = data_dir / "datasets" / "mmh" / "defaults" / "features"
    done = sorted(p.name[:-4] for p in features.glob("*.npy") if not p.name.endswith("_info.npy"))
    assert len(done) == s["extracted"] >= 3
    for name in done:
        feats, info = read_like_mmf(features, name)
        assert tuple(feats.shape) == (100, 2048)
        assert info["bbox"].shape[1] == 4 and info["bbox"].shape[0] <= 100
        # original image size, matching the boxes' pixel coordinates
        assert info["image_width"] == 120 and info["image_height"] in (80, 90, 100)
        assert float(info["bbox"][:, 2].max()) <= 120 + 1e-3
        assert float(info["bbox"][:, 3].max()) <= info["image_height"] + 1e-3
        assert info["num_boxes"] == 100
    # resumable: finished images are skipped
    again = extract_mmh(extractor, data_dir, batch_size=2, limit=2, show_progress=False)
    assert again["already_done"] == s["extracted"]
    assert not list(features.glob("*.tmp"))
    assert not [p for p in scratch.iterdir() if not p.name.startswith("torchinductor_")]
