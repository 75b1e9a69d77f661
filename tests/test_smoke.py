"""`make smoke`: the whole pipeline on CPU, end to end, with the real MMF and full-size models.

The pipeline (tests/helpers/finished_runs.py, the session's `finished_runs`) drives the `pekit`
command line as a user would, offline, on the demo's synthetic worlds (`pekit demo`: Hateful
Memes and MMHS150K), with the `smoke` training settings (4 updates, validation and checkpoint
every 2):

- the runs it trains, interrupts, resumes and fails are listed in finished_runs.py;
- the later steps the docs give run on the demo's folder: `pekit report`, `pekit status`,
  `pekit logs`, `pekit adapters export` and `load`.
The tests then check what each stage wrote. The checkpoints (~0.45-1.3 GB each) are deleted at
the session's end; `make demo` keeps them.
"""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import finished_runs as finished
from pekit import adapters, report
from pekit.adapters import tensorfile
from pekit.core import location
from pekit.data.paths import dataset_dir
from pekit.facts import models, pins, vocabulary
from pekit.report.stats import auroc
from pekit.run import mmf_log as logs
from pekit.run.spec import LOG
from pekit.workflows import demo

pytestmark = [pytest.mark.mmf, pytest.mark.slow, pytest.mark.smoke]

MODEL = finished.MODEL
MODES = ("fc", "pe", "full")
# The modes run per dataset: the demo's.
RUN_MODES = finished.RUN_MODES
MAX_UPDATES = finished.MAX_UPDATES


@pytest.fixture(scope="module")
def smoke(finished_runs):
    """The session's demo folder and what each stage of its pipeline returned."""
    return finished_runs


def expect_ok(smoke, name):
    code, out = smoke.outputs[name]
    assert code == 0, f"pekit {name} exited {code}:\n{out[-6000:]}"


def table1_reference():
    return {(r["model"], r["mode"]): r for r in models.table1_rows()}


FINISHED_RUNS = [(d, m) for d, modes in RUN_MODES.items() for m in modes]


# --- runner and run records ------------------------------------------------------------------


def test_runs_finish_with_complete_run_records(smoke):
    for name in ("demo", "report"):
        expect_ok(smoke, name)
    env = json.loads(
        subprocess.check_output(
            [
                sys.executable,
                "-c",
                "import json, torch, transformers; print(json.dumps("
                "[torch.__version__, transformers.__version__, torch.version.cuda]))",
            ]
        )
    )
    patches = (location.kit_root() / "patches" / "manifest.json").read_bytes()
    for dataset, mode in FINISHED_RUNS:
        m = smoke.run_record(dataset, mode)
        where = f"{dataset}/{mode}"
        assert m["status"] == "finished" and m["exit_status"] == 0, where
        run = {
            "dataset": dataset,
            "model": MODEL,
            "mode": mode,
            "variant": mode,
            "seed": 1,
            "settings": "smoke",
            "batch_size": 4,
            "gpus": 1,
            "data_dir": str(smoke.world.data_dir if dataset == "hmd" else smoke.mmh_data),
        }
        sized = vocabulary.MODES[mode]
        if sized.size_key:  # a sized mode records the size it ran at, its default here
            run["size"] = {"key": sized.size_key, "value": sized.default_size}
        assert m["run"] == run, where
        assert m["kit"]["version"] and "git_revision" in m["kit"], where
        assert m["profile"] == "local"
        assert m["patches"]["sha256"] == hashlib.sha256(patches).hexdigest()
        assert m["mmf"]["commit"] == pins.get("mmf.commit")
        e = m["environment"]
        assert [e["torch"], e["transformers"], e["cuda"]] == env, where
        assert e["transformers"] == pins.get("transformers.version")
        assert "gpu" in e
        assert m["start"] <= m["end"] and m["attempts"][-1]["end"] == m["end"]
        assert m["command"] == m["attempts"][-1]["command"]
        assert "checkpoint.save_git_details=False" in m["command"]
        cfg = smoke.run_dir(dataset, mode) / "mmf" / "config.yaml"
        assert m["config"]["sha256"] == hashlib.sha256(cfg.read_bytes()).hexdigest()
        # The full resolved config, as MMF ran it.
        resolved = m["resolved_config"]
        assert resolved == cfg.read_text()
        freeze, pe = vocabulary.MODES[mode].freeze_base, vocabulary.MODES[mode].pe_adapter
        assert f"  max_updates: {MAX_UPDATES}\n" in resolved
        assert f"    freeze_base: {str(freeze).lower()}\n" in resolved, where
        assert f"    pe_adapter: {str(pe).lower()}\n" in resolved, where
        assert "${" not in resolved
        assert len(m["attempts"]) == (2 if (dataset, mode) == ("hmd", "pe") else 1), where


