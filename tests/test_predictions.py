"""Per-example predictions of every run, made by MMF's own evaluation of the best checkpoint:
the runner driving a stand-in mmf_run (tests/helpers/mmf_log_writer.py, which writes CSV files as
MMF's TestReporter does), and the checks between MMF's files and the published ones."""

import csv
import json
import os

import pytest

from helpers.mmf_log_writer import fake_proba
from helpers.ready_data import annotation
from helpers.runner import args, run_dir, run_record
from pekit import cli
from pekit.core.errors import PekitError
from pekit.facts.vocabulary import DATASETS, HMD, MMH
from pekit.run import predictions, record

SMALL = ["--override", "training.max_updates=3000"]
HMD_SPLITS = ("dev_seen", "test_seen", "test_unseen")
UPDATE = 3000  # the update the stand-in says it restored: the last (its best)


def annotations_dir(tmp_path, dataset=HMD):
    mmf_name = DATASETS[dataset].mmf_name
    return tmp_path / "data" / "datasets" / mmf_name / "defaults" / "annotations"


def gold_of(tmp_path, split, dataset=HMD):
    path = annotations_dir(tmp_path, dataset) / f"{split}.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return {int(r["id"]): r.get("label") for r in rows}


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def opts(cmd):
    return dict(a.split("=", 1) for a in cmd if "=" in a)


def predict_calls(calls):
    return [opts(c) for c in calls if "evaluation.predict=true" in c]


def run(tmp_path, *extra, dataset=HMD):
    return cli.main(["run", *args(tmp_path, *SMALL, *extra, dataset=dataset)])


def published(tmp_path, dataset=HMD):
    folder = run_dir(tmp_path, dataset=dataset) / predictions.FOLDER
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


# ---- what a run writes -----------------------------------------------------------------------


def test_every_split_has_mmfs_predictions_with_its_gold(tmp_path, capsys, fake_mmf):
    assert run(tmp_path) == 0
    m = run_record(tmp_path)
    assert m["status"] == "finished"
    assert set(m["predictions"]) == set(HMD_SPLITS)
    folder = run_dir(tmp_path)
    for split in HMD_SPLITS:
        p = m["predictions"][split]
        assert p["status"] == "finished" and p["exit_status"] == 0 and p["reason"] is None, split
        assert p["file"] == f"predictions/{split}.csv"
        assert p["checkpoint"] == "mmf/best.ckpt" and p["checkpoint_update"] == UPDATE
        assert p["examples"] == 4 and p["labelled"] is True
        assert p["start"] <= p["end"]
        assert (folder / p["log"]).is_file()
        rows = read_csv(folder / p["file"])
        assert rows[0] == ["id", "proba", "label", "gold"]
        gold = gold_of(tmp_path, split)
        assert [int(r[0]) for r in rows[1:]] == list(gold)
        for ident, proba, label, truth in rows[1:]:
            # MMF's text, as it wrote it: not rounded, not recomputed.
            assert proba == repr(fake_proba(ident))
            assert label == str(int(float(proba) > 0.5))
            assert truth == str(gold[int(ident)])
    # The validation split is the one training validated on; the challenge's layout for tests.
    assert m["predictions"]["dev_seen"]["dataset_type"] == "val"
    assert m["predictions"]["dev_seen"]["submission"] is None
    for split in ("test_seen", "test_unseen"):
        assert m["predictions"][split]["dataset_type"] == "test"
        layout = m["predictions"][split]["submission"]
        assert layout == f"predictions/{split}.submission.csv"
        full = read_csv(folder / m["predictions"][split]["file"])
        assert read_csv(folder / layout) == [r[:3] for r in full]
    assert published(tmp_path) == [
        "dev_seen.csv",
        "test_seen.csv",
        "test_seen.submission.csv",
        "test_unseen.csv",
        "test_unseen.submission.csv",
    ]
    # MMF's report folders were temporary.
    assert not list(folder.glob("predictions/mmf/*/report"))
    assert "predictions on dev_seen, test_seen" in capsys.readouterr().err


