"""The paper's tables with our numbers beside them, and curves instead of log lines.

Reads every run folder under <results>/runs (see pekit.run), keeps the finished ones, and writes
<results>/report.md, <results>/report.json and PNG plots under <results>/plots/.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from . import logs, models
from .core import argtypes
from .core.atomic import output_file, write_json, write_text
from .core.errors import PekitError, UsageError
from .vocabulary import DATASETS, MODELS, MODES, label

DEFAULT_TOLERANCE = 0.02
METRICS = ("roc_auc", "accuracy", "binary_f1")
METRIC_LABELS = {"roc_auc": "AUROC", "accuracy": "Accuracy", "binary_f1": "F1"}


def paper_reference():
    return models.load_paper_reference()


def table2_reference(reference=None):
    reference = paper_reference() if reference is None else reference
    rows = reference.get("table2", {}).get("rows", [])
    return {(r["dataset"], r["model"], r["mode"]): r for r in rows}


# --- collecting runs ------------------------------------------------------------------------


def collect_runs(results):
    """(included, excluded): parsed finished runs, and the others with their status (a run of
    a dataset, model or mode the kit does not know is excluded, with why)."""
    from .run import record as run_record

    included, excluded = [], []
    folders = sorted({p.parent for p in Path(results).glob("runs/*/*/*/seed*/*.json")})
    for folder in folders:
        path = run_record.record_path(folder)
        if path is None:
            continue
        record = run_record.load(folder)
        run = record.run
        entry = dict(run, dir=str(folder), status=record.status)
        unknown = [
            f"{key} '{run[key]}'"
            for key, known in (("dataset", DATASETS), ("model", MODELS), ("mode", MODES))
            if run[key] not in known
        ]
        if unknown:
            excluded.append(dict(entry, status=f"unknown {', '.join(unknown)}"))
            continue
        if record.status != run_record.FINISHED:
            excluded.append(entry)
            continue
        entry["log"] = logs.parse_file(folder / record.log)
        entry["test"] = record.test_metrics()
        included.append(entry)
    return included, excluded


def _stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.mean(values), "std": std, "n": len(values)}


def _groups(runs, keys):
    out = {}
    for run in runs:
        out.setdefault(tuple(run[k] for k in keys), []).append(run)
    return out


def _mode_sort(key):
    *rest, mode = key
    return tuple(rest) + (list(MODES).index(mode) if mode in MODES else 99,)


# --- Table I --------------------------------------------------------------------------------


def table1(runs, reference=None):
    """Total / trained / PE parameters and % increase per model x mode, ours and the paper's."""
    reference = paper_reference() if reference is None else reference
    t1 = reference.get("table1", {})
    paper_rows = {(r["model"], r["mode"]): r for r in t1.get("rows", [])}
    adapters_only = t1.get("adapters_only", {})
    ours = {}
    for run in runs:
        params = run["log"].get("parameters")
        if params:
            ours.setdefault((run["model"], run["mode"]), params)
    rows = []
    keys = sorted(set(paper_rows) | set(ours), key=_mode_sort)
    for model, mode in keys:
        row = {"model": model, "mode": mode}
        for who, table, pe_of in (
            ("ours", ours, _our_pe(ours, model)),
            ("paper", paper_rows, adapters_only.get(model)),
        ):
            counts = table.get((model, mode))
            base = (table.get((model, "fc")) or table.get((model, "full")) or {}).get("total")
            pe = (pe_of if mode == "pe" else 0) if counts else None
            row[who] = (
                None
                if counts is None
                else {
                    "total": counts["total"],
                    "trained": counts["trained"],
                    "pe": pe,
                    "increase_pct": (100.0 * pe / base) if (pe is not None and base) else None,
                }
            )
        row["match"] = (
            None
            if not (row["ours"] and row["paper"])
            else row["ours"]["total"] == row["paper"]["total"]
            and row["ours"]["trained"] == row["paper"]["trained"]
        )
        rows.append(row)
    return rows


def _our_pe(ours, model):
    pe = ours.get((model, "pe"))
    base = ours.get((model, "fc")) or ours.get((model, "full"))
    if pe and base:
        return pe["total"] - base["total"]
    return None


# --- Table II and test metrics --------------------------------------------------------------


