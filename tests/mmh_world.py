"""Converted synthetic MMHS150K with Detectron-style features: what MMF's ``mmh`` dataset reads.

``build_data`` turns the synthetic MMHS150K tree of ``test_data_mmh.make_tree`` (8 tweets: 4 train,
2 val, 2 test, both classes in every split) into MMF's layout with ``pekit.data.mmh`` and writes
random 100x2048 region features for every image; it returns the folder to pass as
``env.data_dir``.
"""

from __future__ import annotations

from pathlib import Path

from test_data_mmh import make_tree

from pekit.data.mmh import convert_mmh


def build_data(root: Path, seed: int = 0) -> Path:
    import numpy as np

    from pekit.features.files import synthetic_features, write_features

    root = Path(root)
    src = make_tree(root / "MMHS150K")
    data_dir = root / "mmf_data"
    convert_mmh(src, data_dir, show_progress=False)
    features = data_dir / "datasets" / "mmh" / "defaults" / "features"
    rng = np.random.default_rng(seed)
    for image in sorted((src / "img_resized").iterdir()):
        write_features(features, image.stem, *synthetic_features(rng))
    return data_dir