def test_finished_runs_are_not_rerun(smoke):
    # The demo resumed the interrupted PE run and trained the others once each.
    _, out = smoke.outputs["demo"]
    assert "hmd/visual_bert/pe/seed1: resuming" in out
    for key in ("hmd/visual_bert/fc", "hmd/visual_bert/full", "mmh/visual_bert/pe"):
        assert out.count(f"{key}/seed1: training") == 1, key
    code, out = smoke.pekit("hmd pe again", smoke.run_args("hmd", "pe"))
    assert code == 0, out[-4000:]
    assert "finished already, not rerun" in out
    assert len(smoke.run_record("hmd", "pe")["attempts"]) == 2


def test_test_split_scored_on_best_checkpoint(smoke):
    scored = {("hmd", m): ["test_seen"] for m in MODES}
    scored.update({("mmh", m): ["test"] for m in RUN_MODES["mmh"]})
    for (dataset, mode), splits in scored.items():
        m = smoke.run_record(dataset, mode)
        parsed = logs.parse_file(smoke.run_dir(dataset, mode) / LOG)
        best = parsed["best"]["update"]
        for split in splits:
            t = m["test"][split]
            where = f"{dataset}/{mode}/{split}"
            assert t["status"] == "finished" and t["exit_status"] == 0, where
            opts = dict(a.split("=", 1) for a in t["command"] if "=" in a)
            assert opts["run_type"] == "test"
            best_ckpt = smoke.run_dir(dataset, mode) / "mmf" / "best.ckpt"
            assert opts["checkpoint.resume_file"] == str(best_ckpt)
            # MMF restored the best validation update of the training run.
            assert t["checkpoint_update"] == best, where
            assert set(t["metrics"]) >= {"roc_auc", "accuracy", "binary_f1"}, where
            assert all(0.0 <= t["metrics"][k] <= 1.0 for k in ("roc_auc", "accuracy", "binary_f1"))
    # HMD's test_unseen has no labels in this world: skipped, not failed.
    for mode in MODES:
        assert smoke.run_record("hmd", mode)["test"]["test_unseen"]["status"] == "skipped"


# --- per-example predictions ------------------------------------------------------------------


def _annotated(smoke, dataset, split):
    """{id as MMF writes it (int): label or None} of the split's annotations in the demo's data."""
    data_dir = smoke.world.data_dir if dataset == "hmd" else smoke.mmh_data
    folder = dataset_dir(vocabulary.DATASETS[dataset].mmf_name, data_dir) / "annotations"
    rows = [json.loads(x) for x in (folder / f"{split}.jsonl").read_text().splitlines() if x]
    return {int(r["id"]): r.get("label") for r in rows}


def _predicted(smoke, dataset, mode, split):
    """The run's record of the split's predictions and the rows of its file."""
    p = smoke.run_record(dataset, mode)["predictions"][split]
    with open(smoke.run_dir(dataset, mode) / p["file"], newline="") as f:
        return p, list(csv.DictReader(f))


def _splits(dataset):
    facts = vocabulary.DATASETS[dataset]
    return [facts.val_split, *facts.test_splits]


