"""The report: runs whose logs reproduce the paper's numbers give back the paper's Table II."""

import json

import pytest

from helpers.mmf_log_writer import training_log
from helpers.paper_runs import reference_rows, write_run
from pekit import cli, report
from pekit.run import record

MODES = ("fc", "pe", "full")


@pytest.fixture
def paper_results(tmp_path):
    results = tmp_path / "results"
    for dataset in ("hmd", "mmh"):
        for mode in MODES:
            write_run(results, dataset, mode)
    return results


def test_table2_renders_the_papers_numbers(paper_results):
    rep = report.build_report(paper_results, plots=False)
    rows = {(r["dataset"], r["mode"]): r for r in rep["table2"]}
    assert len(rows) == 6
    for key, ref in reference_rows().items():
        row = rows[key]
        assert row["n"] == 1
        for metric in ("roc_auc", "accuracy", "binary_f1"):
            assert row[metric]["mean"] == pytest.approx(ref[metric], abs=1e-9)
            assert row[metric]["paper"] == ref[metric]
        assert row["roc_auc"]["diff"] == pytest.approx(0.0, abs=1e-9)
        assert row["best_update"]["mean"] == ref["best_update"]
        assert row["pass"] is True
    md = report.render_markdown(rep)
    assert "<= 0.02" in md
    assert (
        "| HMD | VisualBERT | PE | paper | 1 | 0.7281 | 0.7281 | +0.0000 | 0.6320 | 0.6320 | 0.5354 "
        "| 0.5354 | 19000 | 19,000 | pass |" in md
    )
    assert "| MMH | VisualBERT | Full-FT | paper | 1 | 0.7244 | 0.7244 |" in md


def test_table1_matches_paper_counts(paper_results):
    rows = {
        (r["model"], r["mode"]): r
        for r in report.build_report(paper_results, plots=False)["table1"]
    }
    pe = rows[("visual_bert", "pe")]
    assert pe["match"] is True
    assert pe["ours"]["pe"] == pe["paper"]["pe"] == 1410960
    assert pe["ours"]["increase_pct"] == pytest.approx(100 * 1410960 / 112044290)
    assert rows[("visual_bert", "fc")]["ours"]["pe"] == 0
    # ViLBERT was not run: the paper's row is shown with nothing of ours beside it.
    assert rows[("vilbert", "pe")]["ours"] is None and rows[("vilbert", "pe")]["match"] is None


def test_failed_and_interrupted_runs_are_excluded(paper_results):
    write_run(paper_results, "hmd", "pe", seed=2, status="failed", shift=-0.3)
    write_run(paper_results, "hmd", "fc", seed=2, status="interrupted", shift=-0.3)
    rep = report.build_report(paper_results, plots=False)
    row = next(r for r in rep["table2"] if (r["dataset"], r["mode"]) == ("hmd", "pe"))
    assert row["n"] == 1 and row["roc_auc"]["mean"] == pytest.approx(0.7281)
    assert {(r["mode"], r["status"]) for r in rep["excluded"]} == {
        ("pe", "failed"),
        ("fc", "interrupted"),
    }
    assert "not finished" in report.render_markdown(rep)


def test_several_seeds_give_mean_std_and_fail_outside_tolerance(paper_results):
    write_run(paper_results, "mmh", "fc", seed=2, shift=-0.1)
    rep = report.build_report(paper_results, plots=False, tolerance=0.02)
    row = next(r for r in rep["table2"] if (r["dataset"], r["mode"]) == ("mmh", "fc"))
    assert row["n"] == 2 and row["seeds"] == [1, 2]
    assert row["roc_auc"]["mean"] == pytest.approx(0.6366 - 0.05)
    assert row["roc_auc"]["std"] == pytest.approx(0.0707107, abs=1e-6)
    assert row["pass"] is False
    assert "0.5866 ± 0.0707" in report.render_markdown(rep)
    loose = report.build_report(paper_results, plots=False, tolerance=0.06)
    assert next(r for r in loose["table2"] if (r["dataset"], r["mode"]) == ("mmh", "fc"))["pass"]


def test_test_split_metrics_are_reported(tmp_path):
    results = tmp_path / "results"
    metrics = {"roc_auc": 0.71, "accuracy": 0.66, "binary_f1": 0.55, "loss": 0.6}
    write_run(
        results,
        "hmd",
        "pe",
        test={
            "test_seen": {"status": "finished", "metrics": metrics},
            "test_unseen": {"status": "failed"},
        },
    )
    rep = report.build_report(results, plots=False)
    assert [(r["split"], r["roc_auc"]["mean"]) for r in rep["test"]] == [("test_seen", 0.71)]
    assert (
        "| HMD | VisualBERT | PE | paper | test_seen | 1 | 0.7100 | 0.6600 | 0.5500 |"
        in report.render_markdown(rep)
    )


def test_plots_have_one_line_per_mode_and_paper_dashed(paper_results, tmp_path):
    paper_log = tmp_path / "paper_hmd_pe.log"
    paper_log.write_text(training_log(max_updates=22000, log_interval=500))
    rep = report.build_report(paper_results, paper_logs={("hmd", "pe"): str(paper_log)})
    plots = {(p["dataset"], p["kind"]): p for p in rep["plots"]}
    assert set(plots) == {
        ("hmd", "val_auroc"),
        ("hmd", "loss"),
        ("mmh", "val_auroc"),
        ("mmh", "loss"),
    }
    for (dataset, kind), plot in plots.items():
        assert plot["file"].endswith(f"{dataset}_visual_bert_{kind}.png")
        with open(plot["file"], "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        for panel in plot["panels"]:
            ours = [label for label, style in panel["lines"] if style == "-"]
            paper = [label for label, style in panel["lines"] if style == "--"]
            assert ours == ["FC", "PE", "Full-FT"]
            assert paper == (["PE (paper)"] if dataset == "hmd" else [])
    assert [p["panel"] for p in plots[("hmd", "loss")]["panels"]] == ["train_loss", "val_loss"]


def test_cli_writes_report_files(paper_results, tmp_path, capsys):
    paper_log = tmp_path / "p.log"
    paper_log.write_text(training_log(max_updates=22000, log_interval=500))
    assert (
        cli.main(
            [
                "report",
                "--results",
                str(paper_results),
                "--tolerance",
                "0.01",
                "--paper-log",
                f"hmd:fc={paper_log}",
            ]
        )
        == 0
    )
    data = json.loads((paper_results / "report.json").read_text())
    assert data["tolerance"] == 0.01
    assert all(r["pass"] for r in data["table2"])
    md = (paper_results / "report.md").read_text()
    assert "## Table I" in md and "## Table II" in md
    assert "plots/hmd_visual_bert_val_auroc.png" in md
    assert cli.main(["report", "--results", str(paper_results), "--paper-log", "hmd=x"]) == 2
    assert cli.main(["report", "--results", str(tmp_path / "empty")]) == 1


def test_a_run_recorded_by_an_older_kit_is_reported(tmp_path):
    """Older kits called the run record manifest.json: such runs are still read."""
    results = tmp_path / "results"
    folder = write_run(results, "hmd", "pe")
    (folder / record.RECORD).rename(folder / record.LEGACY_RECORD)
    runs, excluded = report.collect_runs(results)
    assert [(r["dataset"], r["mode"]) for r in runs] == [("hmd", "pe")] and not excluded
