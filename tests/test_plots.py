"""The report's plots and numbers read the same everywhere: one colour per mode in every plot
(ours solid, the paper's dashed), the study's points coloured by mode with their labels inside
the axes, whole-update ticks, undefined AUROC shown as n/a and never judged, readable durations."""

import json
import math

import pytest

from helpers.mmf_log_writer import training_log
from pekit import report
from pekit.core import durations
from pekit.report import plots, tables
from pekit.report import study_section as study
from pekit.run import record

# --- runs without MMF -----------------------------------------------------------------------


def curve_log(updates, auroc, loss=0.6):
    """A parsed log (logs.parse_lines' shape) training `updates` updates, validated every 2."""
    return {
        "train": [{"update": u, "loss": loss + 0.1 / u} for u in range(1, updates + 1)],
        "val": [{"update": u, "roc_auc": auroc, "loss": loss} for u in range(2, updates + 1, 2)],
    }


def run(dataset, variant, updates=4, auroc=0.7, trained=100, seed=1):
    log = curve_log(updates, auroc)
    log.update(
        parameters={"total": 10_000, "trained": trained},
        best={"update": updates, "roc_auc": auroc},
        ups=2.0,
        peak_memory_mb=100.0,
    )
    return {
        "dataset": dataset,
        "model": "visual_bert",
        "mode": variant,
        "seed": seed,
        "log": log,
        "test": {},
    }


def drawn_lines(written):
    """(plot file, panel, label, linestyle, colour) of every line the curve plots drew."""
    return [
        (p["file"], panel["panel"], lab, style, color)
        for p in written
        for panel in p["panels"]
        for (lab, style), color in zip(panel["lines"], panel["colors"])
    ]


# --- colours --------------------------------------------------------------------------------


def test_a_mode_keeps_its_colour_in_every_plot_and_shares_it_with_the_papers(tmp_path):
    runs = [run(d, m) for d in ("hmd", "mmh") for m in ("fc", "pe", "full")]
    runs += [run("hmd", "pe-red20"), run("hmd", "lora-r4"), run("mmh", "bitfit")]
    paper = {("hmd", "pe"): curve_log(8, 0.72), ("mmh", "full"): curve_log(8, 0.73)}
    written = plots.render_plots(plots.plot_specs(runs, paper), tmp_path)
    lines = drawn_lines(written)
    by_label = {}
    for _file, _panel, lab, _style, color in lines:
        by_label.setdefault(lab, set()).add(color)
    # One colour per curve wherever it is drawn (2 datasets x 3 panels), each mode its own.
    assert all(len(colors) == 1 for colors in by_label.values()), by_label
    colors = {lab: c.pop() for lab, c in by_label.items()}
    base = ["FC", "PE", "Full-FT", "BitFit"]
    assert len({colors[lab] for lab in base}) == len(base)
    # The paper's curve: its mode's colour, dashed; ours solid.
    assert colors["PE (paper)"] == colors["PE"] == plots.mode_style("pe")["color"]
    assert colors["Full-FT (paper)"] == colors["Full-FT"]
    styles = {(lab, style) for _f, _p, lab, style, _c in lines}
    assert ("PE (paper)", "--") in styles and ("PE", "-") in styles
    assert all(style == ("--" if "(paper)" in lab else "-") for lab, style in styles)
    # A size of a mode: a shade of the mode's colour (not another mode's), its own marker.
    others = [c for lab, c in colors.items() if lab != "PE (reduction 20)"]
    assert colors["PE (reduction 20)"] not in others
    assert plots.mode_style("pe-red20")["marker"] != plots.mode_style("pe")["marker"]
    assert plots.mode_style("lora-r4")["color"] != plots.mode_style("lora")["color"]