def test_every_run_has_mmfs_predictions_for_its_validation_and_test_splits(smoke):
    for dataset, mode in FINISHED_RUNS:
        m = smoke.run_record(dataset, mode)
        best = logs.parse_file(smoke.run_dir(dataset, mode) / LOG)["best"]["update"]
        assert set(m["predictions"]) == set(_splits(dataset)), (dataset, mode)
        for split in _splits(dataset):
            where = f"{dataset}/{mode}/{split}"
            p, rows = _predicted(smoke, dataset, mode, split)
            assert p["status"] == "finished" and p["exit_status"] == 0, (where, p)
            assert p["checkpoint"] == "mmf/best.ckpt" and p["checkpoint_update"] == best, where
            gold = _annotated(smoke, dataset, split)
            ids = [int(r["id"]) for r in rows]
            assert sorted(ids) == sorted(gold) and len(set(ids)) == len(ids), where
            assert p["examples"] == len(gold)
            assert p["labelled"] is all(g is not None for g in gold.values()), where
            for r in rows:
                assert r["gold"] == ("" if gold[int(r["id"])] is None else str(gold[int(r["id"])]))
                # MMF's label is the argmax of the two classes' probabilities.
                assert r["label"] == str(int(float(r["proba"]) > 0.5)), (where, r)
            facts = vocabulary.DATASETS[dataset]
            layout = facts.submission_layout and split in facts.test_splits
            assert (p["submission"] is not None) is layout, where
            if layout:
                sub = (smoke.run_dir(dataset, mode) / p["submission"]).read_text().splitlines()
                assert sub[0] == "id,proba,label" and len(sub) == len(rows) + 1
    # The world's HMD test_unseen has no labels: predicted all the same, its gold empty.
    for mode in MODES:
        p, rows = _predicted(smoke, "hmd", mode, "test_unseen")
        assert p["labelled"] is False and rows and all(r["gold"] == "" for r in rows)


def _auroc(rows):
    return round(auroc([int(r["gold"]) for r in rows], [float(r["proba"]) for r in rows]), 4)


def test_predictions_reproduce_the_auroc_mmf_logged(smoke):
    for dataset, mode in FINISHED_RUNS:
        where = f"{dataset}/{mode}"
        # After training MMF restores the best checkpoint and validates it again (4 decimals).
        logged = logs.parse_file(smoke.run_dir(dataset, mode) / LOG)["final_val"]
        _, rows = _predicted(smoke, dataset, mode, _splits(dataset)[0])
        assert _auroc(rows) == logged["roc_auc"], where
        m = smoke.run_record(dataset, mode)
        for split, t in m["test"].items():
            if t["status"] == "finished":
                _, rows = _predicted(smoke, dataset, mode, split)
                assert _auroc(rows) == t["metrics"]["roc_auc"], f"{where}/{split}"


# --- resume -----------------------------------------------------------------------------------


def test_interrupted_run_resumes_from_its_checkpoint(smoke):
    first = smoke.interrupted_record
    assert first["status"] == "interrupted", smoke.interrupted_log[-4000:]
    assert first["attempts"][0]["resume"] is False and first["test"] == {}
    assert smoke.interrupted_exit != 0
    expect_ok(smoke, "demo")
    m = smoke.run_record("hmd", "pe")
    assert [a["resume"] for a in m["attempts"]] == [False, True]
    assert [a["exit_status"] for a in m["attempts"]] == [None, 0]
    assert "checkpoint.resume=True" in m["attempts"][1]["command"]
    assert "checkpoint.resume=True" not in m["attempts"][0]["command"]
    text = (smoke.run_dir("hmd", "pe") / LOG).read_text("utf-8", "replace")
    assert text.startswith(smoke.interrupted_log)  # attempts are appended
    second = text[len(smoke.interrupted_log) :]
    # The second attempt loaded update 2 and trained only the updates after it.
    loaded = second.index("Current num updates: 2")
    assert loaded < second.index(f"progress: 3/{MAX_UPDATES}, train/")
    assert f"progress: 1/{MAX_UPDATES}, train/" not in second
    assert f"progress: 2/{MAX_UPDATES}, train/" not in second
    parsed = logs.parse_file(smoke.run_dir("hmd", "pe") / LOG)
    assert parsed["attempts"] == 2 and parsed["finished"]
    assert [e["update"] for e in parsed["train"]] == [1, 2, 3, 4]
    assert [e["update"] for e in parsed["val"]] == [2, 4]


