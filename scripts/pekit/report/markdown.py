"""report.md: the report's data as Markdown tables; the evidence's intervals as
`0.712 [0.668, 0.751]`, its comparisons as one sentence each."""

from __future__ import annotations

import math
from pathlib import Path

from ..core.durations import readable
from ..facts.vocabulary import PE, label, sized_label
from .stats import MINUS, signed


def _fmt(value, digits=4):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


# What a metric shows where the runs logged it but it is undefined (AUROC of a one-class
# split): told apart from "–", nothing logged.
UNDEFINED = "n/a"


def _fmt_stat(stat, digits=4):
    if stat["mean"] is None:
        return UNDEFINED if stat.get("undefined") else "–"
    if stat["n"] > 1:
        return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"
    return f"{stat['mean']:.{digits}f}"


def _fmt_diff(value):
    return "–" if value is None else f"{value:+.4f}"


def _fmt_int(value):
    return "–" if value is None else f"{value:,}"


def _fmt_pct(value):
    return "–" if value is None else f"{value:.2f}%"


def _study_section(report):
    """Every variant's trained parameters against its AUROC; the Pareto front marked."""
    if not report.get("study"):
        return []
    out = [
        "",
        "## Parameter efficiency: AUROC against trained parameters",
        "",
        "Best validation AUROC (mean ± std over seeds) of every mode and size run. **front**: on "
        "the Pareto front, no other run trains at most as many parameters for at least its AUROC.",
    ]
    plots = {(p["dataset"], p["model"]): p for p in report.get("study_plots", [])}
    for group in report["study"]:
        splits = sorted({s for r in group["rows"] for s in r["test_auroc"]})
        out += [
            "",
            f"### {label(group['dataset'])} / {label(group['model'])}",
            "",
            "| mode | trained | % of total | val AUROC | "
            + "".join(f"test AUROC ({s}) | " for s in splits)
            + "updates/s | peak MB | front |",
            "|---|---:|---:|---:|" + "---:|" * len(splits) + "---:|---:|---|",
        ]
        for r in group["rows"]:
            out.append(
                f"| {sized_label(r['variant'])} | {_fmt_int(r['trained'])} "
                f"| {_fmt(r['trained_pct'], 2)} | {_fmt_stat(r['val_auroc'])} | "
                + "".join(f"{_fmt_stat(r['test_auroc'].get(s, _NONE))} | " for s in splits)
                + f"{_fmt_stat(r['updates_per_s'], 2)} | {_fmt_stat(r['peak_memory_mb'], 0)} "
                f"| {'**front**' if r['pareto'] else ''} |"
            )
        plot = plots.get((group["dataset"], group["model"]))
        if plot:
            name = Path(plot["file"]).name
            out += ["", f"![{name}](plots/{name})"]
    return out


_NONE = {"mean": None, "std": None, "n": 0}


# --- the evidence -------------------------------------------------------------------------

TEXT_WIDTH = 80  # characters of a meme's text in a table; report.json has it whole


def _ci(interval):
    """ "0.712 [0.668, 0.751]"; "n/a" where the metric is undefined (report.json says why)."""
    if not interval:
        return "–"
    if interval.get("value") is None:
        return UNDEFINED
    return f"{signed(interval['value'])} [{signed(interval['low'])}, {signed(interval['high'])}]"


def _mean_std(stat):
    if stat["mean"] is None:
        return UNDEFINED
    if stat["std"] is None:
        return signed(stat["mean"])
    return f"{signed(stat['mean'])} ± {stat['std']:.3f}"


def _cell(text, width=TEXT_WIDTH):
    """`text` on one line of a table cell: no pipe or line break, at most `width` characters."""
    flat = " ".join(str(text).split()).replace("|", "\\|")
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _where(e):
    return f"{label(e['dataset'])} {e['split']} ({label(e['model'])}, seed {e['seed']})"


