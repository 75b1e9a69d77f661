"""Tables I and II and the test-split table, from the finished runs under <results>/runs."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from ..core.errors import UsageError
from ..facts import models
from ..facts.vocabulary import DATASETS, FC, FULL, MODELS, PE, parse_variant, variant_order
from ..run import mmf_log as logs

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
    a dataset, model or mode the kit does not know is excluded, with why). A run's "mode" here
    is its variant (pe, pe-red20, lora-r4): the report tells sizes apart."""
    from ..run import identity
    from ..run import record as run_record

    included, excluded = [], []
    folders = sorted({p.parent for p in Path(results).glob("runs/*/*/*/seed*/*.json")})
    for folder in folders:
        path = run_record.record_path(folder)
        if path is None:
            continue
        record = run_record.load(folder)
        run = record.run
        variant = run.get("variant") or run["mode"]  # records before sizes name the mode only
        entry = dict(run, mode=variant, dir=str(folder), status=record.status)
        unknown = [
            f"{key} '{run[key]}'"
            for key, known in (("dataset", DATASETS), ("model", MODELS))
            if run[key] not in known
        ]
        try:
            if parse_variant(variant)[0] != run["mode"]:
                raise UsageError(variant)
        except UsageError:
            unknown.append(f"mode '{variant}'")
        if unknown:
            excluded.append(dict(entry, status=f"unknown {', '.join(unknown)}"))
            continue
        if record.status != run_record.FINISHED:
            excluded.append(entry)
            continue
        ident = identity.recorded(record)
        entry["settings_label"] = identity.label(ident)
        entry["paper_training"] = identity.paper_training(ident)
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


def defined(metric, value):
    """`value` of `metric`, or None where the metric is undefined and must show as n/a, never
    be judged: AUROC on a split holding one class, which scikit-learn 1.6.1+ returns as nan
    (MMF logs `nan`, the kit's JSON null; older releases raise, and the run fails). A logged
    0.0 is a real score: a small validation split can rank every example wrong."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def _metric_stats(metric, values):
    """_stats of the defined `values` (those a run logged), with how many were undefined."""
    stat = _stats([defined(metric, v) for v in values])
    stat["undefined"] = len(values) - stat["n"]
    return stat


def _groups(runs, keys):
    out = {}
    for run in runs:
        out.setdefault(tuple(run[k] for k in keys), []).append(run)
    return out


def _mode_sort(key):
    *rest, mode = key
    return tuple(rest) + (variant_order(mode),)


def _settings_sort(key):
    """(dataset, model, mode, settings label): by mode as _mode_sort, then by settings."""
    return _mode_sort(key[:3]) + (key[3] or "",)


# --- Table I --------------------------------------------------------------------------------


def table1(runs, reference=None):
    """Total / trained / added parameters and % increase per model x mode (variant), ours and
    the paper's (which has the fc, pe and full rows only)."""
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
        for who, table in (("ours", ours), ("paper", paper_rows)):
            counts = table.get((model, mode))
            # The base's size: a mode that adds nothing.
            base = (table.get((model, FC)) or table.get((model, FULL)) or {}).get("total")
            if counts is None:
                row[who] = None
                continue
            if who == "paper":  # the paper's adapters alone, as its Table I gives them
                added = adapters_only.get(model) if mode == PE else 0
            else:  # what the mode adds to the model: adapters, LoRA's updates
                added = counts["total"] - base if base else None
            row[who] = {
                "total": counts["total"],
                "trained": counts["trained"],
                PE: added,  # Table I's column "PE", named after the mode
                "increase_pct": (100.0 * added / base) if (added is not None and base) else None,
            }
        row["match"] = (
            None
            if not (row["ours"] and row["paper"])
            else row["ours"]["total"] == row["paper"]["total"]
            and row["ours"]["trained"] == row["paper"]["trained"]
        )
        rows.append(row)
    return rows


# --- Table II and test metrics --------------------------------------------------------------


def table2(runs, tolerance=DEFAULT_TOLERANCE, reference=None):
    """Best validation metrics per dataset x model x mode x settings (mean, std, n over seeds)
    against the paper; judged pass/fail only where every run trained as the paper did."""
    ref = table2_reference(reference)
    rows = []
    groups = _groups(runs, ("dataset", "model", "mode", "settings_label"))
    ran = {key[:3] for key in groups}
    keys = list(groups) + [key + (None,) for key in ref if key not in ran]
    for key in sorted(keys, key=_settings_sort):
        group = groups.get(key, [])
        row = {
            "dataset": key[0],
            "model": key[1],
            "mode": key[2],
            "settings": key[3],
            "n": len(group),
            "seeds": sorted(r["seed"] for r in group),
        }
        bests = [r["log"].get("best") or {} for r in group]
        paper = ref.get(key[:3])
        for metric in METRICS:
            stat = _metric_stats(metric, [b[metric] for b in bests if metric in b])
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
        if row["roc_auc"]["undefined"]:  # a mean over fewer seeds than ran is not judged
            row["pass"] = None
        # Runs trained otherwise than the paper (smoke, fast, another batch or precision,
        # overrides) are shown beside the paper's numbers, never judged against them.
        row["judged"] = bool(group) and all(r.get("paper_training") for r in group)
        if not row["judged"]:
            row["pass"] = None
        rows.append(row)
    return rows


def test_table(runs):
    rows = []
    groups = _groups(runs, ("dataset", "model", "mode", "settings_label"))
    for key in sorted(groups, key=_settings_sort):
        splits = sorted({s for r in groups[key] for s in r["test"]})
        for split in splits:
            row = {"dataset": key[0], "model": key[1], "mode": key[2], "settings": key[3]}
            row["split"] = split
            for metric in METRICS:
                scored = [r["test"].get(split, {}) for r in groups[key]]
                row[metric] = _metric_stats(metric, [m[metric] for m in scored if metric in m])
            rows.append(row)
    return rows