def test_a_sized_variants_colour_is_a_shade_of_its_modes():
    def rgb(color):
        return [int(color[i : i + 2], 16) for i in (1, 3, 5)]

    for variant, mode in (("pe-red20", "pe"), ("pe-red5", "pe"), ("lora-r4", "lora")):
        shade, base = rgb(plots.mode_style(variant)["color"]), rgb(plots.MODE_COLORS[mode])
        # Mixed toward black or white: the channels keep their order, so the hue stays.
        assert sorted(range(3), key=shade.__getitem__) == sorted(range(3), key=base.__getitem__)
        # The same whatever else is drawn: a function of the name alone.
        assert plots.mode_style(variant) == plots.mode_style(variant)
    assert plots.mode_style("not-a-mode")["color"] not in plots.MODE_COLORS.values()


# --- ticks ----------------------------------------------------------------------------------


def test_a_run_of_four_updates_has_whole_update_ticks(tmp_path):
    written = plots.render_plots(plots.plot_specs([run("hmd", "fc", updates=4)]), tmp_path)
    panels = [panel for p in written for panel in p["panels"]]
    assert {panel["panel"] for panel in panels} == {"auroc", "train_loss", "val_loss"}
    for panel in panels:
        ticks = panel["xticks"]
        assert ticks and all(t == int(t) for t in ticks), (panel["panel"], ticks)
    train = next(panel for panel in panels if panel["panel"] == "train_loss")
    assert train["xticks"] == [1.0, 2.0, 3.0, 4.0]


# --- the study plot -------------------------------------------------------------------------


def test_study_points_are_coloured_by_mode_and_labelled_inside_the_axes(tmp_path):
    # Points at every corner: the cheapest and the dearest, the best and the worst.
    runs = [
        run("hmd", "fc", auroc=0.55, trained=10),
        run("hmd", "pe", auroc=0.74, trained=200),
        run("hmd", "pe-red20", auroc=0.73, trained=120),
        run("hmd", "lora-r4", auroc=0.52, trained=9_000),
        run("hmd", "bitfit", auroc=0.60, trained=90),
        run("hmd", "full", auroc=0.76, trained=10_000),
    ]
    (plot,) = study.render_study_plots(study.study_rows(runs), tmp_path)
    colors = {p["variant"]: p["color"] for p in plot["points"]}
    assert colors == {v: plots.mode_style(v)["color"] for v in colors}
    assert len({colors[m] for m in ("fc", "pe", "lora-r4", "bitfit", "full")}) == 5
    # The same colour as the mode's curves.
    assert colors["full"] == plots.MODE_COLORS["full"]
    assert "PE (reduction 20)" in plot["legend"] and "Full-FT" in plot["legend"]
    assert "Pareto front" in plot["legend"]
    assert [t["text"] for t in plot["labels"]] == [
        "FC",
        "PE (reduction 10)",
        "PE (reduction 20)",
        "LoRA (rank 4)",
        "BitFit",
        "Full-FT",
    ]
    for text in plot["labels"]:
        x0, y0, x1, y1 = text["box"]
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, text


def test_a_variant_without_an_auroc_is_named_n_a_in_the_study_plot(tmp_path):
    runs = [run("hmd", "fc", auroc=0.55, trained=10), run("hmd", "pe", auroc=math.nan)]
    rows = study.study_rows(runs)
    (plot,) = study.render_study_plots(rows, tmp_path)
    assert [p["variant"] for p in plot["points"]] == ["fc"]
    assert "PE (reduction 10): AUROC n/a" in plot["legend"]
    (group,) = rows.values()
    assert group[1]["val_auroc"] == {"mean": None, "std": None, "n": 0, "undefined": 1}


# --- undefined AUROC ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metric,value,shown",
    [
        ("roc_auc", 0.71, 0.71),
        ("roc_auc", math.nan, None),  # scikit-learn >= 1.6.1 on a one-class split
        ("roc_auc", 0.0, 0.0),  # every example ranked wrong: a real score
        ("roc_auc", math.inf, None),
        ("roc_auc", None, None),  # nan through the kit's JSON
        ("accuracy", 0.0, 0.0),  # an accuracy of 0 is an accuracy
        ("binary_f1", math.nan, None),
    ],
)
def test_what_is_an_undefined_metric(metric, value, shown):
    assert tables.defined(metric, value) == shown


