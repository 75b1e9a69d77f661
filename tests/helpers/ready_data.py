"""A data folder holding what the runner's preflight looks for (run/preflight.py), with no real
content: annotation files (a few labelled rows each, whose ids the stand-in mmf_run predicts),
MMH's feature folder and a record per asset training reads, so that tests driving a stand-in
mmf_run get past the checks a real run must pass."""

from __future__ import annotations

import json
from pathlib import Path

from pekit import assets
from pekit.assets.download import record_path, write_mmf_marker
from pekit.data.paths import dataset_dir
from pekit.facts.datasets import dataset_facts
from pekit.facts.vocabulary import DATASETS, MODELS

ROWS = 4  # per split: both labels, ids unique over the splits (as MMF's datasets need)


def lay_out(data_dir, datasets=tuple(DATASETS), models=tuple(MODELS)):
    """Make `data_dir` pass the preflight for `datasets` x `models`; returns it."""
    data_dir = Path(data_dir)
    for dataset in datasets:
        facts = dataset_facts(dataset)
        folder = dataset_dir(facts["mmf_dataset"], data_dir)
        (folder / "annotations").mkdir(parents=True, exist_ok=True)
        for number, split in enumerate(facts["splits"]):
            rows = [annotation(1000 + 10 * number + i) for i in range(ROWS)]
            (folder / "annotations" / f"{split}.jsonl").write_text("".join(rows))
        if dataset == "mmh":
            (folder / "features").mkdir(exist_ok=True)
            (folder / "features" / "1.npy").touch()
    for asset in assets.load_facts().assets:
        if not any(asset.needed_by(d, m) for d in datasets for m in models):
            continue
        dest = data_dir / asset.dest
        dest.mkdir(parents=True, exist_ok=True)
        for f in asset.files:
            if not f.extract:
                (dest / f.file_name).touch()
        if asset.marker_version:
            write_mmf_marker(dest, asset.marker_version)
        files = {f.file_name: {"sha256": f.sha256, "verified": True} for f in asset.files}
        record_path(asset, data_dir).write_text(json.dumps({"name": asset.name, "files": files}))
    return data_dir


def annotation(item_id, labelled=True):
    """One line of a split's annotations, as `pekit data` writes them."""
    row = {"id": item_id, "img": f"img/{item_id}.png", "text": f"meme {item_id}"}
    if labelled:
        row["label"] = item_id % 2
    return json.dumps(row) + "\n"