def test_two_processes_with_the_runs_own_command(tmp_path, fake_mmf):
    assert run(tmp_path) == 0
    train = opts(next(c for c in fake_mmf() if "run_type=train_val" in c))
    calls = predict_calls(fake_mmf())
    assert [c["run_type"] for c in calls] == ["val_test", "test"]
    folder = run_dir(tmp_path).resolve()
    ann = "dataset_config.hateful_memes.annotations."
    for call, test_split in zip(calls, ("test_seen", "test_unseen")):
        assert call["checkpoint.resume_file"] == str(folder / "mmf" / "best.ckpt")
        assert call["checkpoint.resume_pretrained"] == "False"
        assert call["evaluation.predict_file_format"] == "csv"
        assert call["env.report_dir"].startswith(str(folder / "predictions") + os.sep)
        assert call["distributed.world_size"] == "1"
        assert call[ann + "test[0]"].endswith(f"/{test_split}.jsonl")
        # The run's config, mode, settings and overrides: those it trained with.
        for key in ("config", "model", "training.max_updates", ann + "val[0]", "training.seed"):
            assert call[key] == train[key], key
        assert call["model_config.visual_bert.freeze_base"] == "True"
    assert calls[0][ann + "val[0]"].endswith("/dev_seen.jsonl")


def test_mmh_predicts_val_and_test_in_one_process_without_submission(tmp_path, fake_mmf):
    assert run(tmp_path, dataset=MMH) == 0
    m = run_record(tmp_path, dataset=MMH)
    assert set(m["predictions"]) == {"val", "test"}
    assert [c["run_type"] for c in predict_calls(fake_mmf())] == ["val_test"]
    for split in ("val", "test"):
        p = m["predictions"][split]
        assert p["status"] == "finished" and p["submission"] is None, split
        rows = read_csv(run_dir(tmp_path, dataset=MMH) / p["file"])
        assert [int(r[0]) for r in rows[1:]] == list(gold_of(tmp_path, split, MMH))
    assert published(tmp_path, MMH) == ["test.csv", "val.csv"]


def test_unlabelled_split_is_predicted_with_empty_gold(tmp_path, fake_mmf):
    # What the public test_unseen release holds: no labels, ids as zero-padded strings.
    lines = [json.loads(annotation(n, labelled=False)) for n in (7, 8, 9)]
    text = "".join(json.dumps(dict(r, id=f"{r['id']:05d}")) + "\n" for r in lines)
    (annotations_dir(tmp_path) / "test_unseen.jsonl").write_text(text)
    assert run(tmp_path) == 0
    m = run_record(tmp_path)
    assert m["test"]["test_unseen"]["status"] == "skipped"
    p = m["predictions"]["test_unseen"]
    assert p["status"] == "finished" and p["labelled"] is False and p["examples"] == 3
    rows = read_csv(run_dir(tmp_path) / p["file"])
    # The ids as MMF writes them (int(id)), the gold empty.
    assert [(r[0], r[3]) for r in rows[1:]] == [("7", ""), ("8", ""), ("9", "")]
    assert read_csv(run_dir(tmp_path) / p["submission"])[0] == ["id", "proba", "label"]