def _evidence_runs(ev):
    out = [
        "",
        "### Each run",
        "",
        "| dataset | model | mode | seed | split | n | AUROC [95% CI] | accuracy [95% CI] "
        "| TP | FP | FN | TN |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in ev["runs"]:
        for s in r["splits"]:
            c = s.get("confusion") or {}
            scored = (
                f"{_ci(s['auroc'])} | {_ci(s['accuracy'])}" if s["labelled"] else "no labels | –"
            )
            out.append(
                f"| {label(r['dataset'])} | {label(r['model'])} | {label(r['mode'])} "
                f"| {r['seed']} | {_cell(s['split'])} | {s['examples']} | {scored} | "
                + " | ".join(_fmt_int(c.get(k)) for k in ("tp", "fp", "fn", "tn"))
                + " |"
            )
    missing = [r for r in ev["runs"] if not r["predictions"]]
    if missing:
        out += ["", "Runs without predictions:", ""]
        out += [
            f"- {label(r['dataset'])}/{label(r['model'])}/{label(r['mode'])}/seed {r['seed']}: "
            f"{_cell(r['reason'], 300)} ({r['dir']})"
            for r in missing
        ]
    return out


def _evidence_seeds(ev):
    if not ev["seeds"]:
        return []
    out = [
        "",
        "### Over seeds",
        "",
        "Mean ± std over seeds (training's noise) beside the pooled interval of the mean (the "
        "examples' sampling error: every seed scored on the same resamples).",
        "",
        "| dataset | model | mode | settings | split | seeds | AUROC mean ± std | AUROC pooled "
        "| accuracy mean ± std | accuracy pooled |",
        "|---|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    for g in ev["seeds"]:
        out.append(
            f"| {label(g['dataset'])} | {label(g['model'])} | {label(g['mode'])} "
            f"| {g['settings'] or '–'} | {_cell(g['split'])} | {', '.join(map(str, g['seeds']))} "
            f"| {_mean_std(g['auroc'])} | {_ci(g['auroc']['pooled'])} "
            f"| {_mean_std(g['accuracy'])} | {_ci(g['accuracy']['pooled'])} |"
        )
    return out


def _evidence_pairs(ev):
    if not ev["pairs"]:
        return []
    out = ["", "### Paired comparisons (AUROC)", ""]
    for p in ev["pairs"]:
        if p["sentence"]:
            out.append(f"- {p['sentence']}")
        else:
            out.append(
                f"- {label(p['a'])} {MINUS} {label(p['b'])} on {_where(p)}: not compared, "
                f"{_cell(p['reason'], 300)}"
            )
    return out


def _disagreement(d):
    modes = [label(m) for m in d["modes"]]
    head = f"**{_where(d)}**, {', '.join(modes)}: "
    if d["differ"] is None:
        return ["", head + f"not compared, {_cell(d['reason'], 300)}"]
    if not d["differ"]:
        return ["", head + f"the same label on all {d['examples']} examples"]
    out = [
        "",
        head + f"{d['differ']} of {d['examples']} examples labelled differently; "
        f"the {len(d['rows'])} with the widest spread of probabilities:",
    ]
    if not d["rows"]:
        return out
    out += [
        "",
        "| id | " + " | ".join(modes) + " | spread | gold | text |",
        "|---|" + "---:|" * len(modes) + "---:|---:|---|",
    ]
    for row in d["rows"]:
        cells = [f"{row['proba'][m]:.3f} ({row['label'][m]})" for m in d["modes"]]
        gold = "–" if row["gold"] is None else row["gold"]
        out.append(
            f"| {_cell(row['id'])} | "
            + " | ".join(cells)
            + f" | {row['spread']:.3f} | {gold} | {_cell(row['text'])} |"
        )
    return out


def _evidence_section(report):
    """Intervals per run and over seeds, the paired comparisons, the disagreements."""
    ev = report.get("evidence")
    if not ev or not ev["runs"]:
        return []
    out = [
        "",
        "## Evidence",
        "",
        f"From each run's per-example predictions (predictions/<split>.csv). Intervals: "
        f"{ev['level']:.0%}, stratified bootstrap, {ev['resamples']} resamples, seed "
        f"{ev['seed']}. A difference is AUROC(A) {MINUS} AUROC(B) on the same examples: paired "
        "bootstrap interval, DeLong's p; an interval holding 0 means these examples cannot tell "
        "the two apart. Confusion counts at each run's predicted labels, hateful positive.",
    ]
    out += _evidence_runs(ev) + _evidence_seeds(ev) + _evidence_pairs(ev)
    if ev["disagreements"]:
        out += ["", "### Where the modes disagree"]
        for d in ev["disagreements"]:
            out += _disagreement(d)
    if ev["notes"]:
        out += ["", "Notes:", ""] + [f"- {_cell(n, 300)}" for n in ev["notes"]]
    return out


def render_markdown(report):
    tol = report["tolerance"]
    out = ["# Results against the paper", ""]
    out += [
        "## Table I: parameters",
        "",
        "| model | mode | total (ours) | total (paper) | trained (ours) | trained (paper) "
        "| added (ours) | PE (paper) | increase (ours) | increase (paper) | match |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["table1"]:
        o, p = r["ours"] or {}, r["paper"] or {}
        match = {True: "yes", False: "**no**", None: "–"}[r["match"]]
        out.append(
            f"| {label(r['model'])} | {label(r['mode'])} "
            f"| {_fmt_int(o.get('total'))} | {_fmt_int(p.get('total'))} "
            f"| {_fmt_int(o.get('trained'))} | {_fmt_int(p.get('trained'))} "
            f"| {_fmt_int(o.get(PE))} | {_fmt_int(p.get(PE))} "
            f"| {_fmt_pct(o.get('increase_pct'))} | {_fmt_pct(p.get('increase_pct'))} | {match} |"
        )
    out += [
        "",
        "## Table II: best validation metrics",
        "",
        f"Pass/fail: |our mean AUROC - paper's AUROC| <= {tol:g}, judged only for runs "
        "trained with the paper's settings (batch 16, fp32, no overrides); runs with other "
        "settings are shown beside the paper's numbers and marked *not judged*. With several "
        "seeds: mean ± standard deviation over n seeds.",
        "",
        "| dataset | model | mode | settings | n | AUROC | paper | diff | accuracy | paper | F1 "
        "| paper | best update | paper | pass |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["table2"]:
        verdict = {True: "pass", False: "**FAIL**", None: "–"}[r["pass"]]
        if r["pass"] is None and r["roc_auc"].get("undefined"):
            verdict = UNDEFINED  # an undefined AUROC is neither passed nor failed
        if r["n"] and not r.get("judged"):
            verdict = "*not judged*"
        bu = r["best_update"]
        out.append(
            f"| {label(r['dataset'])} | {label(r['model'])} "
            f"| {label(r['mode'])} | {r.get('settings') or '–'} | {r['n']} "
            f"| {_fmt_stat(r['roc_auc'])} | {_fmt(r['roc_auc']['paper'])} "
            f"| {_fmt_diff(r['roc_auc']['diff'])} "
            f"| {_fmt_stat(r['accuracy'])} | {_fmt(r['accuracy']['paper'])} "
            f"| {_fmt_stat(r['binary_f1'])} | {_fmt(r['binary_f1']['paper'])} "
            f"| {_fmt_stat(bu, 0)} | {_fmt_int(bu['paper'])} | {verdict} |"
        )
    if report["test"]:
        out += [
            "",
            "## Test splits (best checkpoint)",
            "",
            "| dataset | model | mode | settings | split | n | AUROC | accuracy | F1 |",
            "|---|---|---|---|---|---:|---:|---:|---:|",
        ]
        for r in report["test"]:
            out.append(
                f"| {label(r['dataset'])} | {label(r['model'])} "
                f"| {label(r['mode'])} | {r['settings']} | {r['split']} | {r['roc_auc']['n']} "
                f"| {_fmt_stat(r['roc_auc'])} | {_fmt_stat(r['accuracy'])} "
                f"| {_fmt_stat(r['binary_f1'])} |"
            )
    out += _study_section(report)
    out += _evidence_section(report)
    out += [
        "",
        "## Runs",
        "",
        "| dataset | model | mode | settings | seed | updates | ups | peak memory (MB) | wall time |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["runs"]:
        out.append(
            f"| {label(r['dataset'])} | {label(r['model'])} "
            f"| {label(r['mode'])} | {r['settings']} | {r['seed']} | {_fmt_int(r['last_update'])} "
            f"| {_fmt(r['ups'], 2)} | {_fmt(r['peak_memory_mb'], 0)} "
            f"| {readable(r['wall_time_s'], missing='–')} |"
        )
    if report["excluded"]:
        out += ["", "Not reported (not finished):", ""]
        for r in report["excluded"]:
            out.append(
                f"- {r['dataset']}/{r['model']}/{label(r['mode'])}/seed{r['seed']}: "
                f"{r['status']} ({r['dir']})"
            )
    if report["plots"]:
        out += ["", "## Curves", ""]
        for p in report["plots"]:
            name = Path(p["file"]).name
            out.append(f"![{name}](plots/{name})")
    return "\n".join(out) + "\n"