def test_failed_run_is_recorded_and_not_tested(smoke):
    code, out = smoke.outputs["hmd fc failing"]
    assert code == 1, out[-4000:]
    m = smoke.run_record("hmd", "fc", seed=2)
    assert m["status"] == "failed" and m["exit_status"] not in (0, None)
    assert m["test"] == {}
    log = (smoke.run_dir("hmd", "fc", seed=2) / LOG).read_text("utf-8", "replace")
    assert "Criteria used for early stopping" in log
    # It trained before failing: had it been reported, it would count in the tables.
    parsed = logs.parse_file(smoke.run_dir("hmd", "fc", seed=2) / LOG)
    assert parsed["parameters"] and parsed["train"]


# --- parser -----------------------------------------------------------------------------------


def test_logs_command_reads_the_mmf_logs(smoke):
    paths = [str(smoke.run_dir(d, m) / LOG) for d, m in FINISHED_RUNS]
    code, out = smoke.pekit("logs", ["logs", "--compact", *paths])
    assert code == 0, out[-4000:]
    parsed = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [p["log"] for p in parsed] == paths
    counts = table1_reference()
    for (dataset, mode), p in zip(FINISHED_RUNS, parsed):
        where = f"{dataset}/{mode}"
        assert p["dataset"] == {"hmd": "hateful_memes", "mmh": "mmh"}[dataset]
        ref = counts[(MODEL, mode)]
        assert p["parameters"] == {"total": ref["total"], "trained": ref["trained"]}, where
        assert p["max_updates"] == MAX_UPDATES and p["last_update"] == MAX_UPDATES
        assert [e["update"] for e in p["val"]] == [2, 4], where
        assert all({"loss", "accuracy", "binary_f1", "roc_auc"} <= set(e) for e in p["val"])
        assert [e["update"] for e in p["train"]] == [1, 2, 3, 4], where
        assert p["best"]["update"] in (2, 4) and "roc_auc" in p["best"]
        assert p["finished"] and p["wall_time_s"] > 0 and p["ups"] > 0


# --- report -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def written(smoke):
    expect_ok(smoke, "report")
    results = smoke.results
    return json.loads((results / "report.json").read_text()), (results / "report.md").read_text()


def test_table1_rows_equal_the_papers_counts(smoke, written):
    rep, md = written
    ref = report.paper_reference()["table1"]
    rows = {(r["model"], r["mode"]): r for r in rep["table1"]}
    for mode in MODES:
        row = rows[(MODEL, mode)]
        paper = table1_reference()[(MODEL, mode)]
        assert row["match"] is True, row
        assert row["ours"]["total"] == paper["total"]
        assert row["ours"]["trained"] == paper["trained"]
        assert row["ours"] == row["paper"], row
    assert rows[(MODEL, "pe")]["ours"]["pe"] == ref["adapters_only"][MODEL]
    assert rows[(MODEL, "fc")]["ours"]["pe"] == 0
    # Only VisualBERT ran: ViLBERT's rows hold the paper's numbers alone.
    assert all(rows[("vilbert", m)]["ours"] is None for m in MODES)
    for count in ("112,044,290", "113,455,250", "593,666", "2,004,626", "1,410,960"):
        assert count in md


