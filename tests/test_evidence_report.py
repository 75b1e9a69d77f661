"""The report's evidence (pekit.report.evidence) from hand-made run folders with predictions:
intervals per run and over seeds, the paired comparisons and their sentences (the numbers of
pekit.report.stats on the same data), the disagreements with the memes' texts, the confusion
counts, the refusal of a malformed predictions file, runs without predictions, report.json and
report.md, determinism and speed."""

from __future__ import annotations

import json
import statistics
import time

import numpy as np
import pytest

from helpers.predictions import scored, write_annotations, write_predictions, write_run
from pekit import cli
from pekit.report import build_report, collect_runs, render_markdown, stats, write_report
from pekit.report.evidence import evidence

HMD_VAL = "dev_seen"


@pytest.fixture(autouse=True)
def no_data(tmp_path, monkeypatch):
    """MMF's default data folder is an empty one: no test reads the user's annotations."""
    monkeypatch.setenv("MMF_DATA_DIR", str(tmp_path / "no-data"))


def _evidence(results, **options):
    return evidence(collect_runs(results)[0], **options)


def _run_split(ev, mode, split, seed=1):
    run = next(r for r in ev["runs"] if (r["mode"], r["seed"]) == (mode, seed))
    return next(s for s in run["splits"] if s["split"] == split)


def _width(interval):
    return interval["high"] - interval["low"]


# --- one run ------------------------------------------------------------------------------


def test_a_runs_intervals_hold_its_value_and_narrow_with_more_examples(tmp_path):
    results = tmp_path / "results"
    folder = write_run(results, "hmd", "pe")
    small = scored(200, seed=1)
    large = scored(2000, seed=1)
    write_predictions(folder, HMD_VAL, small[0], small[2], gold=small[1])
    write_predictions(folder, "test_seen", large[0], large[2], gold=large[1])
    ev = _evidence(results)
    assert (ev["resamples"], ev["seed"], ev["level"]) == (1000, 0, 0.95)
    few, many = _run_split(ev, "pe", HMD_VAL), _run_split(ev, "pe", "test_seen")
    for entry, (_, gold, proba) in ((few, small), (many, large)):
        for name in ("auroc", "accuracy"):
            ci = entry[name]
            assert ci["low"] <= ci["value"] <= ci["high"]
        assert entry["auroc"] == {
            k: v
            for k, v in stats.bootstrap_ci(gold, proba, stats.auroc, 1000, 0).items()
            if k in ("value", "low", "high")
        }
        predicted = [int(p > 0.5) for p in proba]
        assert entry["accuracy"]["value"] == stats.accuracy(gold, predicted)
    assert _width(many["auroc"]) < _width(few["auroc"]) / 2
    assert _width(many["accuracy"]) < _width(few["accuracy"]) / 2


def test_the_vectorised_accuracy_interval_is_the_generic_one():
    _, gold, proba = scored(300, seed=4)
    predicted = [int(p > 0.5) for p in proba]
    fast = stats.bootstrap_ci(gold, predicted, stats.accuracy, 500, seed=3)
    slow = stats.bootstrap_ci(gold, predicted, lambda y, s: stats.accuracy(y, s), 500, seed=3)
    assert fast == slow


def test_one_draw_of_resamples_gives_every_interval_of_stats():
    """The replicates evidence shares per split are those of stats' own intervals."""
    _, gold, a = scored(250, seed=5)
    b, c = scored(250, seed=6)[2], scored(250, seed=7)[2]
    rows = stats.resampled(gold, [a, b, c], stats.auroc, 300, seed=2)
    single = stats.bootstrap_ci(gold, b, stats.auroc, 300, seed=2)
    assert stats.percentile_interval(rows[1]) == (single["low"], single["high"])
    paired = stats.paired_bootstrap(gold, a, c, 300, seed=2)
    assert stats.percentile_interval(rows[0] - rows[2]) == (paired["low"], paired["high"])
    pooled = stats.pooled_bootstrap(gold, [a, b, c], stats.auroc, 300, seed=2)
    assert stats.percentile_interval(rows.mean(axis=0)) == (pooled["low"], pooled["high"])
    one = stats.pooled_bootstrap(gold, [a], stats.auroc, 300, seed=2)
    alone = stats.bootstrap_ci(gold, a, stats.auroc, 300, seed=2)
    assert (one["value"], one["low"], one["high"]) == (alone["value"], alone["low"], alone["high"])