def table2(runs, tolerance=DEFAULT_TOLERANCE, reference=None):
    """Best validation metrics per dataset x model x mode (mean, std, n over seeds) vs the paper."""
    ref = table2_reference(reference)
    rows = []
    groups = _groups(runs, ("dataset", "model", "mode"))
    for key in sorted(set(groups) | set(ref), key=_mode_sort):
        group = groups.get(key, [])
        row = {
            "dataset": key[0],
            "model": key[1],
            "mode": key[2],
            "n": len(group),
            "seeds": sorted(r["seed"] for r in group),
        }
        bests = [r["log"].get("best") or {} for r in group]
        paper = ref.get(key)
        for metric in METRICS:
            stat = _stats([b.get(metric) for b in bests])
            stat["paper"] = paper.get(metric) if paper else None
            stat["diff"] = (
                stat["mean"] - stat["paper"]
                if stat["mean"] is not None and stat["paper"] is not None
                else None
            )
            row[metric] = stat
        row["best_update"] = _stats([b.get("update") for b in bests])
        row["best_update"]["paper"] = paper.get("best_update") if paper else None
        diff = row["roc_auc"]["diff"]
        row["pass"] = None if diff is None else abs(diff) <= tolerance + 1e-12
        rows.append(row)
    return rows


def test_table(runs):
    rows = []
    groups = _groups(runs, ("dataset", "model", "mode"))
    for key in sorted(groups, key=_mode_sort):
        splits = sorted({s for r in groups[key] for s in r["test"]})
        for split in splits:
            row = {"dataset": key[0], "model": key[1], "mode": key[2], "split": split}
            for metric in METRICS:
                row[metric] = _stats([r["test"].get(split, {}).get(metric) for r in groups[key]])
            rows.append(row)
    return rows


# --- plots ----------------------------------------------------------------------------------


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
        for mode in MODES:
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