def test_table2_reports_each_finished_run_against_the_paper(smoke, written):
    rep, md = written
    reference = report.table2_reference()
    rows = {(r["dataset"], r["mode"]): r for r in rep["table2"] if r["model"] == MODEL}
    assert set(rows) == {(d, m) for d in ("hmd", "mmh") for m in MODES}
    for dataset, mode in FINISHED_RUNS:
        row = rows[(dataset, mode)]
        where = f"{dataset}/{mode}"
        # One seed each: the failed second FC seed is not counted.
        assert row["n"] == 1 and row["seeds"] == [1], where
        best = logs.parse_file(smoke.run_dir(dataset, mode) / LOG)["best"]
        paper = reference[(dataset, MODEL, mode)]
        for metric in ("roc_auc", "accuracy", "binary_f1"):
            assert row[metric]["mean"] == best[metric], where
            assert row[metric]["paper"] == paper[metric], where
            assert row[metric]["diff"] == pytest.approx(best[metric] - paper[metric])
        assert row["best_update"]["mean"] == best["update"]
        # Four updates are not the paper's training: shown beside its numbers, never judged.
        assert row["settings"].startswith("smoke") and row["judged"] is False, where
        assert row["pass"] is None, where
    # A mode that did not run keeps the paper's row, with nothing of ours.
    assert rows[("mmh", "full")]["n"] == 0 and rows[("mmh", "full")]["pass"] is None
    assert rows[("mmh", "full")]["roc_auc"]["paper"] == reference[("mmh", MODEL, "full")]["roc_auc"]
    assert rep["tolerance"] == report.DEFAULT_TOLERANCE
    assert f"<= {report.DEFAULT_TOLERANCE:g}" in md
    assert "| *not judged* |" in md and "**FAIL**" not in md


def test_failed_run_is_excluded_from_the_report(smoke, written):
    rep, md = written
    assert [(r["dataset"], r["mode"], r["seed"], r["status"]) for r in rep["excluded"]] == [
        ("hmd", "fc", 2, "failed")
    ]
    assert sorted((r["dataset"], r["mode"], r["seed"]) for r in rep["runs"]) == sorted(
        (d, m, 1) for d, m in FINISHED_RUNS
    )
    assert "Not reported (not finished)" in md and "seed2: failed" in md


def test_test_split_metrics_in_the_report(smoke, written):
    rep, md = written
    got = {(r["dataset"], r["mode"], r["split"]): r for r in rep["test"]}
    assert set(got) == {("hmd", m, "test_seen") for m in MODES} | {
        ("mmh", m, "test") for m in RUN_MODES["mmh"]
    }
    for (dataset, mode, split), row in got.items():
        metrics = smoke.run_record(dataset, mode)["test"][split]["metrics"]
        for metric in ("roc_auc", "accuracy", "binary_f1"):
            assert row[metric]["mean"] == metrics[metric] and row[metric]["n"] == 1
    assert "## Test splits (best checkpoint)" in md


def _predictions(smoke, mode, split):
    import csv

    path = smoke.run_dir("hmd", mode) / "predictions" / f"{split}.csv"
    with open(path, newline="") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def test_the_report_carries_the_evidence(smoke, written):
    """Intervals, the paired tests and the disagreements, from the runs' prediction files."""
    rep, md = written
    evidence = rep["evidence"]
    assert evidence["resamples"] >= 1000 and "## Evidence" in md
    val = vocabulary.DATASETS["hmd"].val_split
    files = {mode: _predictions(smoke, mode, val) for mode in MODES}
    for mode in MODES:
        (run,) = [
            r for r in evidence["runs"] if (r["dataset"], r["mode"], r["seed"]) == ("hmd", mode, 1)
        ]
        (split,) = [s for s in run["splits"] if s["split"] == val]
        rows = files[mode].values()
        gold = [int(r["gold"]) for r in rows]
        value = split["auroc"]
        assert value["value"] == pytest.approx(auroc(gold, [float(r["proba"]) for r in rows]))
        assert value["low"] <= value["value"] <= value["high"]
        assert sum(split["confusion"].values()) == split["examples"] == len(gold)
    sentences = {
        (p["a"], p["b"]): p["sentence"]
        for p in evidence["pairs"]
        if (p["dataset"], p["seed"], p["split"]) == ("hmd", 1, val)
    }
    for pair in (("pe", "full"), ("pe", "fc")):
        assert sentences[pair] and "p " in sentences[pair] and sentences[pair] in md, sentences
    (table,) = [
        d
        for d in evidence["disagreements"]
        if (d["dataset"], d["seed"], d["split"]) == ("hmd", 1, val)
    ]
    assert sorted(table["modes"]) == sorted(MODES)
    differ = [i for i in files["fc"] if len({files[m][i]["label"] for m in MODES}) > 1]
    assert table["differ"] == len(differ)
    rows = table["rows"]
    assert {r["id"] for r in rows} <= set(differ) and len(rows) == min(evidence["top"], len(differ))
    assert [r["spread"] for r in rows] == sorted((r["spread"] for r in rows), reverse=True)
    hmd = vocabulary.DATASETS["hmd"].mmf_name
    annotations = dataset_dir(hmd, smoke.world.data_dir) / "annotations" / f"{val}.jsonl"
    texts = {
        str(int(r["id"])): r["text"] for r in map(json.loads, annotations.read_text().splitlines())
    }
    for row in table["rows"]:
        assert row["text"] == texts[str(int(row["id"]))]