def test_confusion_counts_at_the_predicted_labels(tmp_path):
    results = tmp_path / "results"
    folder = write_run(results, "hmd", "fc")
    gold = [1, 1, 1, 0, 0, 0, 0, 1]
    label = [1, 1, 0, 1, 0, 0, 0, 0]  # TP 2, FN 2, FP 1, TN 3
    proba = [0.9, 0.8, 0.4, 0.7, 0.1, 0.2, 0.3, 0.45]
    write_predictions(folder, HMD_VAL, list("abcdefgh"), proba, label, gold)
    entry = _run_split(_evidence(results, resamples=50), "fc", HMD_VAL)
    assert entry["confusion"] == {"tp": 2, "fp": 1, "fn": 2, "tn": 3}
    assert entry["positives"] == 4 and entry["examples"] == 8


def test_a_split_without_labels_has_no_scores_and_one_class_no_auroc(tmp_path):
    results = tmp_path / "results"
    folder = write_run(results, "hmd", "pe")
    write_predictions(folder, "test_unseen", ["1", "2"], [0.2, 0.9])
    write_predictions(folder, HMD_VAL, ["1", "2", "3"], [0.2, 0.9, 0.6], gold=[1, 1, 1])
    ev = _evidence(results, resamples=20)
    unlabelled = _run_split(ev, "pe", "test_unseen")
    assert unlabelled["labelled"] is False and "auroc" not in unlabelled
    one_class = _run_split(ev, "pe", HMD_VAL)
    assert one_class["auroc"]["value"] is None and "both classes" in one_class["auroc"]["reason"]
    assert one_class["accuracy"]["value"] == pytest.approx(2 / 3)
    md = render_markdown(build_report(results, plots=False))
    assert "| test_unseen | 2 | no labels | – |" in md
    assert "| dev_seen | 3 | n/a | 0.667 [" in md


# --- seeds --------------------------------------------------------------------------------


def test_seeds_give_mean_std_and_a_pooled_interval_aligned_by_id(tmp_path):
    results = tmp_path / "results"
    rng = np.random.default_rng(7)
    data = {}
    for seed in (1, 2, 3):
        ids, gold, proba = scored(400, seed=seed, skill=0.8 + 0.1 * seed)
        data[seed] = (gold, proba)
        order = rng.permutation(len(ids))  # each file in its own order: aligned by id
        write_predictions(
            write_run(results, "hmd", "pe", seed=seed),
            HMD_VAL,
            [ids[i] for i in order],
            [proba[i] for i in order],
            gold=[gold[i] for i in order],
        )
    ev = _evidence(results, resamples=300)
    (group,) = ev["seeds"]
    assert (group["mode"], group["split"], group["seeds"]) == ("pe", HMD_VAL, [1, 2, 3])
    aurocs = [stats.auroc(*data[s]) for s in (1, 2, 3)]
    assert group["auroc"]["mean"] == pytest.approx(statistics.mean(aurocs), abs=1e-12)
    assert group["auroc"]["std"] == pytest.approx(statistics.stdev(aurocs), abs=1e-12)
    assert group["auroc"]["n"] == 3
    gold = data[1][0]
    pooled = stats.pooled_bootstrap(gold, [data[s][1] for s in (1, 2, 3)], stats.auroc, 300, 0)
    assert group["auroc"]["pooled"] == {k: pooled[k] for k in ("value", "low", "high")}
    assert group["auroc"]["pooled"]["low"] < group["auroc"]["mean"] < pooled["high"]
    assert group["accuracy"]["pooled"]["low"] <= group["accuracy"]["mean"]
    md = render_markdown(build_report(results, plots=False))
    assert "### Over seeds" in md
    assert f"{group['auroc']['mean']:.3f} ± {group['auroc']['std']:.3f}" in md


def test_seeds_on_other_examples_have_no_pooled_interval(tmp_path):
    results = tmp_path / "results"
    for seed, n in ((1, 100), (2, 120)):
        ids, gold, proba = scored(n, seed=seed)
        write_predictions(
            write_run(results, "hmd", "pe", seed=seed), HMD_VAL, ids, proba, gold=gold
        )
    (group,) = _evidence(results, resamples=50)["seeds"]
    assert group["auroc"]["n"] == 2 and group["auroc"]["pooled"] is None
    assert "not the same examples" in group["auroc"]["reason"]