# ---- what is never published ------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault, says",
    [
        ("missing", "1 of the split's 4 ids not predicted"),
        ("extra", "is not in the split's annotations"),
        ("duplicate", "predicted twice"),
        ("proba", "proba '0.5x' is not a probability"),
        ("none", "no predictions file of MMF's for its test set"),
    ],
)
def test_a_bad_mmf_file_fails_its_split_and_publishes_nothing(
    tmp_path, capsys, fake_mmf, monkeypatch, fault, says
):
    monkeypatch.setenv("FAKE_MMF_PREDICT_FAULT", f"test:{fault}")
    assert run(tmp_path) == 0  # the training finished: the predictions do not fail it
    m = run_record(tmp_path)
    assert m["status"] == "finished" and m["test"]["test_seen"]["status"] == "finished"
    for split in ("test_seen", "test_unseen"):
        p = m["predictions"][split]
        assert p["status"] == "failed" and says in p["reason"], p["reason"]
        assert p["file"] is None and p["submission"] is None and p["exit_status"] == 0
    assert m["predictions"]["dev_seen"]["status"] == "finished"
    assert published(tmp_path) == ["dev_seen.csv"]
    err = capsys.readouterr().err
    failed = [x for x in err.splitlines() if "predictions failed" in x]
    assert len(failed) == 2 and says in failed[0], err


