"""A synthetic MMHS150K: the source tree (MMHS150K_GT.json, splits/, img_resized/, img_txt/) and
the same converted into MMF's `mmh` layout with random Detectron-style region features, for tests
and `pekit demo`. 8 tweets: 4 train, 2 val, 2 test, both classes in every split."""

from __future__ import annotations

import json
from pathlib import Path

from ..facts.vocabulary import DATASETS, MMH

# (tweet id, annotator codes, tweet text, OCR text or None)
TWEETS = [
    ("1114679353714016256", [0, 0, 0], "just a normal day https://t.co/AbC123", None),
    ("1114679353714016257", [1, 0, 0], "one says racist https://t.co/x1", "some ocr"),
    ("1114679353714016258", [1, 2, 0], "two say hate", None),
    ("1114679353714016259", [3, 3, 3], "all three", "  OCR   with\nspaces "),
    ("1114679353714016260", [0, 5, 0], "https://t.co/onlylink", "only ocr"),
    ("1114679353714016261", [0, 0, 0], "nothing either", None),
    ("1114679353714016262", [2, 2, 0], "sexist two", "x"),
    ("1114679353714016263", [0, 0, 0], "nothing here", None),
]
SPLIT_OF = {
    0: "train",
    1: "train",
    2: "train",
    3: "train",
    4: "val",
    5: "val",
    6: "test",
    7: "test",
}


def make_tree(root, tweets=TWEETS, split_of=SPLIT_OF, skip_images=()):
    """The MMHS150K tree of `tweets` under `root` (images of `skip_images` left out)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "img_resized").mkdir()
    (root / "img_txt").mkdir()
    (root / "splits").mkdir()
    gt = {}
    splits = {"train": [], "val": [], "test": []}
    for i, (tid, labels, text, ocr) in enumerate(tweets):
        gt[tid] = {
            "img_url": f"http://pbs.twimg.com/tweet_video_thumb/{tid}.jpg",
            "labels": labels,
            "tweet_url": f"https://twitter.com/user/status/{tid}",
            "tweet_text": text,
            "labels_str": ["NotHate"] * 3,
        }
        if tid not in skip_images:
            (root / "img_resized" / (tid + ".jpg")).write_bytes(b"\xff\xd8fakejpeg" + tid.encode())
        if ocr is not None:
            (root / "img_txt" / (tid + ".json")).write_text(json.dumps({"img_text": ocr}))
        splits[split_of[i]].append(tid)
    (root / "MMHS150K_GT.json").write_text(json.dumps(gt, indent=1))
    for name, ids in splits.items():
        (root / "splits" / f"{name}_ids.txt").write_text("\n".join(ids) + "\n")
    (root / "hatespeech_keywords.txt").write_text("keyword\n")
    return root


def build_data(root, seed=0):
    """The synthetic tree under `root`/MMHS150K converted with `pekit data mmh` into
    `root`/mmf_data, with random 100x2048 features for every image; returns the folder to pass
    as env.data_dir."""
    import numpy as np

    from ..data.mmh import convert_mmh
    from ..features.files import synthetic_features, write_features

    root = Path(root)
    src = make_tree(root / "MMHS150K")
    data_dir = root / "mmf_data"
    convert_mmh(src, data_dir, show_progress=False)
    features = data_dir / "datasets" / DATASETS[MMH].mmf_name / "defaults" / "features"
    rng = np.random.default_rng(seed)
    for image in sorted((src / "img_resized").iterdir()):
        write_features(features, image.stem, *synthetic_features(rng))
    return data_dir