# --- paired comparisons -------------------------------------------------------------------


def _three_modes(results, n=300, seed=1, shuffle=False):
    """PE, Full-FT and FC on the same HMD examples (correlated); {mode: (gold, proba)}."""
    shared = np.random.default_rng(99).standard_normal(n)
    out = {}
    for k, (mode, skill) in enumerate((("pe", 1.0), ("full", 1.1), ("fc", 0.6))):
        ids, gold, proba = scored(n, seed=k + 1, skill=skill, shared=shared)
        out[mode] = (gold, proba)
        order = np.random.default_rng(5).permutation(n) if shuffle and mode == "full" else range(n)
        folder = write_run(results, "hmd", mode, seed=seed)
        write_predictions(
            folder,
            HMD_VAL,
            [ids[i] for i in order],
            [proba[i] for i in order],
            gold=[gold[i] for i in order],
        )
    return out


def test_pe_against_full_ft_and_fc_as_stats_computes_them(tmp_path):
    results = tmp_path / "results"
    data = _three_modes(results, shuffle=True)
    ev = _evidence(results, resamples=400, seed=11)
    pairs = {(p["a"], p["b"]): p for p in ev["pairs"]}
    assert list(pairs) == [("pe", "full"), ("pe", "fc")]
    for (a, b), pair in pairs.items():
        gold, pa = data[a]
        pb = data[b][1]
        paired = stats.paired_bootstrap(gold, pa, pb, resamples=400, seed=11)
        test = stats.delong(gold, pa, pb)
        assert (pair["difference"], pair["low"], pair["high"]) == (
            paired["difference"],
            paired["low"],
            paired["high"],
        )
        assert (pair["p"], pair["se"]) == (test["p"], test["se"])
        names = {"pe": "PE", "full": "Full-FT", "fc": "FC"}
        where = "HMD dev_seen (VisualBERT, seed 1)"
        assert pair["sentence"] == stats.sentence(names[a], names[b], where, paired, test)
    assert pairs[("pe", "full")]["sentence"].startswith(
        "PE \u2212 Full-FT on HMD dev_seen (VisualBERT, seed 1): "
    )
    assert pairs[("pe", "fc")]["sentence"].startswith("PE \u2212 FC on HMD dev_seen")
    report = build_report(results, plots=False)
    md = render_markdown(report)
    for pair in report["evidence"]["pairs"]:
        assert f"- {pair['sentence']}" in md


def test_study_variants_are_compared_against_pe(tmp_path):
    results = tmp_path / "results"
    ids, gold, _ = scored(200, seed=0)
    for k, variant in enumerate(("pe", "pe-red20", "lora-r4", "bitfit")):
        proba = scored(200, seed=k + 1)[2]
        write_predictions(write_run(results, "mmh", variant), "val", ids, proba, gold=gold)
    ev = _evidence(results, resamples=100)
    assert [(p["a"], p["b"]) for p in ev["pairs"]] == [
        ("pe-red20", "pe"),
        ("lora-r4", "pe"),
        ("bitfit", "pe"),
    ]
    sentences = [p["sentence"] for p in ev["pairs"]]
    assert sentences[0].startswith("PE (reduction 20) \u2212 PE on MMH val (VisualBERT, seed 1)")
    assert sentences[1].startswith("LoRA (rank 4) \u2212 PE on MMH val")
    assert sentences[2].startswith("BitFit \u2212 PE on MMH val")


def test_runs_on_other_examples_are_not_compared(tmp_path):
    results = tmp_path / "results"
    for mode, n in (("pe", 50), ("full", 60)):
        ids, gold, proba = scored(n, seed=1)
        write_predictions(write_run(results, "hmd", mode), HMD_VAL, ids, proba, gold=gold)
    ev = _evidence(results, resamples=20)
    (pair,) = ev["pairs"]
    assert pair["sentence"] is None and "not the same examples" in pair["reason"]
    (table,) = ev["disagreements"]
    assert table["differ"] is None and table["rows"] == []
    assert "PE \u2212 Full-FT on HMD dev_seen (VisualBERT, seed 1): not compared" in (
        render_markdown(build_report(results, plots=False))
    )


