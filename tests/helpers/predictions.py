"""Finished runs with per-example predictions, written without MMF: a run record, a training
log the report parses, and predictions/<split>.csv (id,proba,label,gold) as a run leaves them,
in any mode or study variant; and the annotations the memes' texts are read from."""

from __future__ import annotations

import csv
import json

import numpy as np

from helpers.mmf_log_writer import training_log
from pekit.facts.vocabulary import DATASETS, MODES, PAPER_MODEL, parse_variant
from pekit.run import record


def write_run(results, dataset, variant, seed=1, data_dir=None):
    """A finished run of `variant` (pe, full, lora-r4, ...); its folder."""
    mode, size = parse_variant(variant)
    folder = results / "runs" / dataset / PAPER_MODEL / variant / f"seed{seed}"
    folder.mkdir(parents=True)
    (folder / "train.log").write_text(training_log(DATASETS[dataset].mmf_name))
    run = {
        "dataset": dataset,
        "model": PAPER_MODEL,
        "mode": mode,
        "variant": variant,
        "seed": seed,
        "settings": "paper",
        "batch_size": 16,
        "gpus": 1,
    }
    if MODES[mode].size_key:
        size = size or MODES[mode].default_size
        run["size"] = {"key": MODES[mode].size_key, "value": size}
    if data_dir is not None:
        run["data_dir"] = str(data_dir)
    doc = {"run": run, "status": "finished", "log": "train.log", "exit_status": 0, "test": {}}
    (folder / record.RECORD).write_text(json.dumps(doc))
    return folder


def write_predictions(folder, split, ids, proba, label=None, gold=None):
    """predictions/<split>.csv of a run folder: `label` defaults to proba > 0.5, `gold` to none
    (a split without labels); returns its path."""
    label = [int(p > 0.5) for p in proba] if label is None else label
    gold = [""] * len(ids) if gold is None else gold
    path = folder / "predictions" / f"{split}.csv"
    path.parent.mkdir(exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["id", "proba", "label", "gold"])
        for row in zip(ids, proba, label, gold):
            out.writerow([row[0], repr(float(row[1])), row[2], row[3]])
    return path


def scored(n, seed, skill=1.0, prevalence=0.4, shared=None):
    """(ids, gold, proba) of `n` examples: a model whose probabilities separate the classes by
    `skill`; `shared` (an array of n) is a difficulty the examples share across models."""
    rng = np.random.default_rng(seed)
    gold = (np.random.default_rng(1000 + n).random(n) < prevalence).astype(int)
    base = shared if shared is not None else 0.0
    logit = skill * (gold - 0.5) * 2 + base + rng.standard_normal(n)
    proba = 1.0 / (1.0 + np.exp(-logit))
    return [str(10_000 + i) for i in range(n)], gold.tolist(), proba.tolist()


def write_annotations(data_dir, dataset, split, texts):
    """<data_dir>/datasets/<MMF name>/defaults/annotations/<split>.jsonl with {id: text}."""
    folder = data_dir / "datasets" / DATASETS[dataset].mmf_name / "defaults" / "annotations"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": int(i), "img": f"img/{i}.png", "text": t}) for i, t in texts.items()]
    (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
