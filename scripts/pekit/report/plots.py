"""The curves: validation AUROC and losses against updates, ours beside the paper's logs."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from ..core.atomic import atomic_open
from ..core.errors import UsageError
from ..facts.vocabulary import (
    MODES,
    PAPER_MODEL,
    PAPER_MODES,
    label,
    mode_size,
    parse_variant,
    variant_order,
)
from .tables import _groups, defined

# One colour per mode, the same in every plot (curves and the study), so a mode is found by
# its colour alone and our curve sits beside the paper's in the same colour (ours solid, the
# paper's dashed). matplotlib's tab10, distinct in print and for the common colour
# blindnesses; the paper's modes take its first three, as in the paper's own figures' order.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
MODE_COLORS = dict(zip(PAPER_MODES + tuple(m for m in MODES if m not in PAPER_MODES), PALETTE))
UNKNOWN_COLOR = "#7f7f7f"  # a variant the vocabulary does not know: grey, never a mode's
# Sizes of one mode: its colour, a shade darker per doubling of the size (lighter per halving)
# and a marker per doubling, so pe-red20 is told from pe at a glance and in greyscale.
SIZE_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LINESTYLES = {"ours": "-", "paper": "--"}


def _shade(color, steps):
    """`color` ('#rrggbb') mixed toward black (steps > 0) or white (steps < 0), 15% a step,
    at most 60% so the mode's hue stays recognisable."""
    mix = min(abs(steps) * 0.15, 0.6)
    target = 0 if steps > 0 else 255
    rgb = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (target - c) * mix):02x}" for c in rgb)


def mode_style(variant):
    """{color, marker} of a mode or sized variant (pe, pe-red20, lora-r4): the same wherever
    the variant is drawn, whatever else is drawn beside it."""
    try:
        mode, size = parse_variant(variant)
    except UsageError:
        return {"color": UNKNOWN_COLOR, "marker": "o"}
    if size is None:
        return {"color": MODE_COLORS[mode], "marker": SIZE_MARKERS[0]}
    doublings = math.log2(size / mode_size(mode))  # never 0: the default size is plain `mode`
    # Whole doublings; a size within a factor 1.4 of the default is still half a step apart.
    steps = round(doublings) or math.copysign(0.5, doublings)
    marker = math.ceil(abs(steps)) * (1 if steps > 0 else -1)
    return {
        "color": _shade(MODE_COLORS[mode], steps),
        "marker": SIZE_MARKERS[marker % len(SIZE_MARKERS)],
    }


def _mean_curve(curves, field):
    """Average `field` over seeds at each update seen by every seed that logged it, leaving out
    undefined values (AUROC of a one-class split); also returns how many were left out."""
    by_update, undefined = {}, 0
    for curve in curves:
        for point in curve:
            if point.get(field) is None:
                continue
            value = defined(field, point[field])
            if value is None:
                undefined += 1
                continue
            by_update.setdefault(point["update"], []).append(value)
    xs = sorted(by_update)
    return xs, [statistics.mean(by_update[x]) for x in xs], undefined


def plot_specs(runs, paper_logs=None):
    """What each plot draws: {(dataset, model): {"auroc": [...lines], "loss": {...}}}.

    A line is {mode, source ('ours'|'paper'), label, style ('-' ours, '--' paper), color,
    marker, x, y}: the colour is the mode's (mode_style), the same for ours and the paper's. A
    curve whose every value is undefined is a line without points labelled "n/a", so the
    legend says why the mode has no curve.
    """
    paper_logs = paper_logs or {}
    specs = {}
    groups = _groups(runs, ("dataset", "model", "mode"))
    datasets_models = {(d, m) for d, m, _ in groups}
    datasets_models |= {(d, PAPER_MODEL) for d, _ in paper_logs}  # the paper's logs
    for dataset, model in sorted(datasets_models):
        spec = {"auroc": [], "train_loss": [], "val_loss": []}
        ours = {m for d, mo, m in groups if (d, mo) == (dataset, model)}
        for mode in sorted(ours | {m for d, m in paper_logs if d == dataset}, key=variant_order):
            sources = []
            group = groups.get((dataset, model, mode))
            if group:
                sources.append(("ours", [r["log"] for r in group]))
            if model == PAPER_MODEL and (dataset, mode) in paper_logs:
                sources.append(("paper", [paper_logs[(dataset, mode)]]))
            for source, parsed in sources:
                for panel, curve_key, field in (
                    ("auroc", "val", "roc_auc"),
                    ("train_loss", "train", "loss"),
                    ("val_loss", "val", "loss"),
                ):
                    line = _line(mode, source, _mean_curve([p[curve_key] for p in parsed], field))
                    if line:
                        spec[panel].append(line)
        specs[(dataset, model)] = spec
    return specs