# --- disagreements ------------------------------------------------------------------------

# id: (FC, PE, Full-FT) probabilities; labels at 0.5.
EXAMPLES = {
    "101": (0.10, 0.20, 0.30),  # all 0
    "102": (0.40, 0.60, 0.55),  # differ, spread 0.20
    "103": (0.05, 0.95, 0.50),  # differ, spread 0.90 (Full-FT's 0.50 is label 0)
    "104": (0.70, 0.80, 0.90),  # all 1
    "105": (0.49, 0.51, 0.49),  # differ, spread 0.02
    "106": (0.90, 0.30, 0.65),  # differ, spread 0.60
    "107": (0.45, 0.40, 0.85),  # differ, spread 0.45
}
GOLD = {"101": 0, "102": 1, "103": 1, "104": 1, "105": 0, "106": 0, "107": 1}
TEXTS = {i: f"meme {i} | says\nsomething" for i in EXAMPLES}


def _disagreeing(results, data_dir, seed=1):
    for k, mode in enumerate(("fc", "pe", "full")):
        folder = write_run(results, "hmd", mode, seed=seed, data_dir=data_dir)
        ids = list(EXAMPLES)
        proba = [EXAMPLES[i][k] for i in ids]
        write_predictions(folder, HMD_VAL, ids, proba, gold=[GOLD[i] for i in ids])


def test_disagreements_list_the_examples_labelled_differently_by_spread(tmp_path):
    results, data = tmp_path / "results", tmp_path / "data"
    _disagreeing(results, data)
    write_annotations(data, "hmd", HMD_VAL, TEXTS)
    ev = _evidence(results, resamples=20)
    (table,) = ev["disagreements"]
    assert table["modes"] == ["fc", "pe", "full"]
    assert (table["differ"], table["examples"]) == (5, 7)
    assert [r["id"] for r in table["rows"]] == ["103", "106", "107", "102", "105"]
    first = table["rows"][0]
    assert first["proba"] == {"fc": 0.05, "pe": 0.95, "full": 0.5}
    assert first["label"] == {"fc": 0, "pe": 1, "full": 0}
    assert first["spread"] == pytest.approx(0.9) and first["gold"] == 1
    assert first["text"] == TEXTS["103"] and not ev["notes"]
    md = render_markdown(build_report(results, plots=False))
    assert "### Where the modes disagree" in md
    assert "5 of 7 examples labelled differently" in md
    assert (
        "| 103 | 0.050 (0) | 0.950 (1) | 0.500 (0) | 0.900 | 1 | meme 103 \\| says something |"
        in md
    )
    top = _evidence(results, resamples=20, top=2)["disagreements"][0]
    assert [r["id"] for r in top["rows"]] == ["103", "106"] and top["differ"] == 5


def test_missing_annotations_leave_the_texts_empty_said_once(tmp_path):
    results, data = tmp_path / "results", tmp_path / "nowhere"
    _disagreeing(results, data, seed=1)
    _disagreeing(results, data, seed=2)
    ev = _evidence(results, resamples=20)
    assert len(ev["disagreements"]) == 2
    assert all(r["text"] == "" for d in ev["disagreements"] for r in d["rows"])
    (note,) = ev["notes"]
    assert note.startswith("no meme texts for HMD dev_seen: ") and str(data) in note


# --- bad input and old runs ---------------------------------------------------------------

GOOD = "id,proba,label,gold\n1,0.2,0,0\n2,0.7,1,1\n3,0.4,0,1\n"


