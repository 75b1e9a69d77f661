"""report.md: the report's data as Markdown tables."""

from __future__ import annotations

import math
from pathlib import Path

from ..core.durations import readable
from ..facts.vocabulary import PE, label, sized_label


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
