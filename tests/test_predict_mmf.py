"""`pekit predict` through MMF on the session's finished runs (tests/helpers/finished_runs.py):
on a run's own validation examples with the dataset's features it gives the probabilities of the
run's prediction file; new memes get their features from MMF's Faster R-CNN."""

from __future__ import annotations

import csv
import json
import subprocess
import tempfile

import pytest

from helpers.frcnn import FRCNN_TEST_CONFIG
from pekit.facts.vocabulary import DATASETS, HMD, PE

pytestmark = [pytest.mark.mmf, pytest.mark.slow, pytest.mark.smoke]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_predict_gives_the_probabilities_of_the_runs_prediction_file(finished_runs, tmp_path):
    run = finished_runs.run_dir(HMD, PE)
    val = DATASETS[HMD].facts["paper_val_split"]
    annotations = finished_runs.world.dataset_dir / "annotations" / f"{val}.jsonl"
    out = tmp_path / "val.csv"
    cmd = finished_runs.command(
        [
            "predict",
            "--run",
            str(run),
            "--table",
            str(annotations),
            "--out",
            str(out),
            "--features",
            str(finished_runs.world.dataset_dir / "features"),
        ]
    )
    proc = subprocess.run(cmd, env=finished_runs.env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ours = {r["id"]: r for r in read_csv(out)}
    recorded = {r["id"]: r for r in read_csv(run / "predictions" / f"{val}.csv")}
    ids = [json.loads(x)["id"] for x in annotations.read_text().splitlines() if x.strip()]
    assert list(ours) == ids and sorted(recorded) == sorted(ids)
    for i in ids:
        # The same MMF prediction of the same checkpoint on the same inputs and batches.
        assert float(ours[i]["proba"]) == pytest.approx(float(recorded[i]["proba"]), abs=1e-6)
        assert ours[i]["label"] == recorded[i]["label"]


def test_new_memes_are_scored_from_their_images(finished_runs, mmf_checkout, tmp_path, monkeypatch):
    from PIL import Image

    from pekit.features.frcnn import Extractor, locate_mmf_src
    from pekit.workflows import predict

    config = tmp_path / "frcnn.yaml"
    config.write_text(json.dumps(FRCNN_TEST_CONFIG))  # YAML is a superset of JSON
    table = tmp_path / "memes.csv"
    rows = [("n1", "one.png", "a new meme"), ("n2", "two.png", "another caption here")]
    for (_, image, _), colour in zip(rows, ("red", "blue")):
        Image.new("RGB", (120, 90), colour).save(tmp_path / image)
    table.write_text("id,image,text\n" + "".join(",".join(r) + "\n" for r in rows))
    # Nothing in the system's temporary folder: scratch lives beside the output (torch keeps
    # its own compiler cache there, torchinductor_<user>, by design).
    scratch = tmp_path / "system-tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    out = tmp_path / "scores.jsonl"
    scored = predict.predict(
        predict.read_table(table),
        finished_runs.run_dir(HMD, PE),
        out,
        extractor=lambda: Extractor(locate_mmf_src(str(mmf_checkout)), config, None, "cpu"),
        env=finished_runs.env,
    )
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == ["n1", "n2"] and len(scored) == 2
    for line in lines:
        assert 0.0 <= line["proba"] <= 1.0 and line["label"] == int(line["proba"] > 0.5)
    assert not [p for p in scratch.iterdir() if not p.name.startswith("torchinductor_")]
    assert not list(tmp_path.glob(".pekit-predict-*"))