def write_run(results, dataset, mode, auroc, test=None):
    """A finished 4-update run trained with the paper's settings, its AUROC `auroc` at every
    validation (MMF writes it with 4 decimals: nan as 'nan')."""
    folder = results / "runs" / dataset / "visual_bert" / mode / "seed1"
    folder.mkdir(parents=True)

    def curve(update, max_updates):
        return {"loss": 0.6, "accuracy": 0.5, "binary_f1": 0.3, "roc_auc": auroc}

    name = "hateful_memes" if dataset == "hmd" else "mmh"
    log = training_log(name, max_updates=4, log_interval=1, eval_interval=2, curve=curve)
    (folder / "train.log").write_text(log)
    run_record = {
        "run": {
            "dataset": dataset,
            "model": "visual_bert",
            "mode": mode,
            "seed": 1,
            "settings": "paper",
            "batch_size": 16,
            "gpus": 1,
        },
        "status": "finished",
        "log": "train.log",
        "exit_status": 0,
        "test": test or {},
    }
    (folder / record.RECORD).write_text(json.dumps(run_record))


def test_an_undefined_auroc_shows_n_a_and_is_never_judged(tmp_path):
    results = tmp_path / "results"
    one_class = {"status": "finished", "metrics": {"roc_auc": None, "accuracy": 1.0}}
    write_run(results, "hmd", "fc", math.nan, test={"test_seen": one_class})
    write_run(results, "hmd", "pe", math.nan)
    write_run(results, "mmh", "fc", 0.6366)  # the paper's AUROC: a pass beside them
    rep = report.build_report(results)
    rows = {(r["dataset"], r["mode"]): r for r in rep["table2"] if r["n"]}
    for key in (("hmd", "fc"), ("hmd", "pe")):
        assert rows[key]["judged"] and rows[key]["pass"] is None, key
        assert rows[key]["roc_auc"]["mean"] is None and rows[key]["roc_auc"]["undefined"] == 1
    assert rows[("mmh", "fc")]["pass"] is True
    md = report.render_markdown(rep)
    table2 = md.split("## Table II")[1].split("\n## ")[0].splitlines()
    for mode in ("FC", "PE"):
        (row,) = [ln for ln in table2 if ln.startswith(f"| HMD | VisualBERT | {mode} |")]
        # AUROC n/a, no difference to the paper's, verdict n/a.
        assert row.startswith(f"| HMD | VisualBERT | {mode} | paper | 1 | n/a | 0.")
        assert "| – | 0.5000 |" in row and row.endswith("| n/a |"), row
    assert "| HMD | VisualBERT | FC | paper | test_seen | 0 | n/a | 1.0000 |" in md
    assert "**FAIL**" not in md and "| 0.0000 |" not in "\n".join(table2)
    # The curve plot: no AUROC points for those modes, the legend says n/a.
    (auroc,) = [
        panel["lines"]
        for p in rep["plots"]
        if p["dataset"] == "hmd" and p["kind"] == "val_auroc"
        for panel in p["panels"]
    ]
    assert auroc == [("FC: n/a", "-"), ("PE: n/a", "-")]


# --- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seconds,shown",
    [
        (None, "–"),
        (0.4, "0.4 s"),
        (8.46, "8.5 s"),
        (42, "42 s"),
        (59.4, "59 s"),
        (59.6, "1.0 min"),
        (210, "3.5 min"),
        (3540, "59.0 min"),
        (3599, "1.0 h"),
        (7560, "2.1 h"),
        (36 * 3600, "36.0 h"),
    ],
)
def test_durations_read_in_their_unit(seconds, shown):
    assert durations.readable(seconds, missing="–") == shown


def test_the_runs_table_prints_wall_time_in_its_unit(tmp_path):
    results = tmp_path / "results"
    write_run(results, "hmd", "fc", 0.7)
    rep = report.build_report(results, plots=False)
    (wall,) = [r["wall_time_s"] for r in rep["runs"]]
    md = report.render_markdown(rep)
    (row,) = [ln for ln in md.split("## Runs")[1].splitlines() if ln.startswith("| HMD |")]
    assert "| wall time |" in md and row.endswith(f"| {durations.readable(wall)} |")
    assert row.endswith("| 29 s |")  # MMF's "Finished run in 28s 800ms"