def _line(mode, source, curve):
    """The spec of one curve (see plot_specs), or None when nothing was logged."""
    xs, ys, undefined = curve
    if not xs and not undefined:
        return None
    name = label(mode) + (" (paper)" if source == "paper" else "")
    line = {"mode": mode, "source": source, "label": name if xs else f"{name}: n/a"}
    line.update(style=LINESTYLES[source], **mode_style(mode))
    line.update(x=xs, y=ys)
    return line


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path):
    """Lay `fig` out, write it to `path` as a PNG in one step, and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def integer_updates(ax):
    """Ticks at whole updates only: a smoke run of 4 updates would get 0.5-update ticks."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _visible_ticks(axis, low, high):
    """The tick values of `axis` that fall within [low, high], as drawn."""
    lo, hi = sorted((low, high))
    return [float(t) for t in axis.get_majorticklocs() if lo <= t <= hi]


def _draw_panel(ax, panel, ylabel, lines):
    """Draw one panel's lines on `ax`; returns the panel as drawn (see render_plots)."""
    for line in lines:
        ax.plot(
            line["x"],
            line["y"],
            linestyle=line["style"],
            color=line["color"],
            label=line["label"],
            # Training loss is logged densely: markers would hide the line.
            marker=line["marker"] if panel != "train_loss" else None,
            markersize=4,
            # The paper's markers hollow: told from ours where the two curves meet.
            markerfacecolor="none" if line["source"] == "paper" else line["color"],
        )
    integer_updates(ax)
    ax.set_xlabel("updates")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if lines:
        ax.legend(fontsize="small")  # up to a dozen curves: a smaller legend hides fewer
    return {
        "panel": panel,
        "lines": [(ln.get_label(), ln.get_linestyle()) for ln in ax.get_lines()],
        "colors": [ln.get_color() for ln in ax.get_lines()],
        "xticks": _visible_ticks(ax.xaxis, *ax.get_xlim()),
    }


PANELS = {
    "val_auroc": [("auroc", "validation AUROC")],
    "loss": [("train_loss", "train loss"), ("val_loss", "validation loss")],
}


def plot_files(specs):
    """The names of the PNGs render_plots(specs) draws."""
    return [
        f"{dataset}_{model}_{kind}.png"
        for (dataset, model), spec in sorted(specs.items())
        for kind, parts in PANELS.items()
        if any(spec[p] for p, _ in parts)
    ]


def render_plots(specs, out_dir):
    """Draw the specs as PNGs; returns [{file, dataset, model, kind, panels}], each panel as
    drawn: {panel, lines: [(label, linestyle)], colors: [each line's colour], xticks}."""
    plt = pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (dataset, model), spec in sorted(specs.items()):
        for kind, parts in PANELS.items():
            if not any(spec[p] for p, _ in parts):
                continue
            fig, axes = plt.subplots(1, len(parts), figsize=(6.5 * len(parts), 4.5), squeeze=False)
            drawn = [
                _draw_panel(ax, panel, ylabel, spec[panel])
                for ax, (panel, ylabel) in zip(axes[0], parts)
            ]
            fig.suptitle(f"{label(dataset)} / {label(model)}")
            path = out_dir / f"{dataset}_{model}_{kind}.png"
            save_figure(fig, path)
            written.append(
                {
                    "file": str(path),
                    "dataset": dataset,
                    "model": model,
                    "kind": kind,
                    "panels": drawn,
                }
            )
    return written