def render_plots(specs, out_dir):
    """Draw the specs as PNGs; returns [{file, dataset, model, kind, lines: [(label, style)]}]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
            fig.tight_layout()
            path = out_dir / f"{dataset}_{model}_{kind}.png"
            tmp = path.with_name(f".{path.name}.tmp.png")
            fig.savefig(str(tmp), dpi=110)
            plt.close(fig)
            tmp.replace(path)
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


# --- rendering --------------------------------------------------------------------------------


def _fmt(value, digits=4):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _fmt_stat(stat, digits=4):
    if stat["mean"] is None:
        return "–"
    if stat["n"] > 1:
        return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"
    return f"{stat['mean']:.{digits}f}"


def _fmt_diff(value):
    return "–" if value is None else f"{value:+.4f}"


def _fmt_int(value):
    return "–" if value is None else f"{value:,}"


def _fmt_pct(value):
    return "–" if value is None else f"{value:.2f}%"


def render_markdown(report):
    tol = report["tolerance"]
    out = ["# Results against the paper", ""]
    out += [
        "## Table I: parameters",
        "",
        "| model | mode | total (ours) | total (paper) | trained (ours) | trained (paper) "
        "| PE (ours) | PE (paper) | increase (ours) | increase (paper) | match |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["table1"]:
        o, p = r["ours"] or {}, r["paper"] or {}
        match = {True: "yes", False: "**no**", None: "–"}[r["match"]]
        out.append(
            f"| {label(r['model'])} | {label(r['mode'])} "
            f"| {_fmt_int(o.get('total'))} | {_fmt_int(p.get('total'))} "
            f"| {_fmt_int(o.get('trained'))} | {_fmt_int(p.get('trained'))} "
            f"| {_fmt_int(o.get('pe'))} | {_fmt_int(p.get('pe'))} "
            f"| {_fmt_pct(o.get('increase_pct'))} | {_fmt_pct(p.get('increase_pct'))} | {match} |"
        )
    out += [
        "",
        "## Table II: best validation metrics",
        "",
        f"Pass/fail: |our mean AUROC - paper's AUROC| <= {tol:g}. With several seeds: "
        "mean ± standard deviation over n seeds.",
        "",
        "| dataset | model | mode | n | AUROC | paper | diff | accuracy | paper | F1 | paper "
        "| best update | paper | pass |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["table2"]:
        verdict = {True: "pass", False: "**FAIL**", None: "–"}[r["pass"]]
        bu = r["best_update"]
        out.append(
            f"| {label(r['dataset'])} | {label(r['model'])} "
            f"| {label(r['mode'])} | {r['n']} "
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
            "| dataset | model | mode | split | n | AUROC | accuracy | F1 |",
            "|---|---|---|---|---:|---:|---:|---:|",
        ]
        for r in report["test"]:
            out.append(
                f"| {label(r['dataset'])} | {label(r['model'])} "
                f"| {label(r['mode'])} | {r['split']} | {r['roc_auc']['n']} "
                f"| {_fmt_stat(r['roc_auc'])} | {_fmt_stat(r['accuracy'])} "
                f"| {_fmt_stat(r['binary_f1'])} |"
            )
    out += [
        "",
        "## Runs",
        "",
        "| dataset | model | mode | seed | updates | ups | peak memory (MB) | wall time (h) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["runs"]:
        wall = r["wall_time_s"]
        out.append(
            f"| {label(r['dataset'])} | {label(r['model'])} "
            f"| {label(r['mode'])} | {r['seed']} | {_fmt_int(r['last_update'])} "
            f"| {_fmt(r['ups'], 2)} | {_fmt(r['peak_memory_mb'], 0)} "
            f"| {_fmt(wall / 3600 if wall else None, 2)} |"
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


def build_report(results, tolerance=DEFAULT_TOLERANCE, paper_logs=None, plots=True):
    """Everything the report shows, as data (plots are drawn when `plots`)."""
    runs, excluded = collect_runs(results)
    reference = paper_reference()
    parsed_paper = {key: logs.parse_file(path) for key, path in (paper_logs or {}).items()}
    report = {
        "tolerance": tolerance,
        "table1": table1(runs, reference),
        "table2": table2(runs, tolerance, reference),
        "test": test_table(runs),
        "runs": [
            {
                "dataset": r["dataset"],
                "model": r["model"],
                "mode": r["mode"],
                "seed": r["seed"],
                "dir": r["dir"],
                "parameters": r["log"]["parameters"],
                "best": r["log"]["best"],
                "last_update": r["log"]["last_update"],
                "ups": r["log"]["ups"],
                "peak_memory_mb": r["log"]["peak_memory_mb"],
                "wall_time_s": r["log"]["wall_time_s"],
                "test": r["test"],
            }
            for r in runs
        ],
        "excluded": excluded,
        "paper_logs": {f"{d}:{m}": str(p) for (d, m), p in (paper_logs or {}).items()},
        "plots": [],
    }
    specs = plot_specs(runs, parsed_paper)
    report["curves"] = [
        {
            "dataset": d,
            "model": m,
            "panel": panel,
            "lines": [{k: v for k, v in ln.items() if k not in ("x", "y")} for ln in lines],
        }
        for (d, m), spec in sorted(specs.items())
        for panel, lines in spec.items()
    ]
    if plots:
        report["plots"] = render_plots(specs, Path(results) / "plots")
    return report


def write_report(results, tolerance=DEFAULT_TOLERANCE, paper_logs=None):
    """Write report.md and report.json into `results`; returns their paths and the report."""
    results = Path(results)
    if not (results / "runs").is_dir():
        raise PekitError(f"{results / 'runs'}: no runs here; run `pekit run` first")
    md, js, plots = results / "report.md", results / "report.json", results / "plots"
    for path in (md, js):
        output_file(path)
    if plots.exists() and not plots.is_dir():
        raise PekitError(f"{plots}: exists and is not a folder; move it away, nothing written")
    report = build_report(results, tolerance=tolerance, paper_logs=paper_logs)
    write_text(md, render_markdown(report))
    write_json(js, report)
    return [md, js] + [Path(p["file"]) for p in report["plots"]], report


def parse_paper_log_args(items):
    """['hmd:fc=path', ...] -> {('hmd', 'fc'): 'path'}."""
    out = {}
    for item in items or []:
        key, sep, path = item.partition("=")
        dataset, colon, mode = key.partition(":")
        if not (sep and colon and path) or dataset not in DATASETS or mode not in MODES:
            raise UsageError(
                f"--paper-log expects DATASET:MODE=LOG with DATASET in hmd, mmh and MODE in "
                f"fc, pe, full; got '{item}'"
            )
        if not Path(path).is_file():
            raise PekitError(f"paper log {path}: no such file")
        out[(dataset, mode)] = path
    return out


def register(subparsers):
    p = subparsers.add_parser(
        "report",
        help="write results/report.md, report.json and plots from the runs",
        description="Tables I and II against the paper, test-split metrics and training curves "
        "from every finished run under RESULTS/runs.",
    )
    p.add_argument("--results", default="results", help="results folder (default: results)")
    add_report_options(p)
    p.set_defaults(func=_main)


def add_report_options(parser):
    """The report's options, shared by `pekit report` and `pekit reproduce`."""
    parser.add_argument(
        "--tolerance",
        type=argtypes.nonnegative_float,
        default=DEFAULT_TOLERANCE,
        help=f"AUROC pass/fail tolerance (default: {DEFAULT_TOLERANCE})",
    )
    parser.add_argument(
        "--paper-log",
        action="append",
        default=[],
        metavar="DATASET:MODE=LOG",
        help="the paper's MMF log for a run, drawn dashed in the plots (repeatable)",
    )


def write_report_from_args(args, echo):
    """Write the report with the options in `args`, telling `echo` what was written and which
    runs were left out for being of no dataset, model or mode the kit knows."""
    paths, report = write_report(args.results, args.tolerance, parse_paper_log_args(args.paper_log))
    for r in report["excluded"]:
        if str(r["status"]).startswith("unknown "):
            echo(f"warning: {r['dir']}: left out of the report: {r['status']}")
    for path in paths:
        echo(f"wrote {path}")
    return paths


def _main(args):
    import sys

    write_report_from_args(args, lambda text: print(text, file=sys.stderr))
    return 0