def test_mmf_failing_publishes_nothing_and_is_predicted_again(
    tmp_path, capsys, fake_mmf, monkeypatch
):
    monkeypatch.setenv("FAKE_MMF_PREDICT_EXIT", "3")
    assert run(tmp_path) == 0
    m = run_record(tmp_path)
    assert m["status"] == "finished"
    for split in HMD_SPLITS:
        p = m["predictions"][split]
        assert p["status"] == "failed" and p["exit_status"] == 3, split
        assert p["reason"] == "mmf_run exited with status 3"
    # The stand-in wrote its files before failing: none is published, no report folder kept.
    assert published(tmp_path) == []
    assert not list(run_dir(tmp_path).glob("predictions/mmf/*/report"))
    capsys.readouterr()
    assert cli.main(["status", "--results", str(tmp_path / "results")]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.split()[1] == "finished"
    assert line.endswith(
        "predictions failed on dev_seen, test_seen, test_unseen: mmf_run exited with status 3"
    )
    # Run again: the training and the tests are finished; only the predictions are made.
    monkeypatch.delenv("FAKE_MMF_PREDICT_EXIT")
    before = len(fake_mmf())
    assert run(tmp_path) == 0
    new = fake_mmf()[before:]
    assert [opts(c)["run_type"] for c in new] == ["val_test", "test"]
    m = run_record(tmp_path)
    assert all(p["status"] == "finished" for p in m["predictions"].values())
    assert len(m["attempts"]) == 1
    assert cli.main(["status", "--results", str(tmp_path / "results"), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["predictions_failed"] == {}


def test_finished_predictions_are_not_made_again(tmp_path, fake_mmf, monkeypatch):
    monkeypatch.setenv("FAKE_MMF_PREDICT_FAULT", "val:missing")
    assert run(tmp_path) == 0
    m = run_record(tmp_path)
    assert m["predictions"]["dev_seen"]["status"] == "failed"
    assert m["predictions"]["test_seen"]["status"] == "finished"
    monkeypatch.delenv("FAKE_MMF_PREDICT_FAULT")
    before = len(fake_mmf())
    assert run(tmp_path) == 0
    # Only the validation split is left: a process of its own.
    assert [c["run_type"] for c in predict_calls(fake_mmf()[before:])] == ["val"]
    kept = run_record(tmp_path)["predictions"]["test_seen"]
    assert kept == m["predictions"]["test_seen"]
    before = len(fake_mmf())
    assert run(tmp_path) == 0
    assert fake_mmf()[before:] == []  # everything finished: nothing runs
    # A published file that went missing is made again.
    (run_dir(tmp_path) / "predictions" / "test_unseen.csv").unlink()
    assert run(tmp_path) == 0
    (call,) = predict_calls(fake_mmf()[before:])
    assert call["run_type"] == "test"
    assert call["dataset_config.hateful_memes.annotations.test[0]"].endswith("/test_unseen.jsonl")
    assert "test_unseen.csv" in published(tmp_path)


def test_force_starts_the_predictions_over(tmp_path, fake_mmf):
    assert run(tmp_path) == 0
    first = run_record(tmp_path)["predictions"]
    before = len(fake_mmf())
    assert run(tmp_path, "--force") == 0
    again = fake_mmf()[before:]
    assert sum("run_type=train_val" in c for c in again) == 1
    assert len(predict_calls(again)) == 2
    assert set(run_record(tmp_path)["predictions"]) == set(first)


def test_no_test_makes_no_predictions(tmp_path, fake_mmf):
    assert run(tmp_path, "--no-test") == 0
    assert run_record(tmp_path)["predictions"] == {}
    assert predict_calls(fake_mmf()) == []


# ---- the pieces ---------------------------------------------------------------------------------


def test_plan_pairs_the_validation_split_with_the_first_test_split():
    P = predictions.Process
    tests = ("test_seen", "test_unseen")
    assert predictions.plan("dev_seen", tests) == [
        P("dev_seen", "test_seen"),
        P(None, "test_unseen"),
    ]
    assert predictions.plan("dev_seen", tests, done=["test_seen"]) == [P("dev_seen", "test_unseen")]
    assert predictions.plan("dev_seen", tests, done=["dev_seen"]) == [
        P(None, "test_seen"),
        P(None, "test_unseen"),
    ]
    assert predictions.plan("dev_seen", tests, done=["test_seen", "test_unseen"]) == [
        P("dev_seen", None)
    ]
    assert predictions.plan("val", ("test",), done=["val", "test"]) == []
    assert P("dev_seen", "test_seen").name == "dev_seen+test_seen"
    assert P("dev_seen", "test_seen").splits == [("dev_seen", "val"), ("test_seen", "test")]


def test_the_validation_split_and_the_submission_flag_are_facts():
    assert DATASETS[HMD].val_split == DATASETS[HMD].facts["paper_val_split"]
    assert DATASETS[MMH].val_split == "val"
    assert DATASETS[HMD].submission_layout and not DATASETS[MMH].submission_layout


def _mmf_csv(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, says",
    [
        ("", "header ''; expected id,proba,label"),
        ("id,label,proba\n1,0,0.5\n", "expected id,proba,label"),
        ("id,proba,label\n1,0.5\n", "line 2: 2 values; expected 3"),
        ("id,proba,label\nx1,0.5,0\n", "id 'x1' is not a whole number"),
        ("id,proba,label\n1,nan,0\n", "proba 'nan' is not a probability"),
        ("id,proba,label\n1,1.5,0\n", "proba '1.5' is not a probability"),
        ("id,proba,label\n1,0.5,2\n", "label '2'; expected 0 or 1"),
    ],
)
def test_mmf_files_that_are_refused(tmp_path, text, says):
    path = _mmf_csv(tmp_path / "x.csv", text)
    with pytest.raises(predictions.PredictionError, match="x.csv") as e:
        predictions.mmf_rows(path)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_mmf_rows_keep_mmfs_text(tmp_path):
    path = _mmf_csv(tmp_path / "x.csv", "id,proba,label\r\n42,0.12345678901234567,0\r\n")
    assert predictions.mmf_rows(path) == [("42", "0.12345678901234567", "0")]


@pytest.mark.parametrize(
    "text, says",
    [
        ('{"id": 1, "label": 2}\n', "label 2; expected 0 or 1"),
        ('{"id": 1, "label": true}\n', "label true; expected 0 or 1"),
        ('{"img": "a.png"}\n', "expected an object with a whole-number id"),
        ('{"id": 1}\n{"id": "01"}\n', "id 1 a second time"),
        ("[1]\n", "expected an object"),
        ("{not json\n", "not valid JSON"),
    ],
)
def test_annotations_that_are_refused(tmp_path, text, says):
    path = tmp_path / "split.jsonl"
    path.write_text(text)
    with pytest.raises(predictions.PredictionError, match="split.jsonl") as e:
        predictions.gold_labels(path)
    assert says in str(e.value)


def test_a_report_folder_with_two_files_for_one_set_is_refused(tmp_path):
    for time in ("2021-06-01T10:00:00", "2021-06-01T10:00:01"):
        (tmp_path / f"hateful_memes_run_val_{time}.csv").write_text("id,proba,label\n")
    (tmp_path / "hateful_memes_run_test_2021-06-01T10:00:00.csv").write_text("id,proba,label\n")
    with pytest.raises(predictions.PredictionError, match="2 predictions file"):
        predictions.mmf_file(tmp_path, "hateful_memes", "val")
    found = predictions.mmf_file(tmp_path, "hateful_memes", "test")
    assert found.name == "hateful_memes_run_test_2021-06-01T10:00:00.csv"


# ---- the record --------------------------------------------------------------------------------


GOOD = {
    "status": "finished",
    "file": "predictions/dev_seen.csv",
    "submission": None,
    "checkpoint": "mmf/best.ckpt",
    "checkpoint_update": 2000,
    "examples": 500,
    "labelled": True,
    "log": "predictions/logs/dev_seen+test_seen.log",
    "dataset_type": "val",
    "start": "2025-01-31T12:00:00+00:00",
    "end": "2025-01-31T12:01:00+00:00",
    "exit_status": 0,
}
RUN = {"dataset": "hmd", "model": "visual_bert", "mode": "fc", "seed": 1}


def _record(**changed):
    return {"run": RUN, "status": "finished", "predictions": {"dev_seen": dict(GOOD, **changed)}}


def test_a_run_record_keeps_its_predictions():
    rec = record.RunRecord.from_dict(_record())
    assert rec.predictions == {"dev_seen": GOOD}
    assert record.prediction_failures(rec) == {}
    failed = record.RunRecord.from_dict(_record(status="failed", file=None, reason="why"))
    assert record.prediction_failures(failed) == {"dev_seen": "why"}


@pytest.mark.parametrize(
    "changed, field",
    [
        ({"status": "done"}, "predictions.dev_seen.status"),
        ({"file": "../../elsewhere.csv"}, "predictions.dev_seen.file"),
        ({"file": "/etc/passwd"}, "predictions.dev_seen.file"),
        ({"file": None}, "predictions.dev_seen.file"),
        ({"submission": "predictions/../../x"}, "predictions.dev_seen.submission"),
        ({"log": 3}, "predictions.dev_seen.log"),
        ({"examples": -1}, "predictions.dev_seen.examples"),
        ({"labelled": "yes"}, "predictions.dev_seen.labelled"),
        ({"checkpoint_update": 1.5}, "predictions.dev_seen.checkpoint_update"),
        ({"exit_status": 3}, "predictions.dev_seen.exit_status"),
        ({"dataset_type": "train"}, "predictions.dev_seen.dataset_type"),
        ({"start": "yesterday"}, "predictions.dev_seen.start"),
    ],
)
def test_malformed_predictions_are_refused_naming_the_field(changed, field):
    with pytest.raises(PekitError) as e:
        record.RunRecord.from_dict(_record(**changed), "run.json")
    message = str(e.value)
    assert f"field '{field}'" in message and "\n" not in message, message


def test_a_malformed_predictions_field_refuses_the_run_in_one_line(tmp_path, capsys, fake_mmf):
    assert run(tmp_path) == 0
    path = run_dir(tmp_path) / record.RECORD
    m = json.loads(path.read_text())
    m["predictions"]["test_seen"]["examples"] = "many"
    path.write_text(json.dumps(m))
    capsys.readouterr()
    assert run(tmp_path) == 1
    err = capsys.readouterr().err.strip()
    assert "field 'predictions.test_seen.examples'" in err and len(err.splitlines()) == 1, err
    m["predictions"] = []
    path.write_text(json.dumps(m))
    assert run(tmp_path) == 1
    assert "field 'predictions' is a list of 0 items" in capsys.readouterr().err