def test_plots_have_one_line_per_mode(smoke, written):
    rep, md = written
    import matplotlib.image

    plots = {(p["dataset"], p["kind"]): p for p in rep["plots"]}
    assert set(plots) == {(d, k) for d in ("hmd", "mmh") for k in ("val_auroc", "loss")}
    for (dataset, kind), plot in plots.items():
        panels = {p["panel"]: p["lines"] for p in plot["panels"]}
        expected = ["auroc"] if kind == "val_auroc" else ["train_loss", "val_loss"]
        assert sorted(panels) == sorted(expected)
        labels = [vocabulary.label(m) for m in RUN_MODES[dataset]]
        for panel, lines in panels.items():
            # Ours only (no paper logs given): solid lines, one per mode that ran.
            assert lines == [[label, "-"] for label in labels], (dataset, panel)
        path = Path(plot["file"])
        assert path.parent == smoke.results / "plots"
        image = matplotlib.image.imread(str(path))
        assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0
        assert f"(plots/{path.name})" in md
    # The curves themselves: each mode's validation points at updates 2 and 4 (the resumed PE
    # run included, no update counted twice), its training loss at every update.
    runs, _ = report.collect_runs(smoke.results)
    for (dataset, _model), spec in report.plot_specs(runs).items():
        assert [ln["mode"] for ln in spec["auroc"]] == list(RUN_MODES[dataset])
        assert all(ln["x"] == [2, 4] for ln in spec["auroc"] + spec["val_loss"]), dataset
        assert all(ln["x"] == [1, 2, 3, 4] for ln in spec["train_loss"]), dataset


# --- adapter-only checkpoints ---------------------------------------------------------------


def _inputs(torch, batch=3, tokens=12, boxes=100):
    g = torch.Generator().manual_seed(0)
    return {
        "input_ids": torch.randint(5, 35, (batch, tokens), generator=g),
        "input_mask": torch.ones(batch, tokens, dtype=torch.long),
        "attention_mask": torch.ones(batch, tokens + boxes, dtype=torch.long),
        "token_type_ids": torch.zeros(batch, tokens, dtype=torch.long),
        "visual_embeddings": torch.rand(batch, boxes, 2048, generator=g),
        "visual_embeddings_type": torch.zeros(batch, boxes, dtype=torch.long),
    }


