"""The study's pieces without MMF: the Pareto front, the table rows from runs, the Markdown,
the variant names, and the dry run's GPU-time estimate."""

from __future__ import annotations

import pytest

from pekit.core.errors import UsageError
from pekit.facts import vocabulary
from pekit.facts.settings import PAPER
from pekit.report.markdown import render_markdown
from pekit.report.study_section import pareto, study_rows
from pekit.run.spec import RunSpec
from pekit.workflows import study


@pytest.mark.parametrize(
    "points,front",
    [
        ([(1, 0.5), (2, 0.6), (3, 0.55), (10, 0.7)], [0, 1, 3]),
        ([(5, 0.7), (1, 0.7)], [1]),  # same AUROC for more parameters: dominated
        ([(1, 0.7), (1, 0.7)], [0, 1]),  # ties dominate neither
        ([(1, None), (2, 0.6), (None, 0.9)], [1]),  # what is unknown is never on it
        ([], []),
    ],
)
def test_pareto_front(points, front):
    assert pareto(points) == front


def run(variant, seed, trained, auroc, test=None, ups=2.0):
    return {
        "dataset": "hmd",
        "model": "visual_bert",
        "mode": variant,
        "seed": seed,
        "log": {
            "parameters": {"total": 1000, "trained": trained},
            "best": {"roc_auc": auroc},
            "ups": ups,
            "peak_memory_mb": 100.0,
        },
        "test": test or {},
    }


def test_rows_average_seeds_and_mark_the_front():
    runs = [
        run("full", 1, 1000, 0.74, {"test_seen": {"roc_auc": 0.70}}),
        run("pe", 1, 20, 0.72, {"test_seen": {"roc_auc": 0.69}}),
        run("pe", 2, 20, 0.70, {"test_seen": {"roc_auc": 0.71}}),
        run("lora-r4", 1, 30, 0.65),
        run("fc", 1, 5, 0.58),
    ]
    (rows,) = study_rows(runs).values()
    assert [r["variant"] for r in rows] == ["fc", "pe", "lora-r4", "full"]
    pe = rows[1]
    assert pe["val_auroc"]["mean"] == pytest.approx(0.71) and pe["val_auroc"]["n"] == 2
    assert pe["test_auroc"]["test_seen"]["mean"] == pytest.approx(0.70)
    assert pe["trained_pct"] == pytest.approx(2.0)
    assert [r["pareto"] for r in rows] == [True, True, False, True]
    md = render_markdown(
        {
            "tolerance": 0.02,
            "table1": [],
            "table2": [],
            "test": [],
            "runs": [],
            "excluded": [],
            "plots": [],
            "study": [{"dataset": "hmd", "model": "visual_bert", "rows": rows}],
            "study_plots": [],
        }
    )
    assert "| LoRA (rank 4) | 30 | 3.00 | 0.6500 | – |" in md
    assert "| PE (reduction 10) | 20 | 2.00 | 0.7100 ± 0.0141 | 0.7000 ± 0.0141 |" in md
    assert md.count("| **front** |") == 3


def test_variant_names_round_trip_and_refuse_what_is_not_one():
    for mode, size, name in (
        ("pe", None, "pe"),
        ("pe", 10, "pe"),
        ("pe", 20, "pe-red20"),
        ("lora", 4, "lora-r4"),
        ("lora", 8, "lora"),
        ("bitfit", None, "bitfit"),
    ):
        assert vocabulary.variant(mode, size) == name
        assert vocabulary.parse_variant(name) == (mode, vocabulary.check_size(mode, size))
    for bad in ("pe-red10", "pe-red0", "lora-red4", "fc-r2", "pe-r20", "adalora"):
        with pytest.raises(UsageError):
            vocabulary.parse_variant(bad)
    with pytest.raises(UsageError, match="no size"):
        vocabulary.variant("bitfit", 4)
    assert vocabulary.label("lora-r4") == "LoRA (rank 4)"
    order = sorted(
        ["full", "lora", "pe-red20", "fc", "pe-red2", "bitfit"], key=vocabulary.variant_order
    )
    assert order == ["fc", "pe-red2", "pe-red20", "lora", "bitfit", "full"]


def test_gpu_time_comes_from_the_papers_v100_runs(tmp_path):
    def hours(model, mode, dataset="hmd", size=None):
        spec = RunSpec(tmp_path, dataset, model, mode, 1, settings=PAPER, size=size)
        return study.estimate_hours(spec)

    assert hours("visual_bert", "fc") == (pytest.approx(1.5), "the paper's time")  # 1h30
    assert hours("visual_bert", "full", "mmh")[0] == pytest.approx(21180 / 3600)
    # LoRA and BitFit are timed as PE; ViLBERT by its parameter ratio to VisualBERT.
    assert hours("visual_bert", "lora", size=4) == (pytest.approx(5880 / 3600), "PE's time")
    ratio = 247_780_354 / 112_044_290
    assert hours("vilbert", "bitfit")[0] == pytest.approx(5880 / 3600 * ratio)
