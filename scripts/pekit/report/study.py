"""The parameter-efficiency study: per dataset and model, every variant's trained parameters
against its best validation AUROC, the Pareto front of the two, and its plot.

A variant is on the front when no other variant trains at most as many parameters and reaches
at least its mean AUROC, one of the two strictly: the cheapest way to each AUROC level.
"""

from __future__ import annotations

from pathlib import Path

from ..vocabulary import label, sized_label, variant_order
from .plots import pyplot, save_figure
from .tables import _groups, _stats


def pareto(points):
    """The indices of `points` ((cost, value) pairs; None values excluded) on the front that
    minimises cost and maximises value."""
    front = []
    for i, (cost, value) in enumerate(points):
        if cost is None or value is None:
            continue
        dominated = any(
            c is not None and v is not None and c <= cost and v >= value and (c < cost or v > value)
            for j, (c, v) in enumerate(points)
            if j != i
        )
        if not dominated:
            front.append(i)
    return front


def study_rows(runs):
    """{(dataset, model): [row per variant]}: trained and total parameters, % trained, best
    validation AUROC (mean, std, n over seeds), test AUROC per split, updates/s, peak memory,
    and whether the variant is on the Pareto front."""
    out = {}
    groups = _groups(runs, ("dataset", "model", "mode"))
    for (dataset, model, variant), group in groups.items():
        params = next((r["log"]["parameters"] for r in group if r["log"].get("parameters")), None)
        splits = sorted({s for r in group for s in r["test"]})
        row = {
            "variant": variant,
            "total": params["total"] if params else None,
            "trained": params["trained"] if params else None,
            "trained_pct": 100.0 * params["trained"] / params["total"] if params else None,
            "val_auroc": _stats([(r["log"].get("best") or {}).get("roc_auc") for r in group]),
            "test_auroc": {
                s: _stats([r["test"].get(s, {}).get("roc_auc") for r in group]) for s in splits
            },
            "updates_per_s": _stats([r["log"].get("ups") for r in group]),
            "peak_memory_mb": _stats([r["log"].get("peak_memory_mb") for r in group]),
        }
        out.setdefault((dataset, model), []).append(row)
    for rows in out.values():
        rows.sort(key=lambda r: variant_order(r["variant"]))
        front = set(pareto([(r["trained"], r["val_auroc"]["mean"]) for r in rows]))
        for i, row in enumerate(rows):
            row["pareto"] = i in front
    return out


def render_study_plots(study, out_dir):
    """One PNG per (dataset, model): mean validation AUROC (± std) against trained parameters
    on a log scale, the Pareto front joined. Returns [{file, dataset, model, kind, points}], the
    points as drawn."""
    plt = pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (dataset, model), rows in sorted(study.items()):
        rows = [r for r in rows if r["trained"] and r["val_auroc"]["mean"] is not None]
        if not rows:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.8))
        xs = [r["trained"] for r in rows]
        ys = [r["val_auroc"]["mean"] for r in rows]
        errs = [r["val_auroc"]["std"] or 0.0 for r in rows]
        bars = ax.errorbar(
            xs, ys, yerr=errs, fmt="o", color="tab:blue", capsize=3, label="variants"
        )
        front = sorted((r["trained"], r["val_auroc"]["mean"]) for r in rows if r["pareto"])
        (front_line,) = ax.plot(
            [x for x, _ in front],
            [y for _, y in front],
            "-s",
            color="tab:red",
            markerfacecolor="none",
            markersize=10,
            label="Pareto front",
        )
        for r, x, y in zip(rows, xs, ys):
            ax.annotate(
                sized_label(r["variant"]), (x, y), textcoords="offset points", xytext=(5, 5)
            )
        ax.set_xscale("log")
        ax.set_xlabel("trained parameters (log scale)")
        ax.set_ylabel("best validation AUROC")
        ax.set_title(f"{label(dataset)} / {label(model)}: AUROC against trained parameters")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right")
        path = out_dir / f"{dataset}_{model}_study.png"
        save_figure(fig, path)
        written.append(
            {
                "file": str(path),
                "dataset": dataset,
                "model": model,
                "kind": "study",
                # Read back from the figure's artists: what the PNG shows.
                "points": [
                    {"variant": r["variant"], "x": float(x), "y": float(y), "pareto": r["pareto"]}
                    for r, (x, y) in zip(rows, bars.lines[0].get_xydata())
                ],
                "front": [{"x": float(x), "y": float(y)} for x, y in front_line.get_xydata()],
            }
        )
    return written
