"""The curves: validation AUROC and losses against updates, ours beside the paper's logs."""

from __future__ import annotations

import statistics
from pathlib import Path

from ..core.atomic import atomic_open
from ..vocabulary import label, variant_order
from .tables import _groups


def _mean_curve(curves, field):
    """Average `field` over seeds at each update seen by every seed that logged it."""
    by_update = {}
    for curve in curves:
        for point in curve:
            if point.get(field) is not None:
                by_update.setdefault(point["update"], []).append(point[field])
    xs = sorted(by_update)
    return xs, [statistics.mean(by_update[x]) for x in xs]


def plot_specs(runs, paper_logs=None):
    """What each plot draws: {(dataset, model): {"auroc": [...lines], "loss": {...}}}.

    A line is {mode, source ('ours'|'paper'), label, style ('-' ours, '--' paper), x, y}.
    """
    paper_logs = paper_logs or {}
    specs = {}
    groups = _groups(runs, ("dataset", "model", "mode"))
    datasets_models = {(d, m) for d, m, _ in groups}
    datasets_models |= {(d, "visual_bert") for d, _ in paper_logs}
    for dataset, model in sorted(datasets_models):
        spec = {"auroc": [], "train_loss": [], "val_loss": []}
        ours = {m for d, mo, m in groups if (d, mo) == (dataset, model)}
        for mode in sorted(ours | {m for d, m in paper_logs if d == dataset}, key=variant_order):
            sources = []
            group = groups.get((dataset, model, mode))
            if group:
                sources.append(("ours", [r["log"] for r in group]))
            if model == "visual_bert" and (dataset, mode) in paper_logs:
                sources.append(("paper", [paper_logs[(dataset, mode)]]))
            for source, parsed in sources:
                line = label(mode) + (" (paper)" if source == "paper" else "")
                style = "--" if source == "paper" else "-"
                for panel, curve_key, field in (
                    ("auroc", "val", "roc_auc"),
                    ("train_loss", "train", "loss"),
                    ("val_loss", "val", "loss"),
                ):
                    xs, ys = _mean_curve([p[curve_key] for p in parsed], field)
                    if xs:
                        spec[panel].append(
                            {
                                "mode": mode,
                                "source": source,
                                "label": line,
                                "style": style,
                                "x": xs,
                                "y": ys,
                            }
                        )
        specs[(dataset, model)] = spec
    return specs


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


def render_plots(specs, out_dir):
    """Draw the specs as PNGs; returns [{file, dataset, model, kind, lines: [(label, style)]}]."""
    plt = pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (dataset, model), spec in sorted(specs.items()):
        title = f"{label(dataset)} / {label(model)}"
        panels = {
            "val_auroc": [("auroc", "validation AUROC")],
            "loss": [("train_loss", "train loss"), ("val_loss", "validation loss")],
        }
        for kind, parts in panels.items():
            if not any(spec[p] for p, _ in parts):
                continue
            fig, axes = plt.subplots(1, len(parts), figsize=(6.5 * len(parts), 4.5), squeeze=False)
            drawn = []
            for ax, (panel, ylabel) in zip(axes[0], parts):
                for line in spec[panel]:
                    ax.plot(
                        line["x"],
                        line["y"],
                        linestyle=line["style"],
                        label=line["label"],
                        marker="o" if panel != "train_loss" else None,
                        markersize=3,
                    )
                ax.set_xlabel("updates")
                ax.set_ylabel(ylabel)
                ax.grid(True, alpha=0.3)
                if spec[panel]:
                    ax.legend()
                drawn.append(
                    {
                        "panel": panel,
                        "lines": [(ln.get_label(), ln.get_linestyle()) for ln in ax.get_lines()],
                    }
                )
            fig.suptitle(title)
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