def test_adapters_export_and_load_reproduce_pe_predictions(smoke, tmp_path):
    torch = pytest.importorskip("torch")
    pe_run = smoke.run_dir("hmd", "pe")
    # The demo's export, and the docs' command writing the same adapters again.
    out = smoke.results / demo.ADAPTERS
    again = tmp_path / "adapters"
    code, text = smoke.pekit(
        "adapters export", ["adapters", "export", str(pe_run), "--out", str(again)]
    )
    assert code == 0, text[-4000:]
    info = json.loads((out / adapters.INFO).read_text())
    assert json.loads((again / adapters.INFO).read_text())["weights"] == info["weights"]
    pe_trained = table1_reference()[(MODEL, "pe")]["trained"]
    assert info["parameters"] == pe_trained == 2004626
    assert info["adapter_parameters"] == report.paper_reference()["table1"]["adapters_only"][MODEL]
    assert info["run"]["mode"] == "pe"
    weights, _ = tensorfile.load(out / adapters.WEIGHTS)
    assert sorted(weights) == info["keys"]
    assert sum(t.numel() for t in weights.values()) == pe_trained
    # Exactly what PE trains: the parameters MMF's PE model leaves trainable.
    model = models.build_mmf_model(MODEL, "pe", tmp_path / "mmf")
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert info["keys"] == trainable
    assert all(adapters.ADAPTER.search(k) or ".classifier." in k for k in trainable)

    pe_state = adapters.load_state_dict(pe_run / "mmf" / "best.ckpt")
    # The base: the same frozen weights, every exported tensor replaced.
    g = torch.Generator().manual_seed(1)
    base_state = {
        n: (torch.randn(t.shape, generator=g) * 0.5 if n in weights else t)
        for n, t in pe_state.items()
    }
    base = tmp_path / "base.ckpt"
    torch.save({"model": base_state}, str(base))
    loaded = tmp_path / "loaded.ckpt"
    code, text = smoke.pekit(
        "adapters load",
        ["adapters", "load", str(out), "--base", str(base), "--out", str(loaded)],
    )
    assert code == 0, text[-4000:]

    model.eval()
    inputs = _inputs(torch)

    def predict(state):
        model.load_state_dict(state, strict=True)
        with torch.no_grad():
            return model.model(**inputs)["scores"]

    expected = predict(pe_state)
    assert not torch.allclose(predict(base_state), expected)  # the base alone predicts otherwise
    assert torch.equal(predict(adapters.load_state_dict(loaded)), expected)

    # Another base (FC's frozen weights) is refused, not silently combined.
    code, text = smoke.pekit(
        "adapters load onto fc",
        [
            "adapters",
            "load",
            str(out),
            "--base",
            str(smoke.run_dir("hmd", "fc") / "mmf" / "best.ckpt"),
            "--out",
            str(tmp_path / "wrong.ckpt"),
        ],
    )
    assert code == 1 and "same base checkpoint" in text, text[-2000:]
    assert not (tmp_path / "wrong.ckpt").exists()


# --- the demo's folder ------------------------------------------------------------------------


def test_the_demo_keeps_what_every_later_step_needs(smoke):
    results = smoke.results
    _, out = smoke.outputs["demo"]
    assert "next, on the demo's results" in out and f"pekit status --results {results}" in out
    assert (results / "report.md").is_file() and (results / "report.json").is_file()
    assert sorted(p.suffix for p in (results / "plots").iterdir()) and all(
        p.stat().st_size > 0 for p in (results / "plots").iterdir()
    )
    for dataset, mode in FINISHED_RUNS:
        save = smoke.run_dir(dataset, mode) / "mmf"
        assert (save / "best.ckpt").is_file() and (save / "current.ckpt").is_file()
    assert (results / demo.ADAPTERS / adapters.WEIGHTS).is_file()
    # `pekit status` reads the same folder: every demo run finished at update 4 of 4.
    code, text = smoke.pekit("status", ["status", "--results", str(results), "--json"])
    assert code == 0, text[-4000:]
    runs = {r["key"]: r for r in json.loads(text[text.index("[") :])}
    for dataset, mode in FINISHED_RUNS:
        run = runs[f"{dataset}/{MODEL}/{mode}/seed1"]
        assert run["state"] == "finished" and run["update"] == run["max_updates"] == MAX_UPDATES
    # A second demo reuses every finished run: nothing is trained again.
    code, text = smoke.pekit("demo again", ["demo", "--results", str(results)])
    assert code == 0, text[-4000:]
    assert ": training" not in text and ": resuming" not in text
