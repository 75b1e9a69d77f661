"""Tables I and II and the test-split table, from the finished runs under <results>/runs."""

from __future__ import annotations

import statistics
from pathlib import Path

from .. import models
from ..vocabulary import DATASETS, MODELS, MODES
from . import logs

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
    from ..run import record as run_record

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
