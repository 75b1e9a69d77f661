"""`pekit study`: the paper's adapter against LoRA and BitFit, and its size swept, on one dataset.

FC, PE at several reductions, LoRA at several ranks, BitFit and Full-FT, with the paper's
settings, through the same runner as `pekit run` (one run, one record per mode, size and seed),
then the report, whose study section tables every variant's trained parameters against its
AUROC and plots the two with the Pareto front. `--dry-run` prints the matrix and its estimated
GPU time, from the paper's own V100 speeds.
"""

from __future__ import annotations

from ..core.errors import PekitError
from ..facts import models
from ..facts.vocabulary import FULL, LORA, MODES, PAPER_MODEL, PAPER_MODES, PE, label

STUDY_MODES = tuple(MODES)  # every mode
STUDY_SIZES = {PE: "2,5,10,20,50", LORA: "2,4,8,16"}
# The paper timed VisualBERT's FC, PE and Full-FT on a V100. LoRA and BitFit, like PE, freeze
# the base but send gradients back through every layer: PE's time stands in for theirs.
TIMED_AS = {m: m if m in PAPER_MODES else PE for m in MODES}
PAPER_UPDATES = 22000


def model_time_factor(model):
    """ViLBERT's time per update against VisualBERT's, estimated as their parameter ratio (the
    paper timed VisualBERT only)."""
    totals = {(r["model"], r["mode"]): r["total"] for r in models.table1_rows()}
    return totals[(model, FULL)] / totals[(PAPER_MODEL, FULL)]


def estimate_hours(spec):
    """(hours, how) of one run: the paper's V100 wall time of its dataset and (stand-in) mode,
    scaled by the updates and the model."""
    rows = models.load_paper_reference()["v100_runs"]["rows"]
    timed = TIMED_AS[spec.mode]
    found = [r for r in rows if (r["dataset"], r["mode"]) == (spec.dataset, timed)]
    if not found:
        raise PekitError(f"paper reference: no V100 time of {spec.dataset} {timed}")
    seconds = found[0]["wall_time_s"] * spec.settings.max_updates / PAPER_UPDATES
    seconds *= model_time_factor(spec.model)
    how = "PE's time" if timed != spec.mode else "the paper's time"
    return seconds / 3600.0, how


def matrix_table(specs):
    """The dry run's Markdown: one line per (model, variant) with its seeds and hours."""
    lines = [
        f"pekit study: {label(specs[0].dataset)}, {len(specs)} runs, settings "
        f"{specs[0].settings.name}",
        "",
        "| model | mode | size | seeds | est. V100 hours per run | basis |",
        "|---|---|---:|---|---:|---|",
    ]
    groups = {}
    for spec in specs:
        groups.setdefault((spec.model, spec.variant), []).append(spec)
    total = 0.0
    for (model, variant), group in groups.items():
        spec = group[0]
        hours, how = estimate_hours(spec)
        total += hours * len(group)
        m = MODES[spec.mode]
        size = f"{m.size_label} {spec.size or m.default_size}" if m.size_key else ""
        factor = model_time_factor(model)
        basis = how + (f" x {factor:.2f} (ViLBERT/VisualBERT parameters)" if factor != 1 else "")
        lines.append(
            f"| {label(model)} | {label(variant)} | {size} | "
            f"{','.join(str(s.seed) for s in group)} | {hours:.1f} | {basis} |"
        )
    lines += [
        "",
        f"Estimated total: {total:.1f} V100 GPU-hours at batch {specs[0].batch}, "
        "from the paper's V100 wall times (22,000 updates, fp32); a newer GPU or "
        "SETTINGS=fast takes less (docs/performance.md).",
    ]
    return "\n".join(lines)
