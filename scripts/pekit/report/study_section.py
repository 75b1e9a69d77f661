"""The parameter-efficiency study: per dataset and model, every variant's trained parameters
against its best validation AUROC, the Pareto front of the two, and its plot.

A variant is on the front when no other variant trains at most as many parameters and reaches
at least its mean AUROC, one of the two strictly: the cheapest way to each AUROC level.
"""

from __future__ import annotations

from pathlib import Path

from ..facts.vocabulary import label, sized_label, variant_order
from .plots import mode_style, pyplot, save_figure
from .tables import _groups, _metric_stats, _stats


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


def _auroc(metrics):
    """Stats of the AUROCs in `metrics` (dicts), an undefined one (one-class split) not counted."""
    return _metric_stats("roc_auc", [m["roc_auc"] for m in metrics if "roc_auc" in m])


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
            "val_auroc": _auroc([r["log"].get("best") or {} for r in group]),
            "test_auroc": {s: _auroc([r["test"].get(s, {}) for r in group]) for s in splits},
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


def _draw_variant(ax, row):
    """One variant's point (± std) in its mode's colour and marker, named in the legend;
    returns the point as drawn and its legend handle."""
    style = mode_style(row["variant"])
    bars = ax.errorbar(
        [row["trained"]],
        [row["val_auroc"]["mean"]],
        yerr=[row["val_auroc"]["std"] or 0.0],
        fmt=style["marker"],
        color=style["color"],
        capsize=3,
        label=sized_label(row["variant"]),
    )
    x, y = bars.lines[0].get_xydata()[0]
    point = {
        "variant": row["variant"],
        "x": float(x),
        "y": float(y),
        "color": bars.lines[0].get_color(),
        "pareto": row["pareto"],
    }
    return point, bars


def _draw_front(ax, rows):
    """The Pareto front, joined in order of trained parameters; returns its line."""
    front = sorted((r["trained"], r["val_auroc"]["mean"]) for r in rows if r["pareto"])
    (line,) = ax.plot(
        [x for x, _ in front],
        [y for _, y in front],
        "-s",
        color="black",  # every colour of the palette names a mode
        alpha=0.6,
        markerfacecolor="none",
        markersize=12,
        label="Pareto front",
    )
    return line


def _name_undefined(ax, rows):
    """A legend entry, no point, for each variant whose AUROC is undefined (one-class split):
    the plot says why the variant is missing. Returns their legend handles."""
    handles = []
    for r in rows:
        if r["val_auroc"]["mean"] is None and r["val_auroc"].get("undefined"):
            style = mode_style(r["variant"])
            name = f"{sized_label(r['variant'])}: AUROC n/a"
            handles += ax.plot([], [], style["marker"], color=style["color"], label=name)
    return handles


def _label_toward_centre(ax, point):
    """Name `point` beside it on the side facing the axes' centre, so no label runs past the
    axes (the view limits must be final: the side is read in axes coordinates)."""
    fx, fy = ax.transAxes.inverted().transform(ax.transData.transform((point["x"], point["y"])))
    right, top = fx > 0.5, fy > 0.5
    return ax.annotate(
        sized_label(point["variant"]),
        (point["x"], point["y"]),
        textcoords="offset points",
        xytext=(-6 if right else 6, -6 if top else 6),
        ha="right" if right else "left",
        va="top" if top else "bottom",
        fontsize="small",
        color=point["color"],
    )


def _boxes(fig, ax, texts):
    """Each drawn text's extent in axes coordinates ([0, 1] is inside), as the PNG has it."""
    renderer = fig.canvas.get_renderer()
    to_axes = ax.transAxes.inverted()
    out = []
    for text in texts:
        (x0, y0), (x1, y1) = to_axes.transform(text.get_window_extent(renderer).get_points())
        out.append({"text": text.get_text(), "box": [round(float(v), 4) for v in (x0, y0, x1, y1)]})
    return out


def _drawn(rows):
    """The rows a study plot shows: trained variants with a validation AUROC."""
    return [r for r in rows if r["trained"] and r["val_auroc"]["mean"] is not None]


def study_files(study):
    """The names of the PNGs render_study_plots(study) draws."""
    return [f"{d}_{m}_study.png" for (d, m), rows in sorted(study.items()) if _drawn(rows)]


def render_study_plots(study, out_dir):
    """One PNG per (dataset, model): mean validation AUROC (± std) against trained parameters
    on a log scale, each variant in its mode's colour (mode_style, as in the curves), the
    Pareto front joined. Returns [{file, dataset, model, kind, points, front, labels, legend}],
    the points and texts as drawn; a variant whose AUROC is undefined is named "n/a" in the
    legend."""
    plt = pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (dataset, model), all_rows in sorted(study.items()):
        rows = _drawn(all_rows)
        if not rows:
            continue
        fig, ax = plt.subplots(figsize=(9, 4.8))
        points, handles = zip(*(_draw_variant(ax, r) for r in rows))
        front_line = _draw_front(ax, rows)
        # In the legend: the variants in the modes' order, those without an AUROC, the front.
        handles = list(handles) + _name_undefined(ax, all_rows) + [front_line]
        ax.set_xscale("log")
        # Room around the outermost points for their labels, then the limits are final.
        ax.margins(x=0.15, y=0.2)
        ax.autoscale_view()
        texts = [_label_toward_centre(ax, p) for p in points]
        ax.set_xlabel("trained parameters (log scale)")
        ax.set_ylabel("best validation AUROC")
        ax.set_title(f"{label(dataset)} / {label(model)}: AUROC against trained parameters")
        ax.grid(True, which="both", alpha=0.3)
        # Beside the axes: a legend inside would cover points wherever the front runs.
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small")
        path = out_dir / f"{dataset}_{model}_study.png"
        save_figure(fig, path)
        written.append(
            {
                "file": str(path),
                "dataset": dataset,
                "model": model,
                "kind": "study",
                # Read back from the figure's artists: what the PNG shows.
                "points": list(points),
                "front": [{"x": float(x), "y": float(y)} for x, y in front_line.get_xydata()],
                "labels": _boxes(fig, ax, texts),
                "legend": [t.get_text() for t in ax.get_legend().get_texts()],
            }
        )
    return written