@pytest.mark.parametrize(
    "text,where",
    [
        ("id,prob,label,gold\n1,0.2,0,0\n", "header is 'id,prob,label,gold'"),
        (GOOD + "4,abc,1,0\n", "row 4 (line 5): field 'proba' is 'abc'"),
        (GOOD + "4,1.5,1,0\n", "row 4 (line 5): field 'proba' is '1.5'"),
        (GOOD + "4,nan,1,0\n", "row 4 (line 5): field 'proba'"),
        (GOOD + "4,0.5,1,2\n", "row 4 (line 5): field 'gold' is '2'"),
        (GOOD + "4,0.5,yes,1\n", "row 4 (line 5): field 'label' is 'yes'"),
        (GOOD + "2,0.5,1,1\n", "row 4 (line 5): id '2' is also on row 2"),
        (GOOD + "4,0.5,1\n", "row 4 (line 5): 3 fields; expected 4"),
        (GOOD + "4,0.5,1,\n", "row 4 (line 5): gold is empty but not on row 1"),
        ("id,proba,label,gold\n", "no rows"),
    ],
)
def test_a_malformed_predictions_file_refuses_the_report_in_one_line(tmp_path, capsys, text, where):
    results = tmp_path / "results"
    folder = write_run(results, "hmd", "pe")
    (folder / "predictions").mkdir()
    path = folder / "predictions" / f"{HMD_VAL}.csv"
    path.write_text(text)
    assert cli.main(["report", "--results", str(results)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(path) in err and where in err
    assert not (results / "report.md").exists() and not (results / "plots").exists()


def test_a_predictions_file_that_leads_elsewhere_is_refused_unread(tmp_path, capsys):
    results = tmp_path / "results"
    folder = write_run(results, "hmd", "pe")
    (folder / "predictions").mkdir()
    outside = tmp_path / "elsewhere.csv"
    outside.write_text(GOOD)
    (folder / "predictions" / f"{HMD_VAL}.csv").symlink_to(outside)
    assert cli.main(["report", "--results", str(results)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "outside" in err and f"{HMD_VAL}.csv" in err


def test_runs_without_predictions_are_reported_as_such(tmp_path):
    results = tmp_path / "results"
    write_run(results, "hmd", "fc")
    ids, gold, proba = scored(60, seed=2)
    write_predictions(write_run(results, "hmd", "pe"), HMD_VAL, ids, proba, gold=gold)
    ev = _evidence(results, resamples=20)
    old = next(r for r in ev["runs"] if r["mode"] == "fc")
    assert old["predictions"] is False and old["splits"] == []
    assert old["reason"].startswith("no predictions")
    assert ev["pairs"] == [] and ev["disagreements"] == []
    md = render_markdown(build_report(results, plots=False))
    assert "Runs without predictions:" in md
    assert "- HMD/VisualBERT/FC/seed 1: no predictions" in md


# --- the report ---------------------------------------------------------------------------


def test_report_json_and_md_hold_the_evidence_the_same_each_time(tmp_path):
    results, data = tmp_path / "results", tmp_path / "data"
    _disagreeing(results, data)
    write_annotations(data, "hmd", HMD_VAL, TEXTS)
    _, report = write_report(results)
    saved = json.loads((results / "report.json").read_text())
    assert saved["evidence"] == json.loads(json.dumps(report["evidence"]))
    assert set(saved["evidence"]) >= {"runs", "seeds", "pairs", "disagreements", "notes"}
    assert saved["evidence"]["resamples"] == 1000 and saved["evidence"]["seed"] == 0
    md = (results / "report.md").read_text()
    assert "## Evidence" in md and "1000 resamples, seed 0" in md
    pe = _run_split(saved["evidence"], "pe", HMD_VAL)["auroc"]
    shown = f"{pe['value']:.3f} [{pe['low']:.3f}, {pe['high']:.3f}]"
    assert f"| HMD | VisualBERT | PE | 1 | dev_seen | 7 | {shown} |" in md
    again = build_report(results, plots=False)["evidence"]
    assert json.dumps(again, sort_keys=True) == json.dumps(report["evidence"], sort_keys=True)


def test_the_evidence_of_tens_of_runs_takes_seconds(tmp_path):
    results = tmp_path / "results"
    shared = np.random.default_rng(3).standard_normal(2000)
    for dataset in ("hmd",):
        for k, mode in enumerate(("fc", "pe", "full", "lora", "bitfit", "pe-red20")):
            for seed in (1, 2, 3, 4, 5):
                folder = write_run(results, dataset, mode, seed=seed)
                for split in (HMD_VAL, "test_seen"):
                    ids, gold, proba = scored(2000, seed=100 * k + seed, shared=shared)
                    write_predictions(folder, split, ids, proba, gold=gold)
    runs = collect_runs(results)[0]
    assert len(runs) == 30
    start = time.perf_counter()
    ev = evidence(runs)
    spent = time.perf_counter() - start
    assert len(ev["pairs"]) == 5 * 2 * 5  # per seed and split: 2 paper pairs, 3 variants
    assert spent < 30, spent  # about 4 s on a busy core
