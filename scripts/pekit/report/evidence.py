"""The evidence behind the report's comparisons, from every run's per-example predictions
(read by report/predictions.py, computed by report/stats.py):

    runs            per run and split: AUROC and accuracy with stratified bootstrap intervals,
                    and the confusion counts at the run's predicted labels
    seeds           per dataset, model, mode (variant) and settings run with several seeds, per
                    split: mean ± std over the seeds beside a pooled interval of that mean
    pairs           per dataset, model, seed and split: PE against Full-FT and FC, every study
                    variant (LoRA, BitFit, PE's other sizes) against PE: the AUROC difference,
                    its paired bootstrap interval, DeLong's p, and the sentence stating it
    disagreements   per dataset, model, seed and split: the examples the modes label
                    differently, widest spread of probabilities first, with the memes' texts

Every interval over the same examples is a percentile of one set of stratified resamples
(ExampleSet): the numbers stats.bootstrap_ci, pooled_bootstrap and paired_bootstrap give, drawn
once per split's examples instead of once per interval, so tens of runs take seconds.

All of it is data (report.json "evidence"); markdown.py renders it. Two runs are compared only
on the same examples (ids) with the same gold labels; otherwise the entry says why not. A
malformed predictions file refuses the report (predictions.py); a run without predictions is
listed with the reason.
"""

from __future__ import annotations

from ..core.errors import UsageError
from ..facts.vocabulary import DATASETS, FC, FULL, PAPER_MODES, PE, label, variant_order
from . import stats
from .predictions import meme_texts, run_predictions, text_key

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
DEFAULT_TOP = 10
LEVEL = 0.95
# What each metric scores: AUROC the probabilities, accuracy the predicted classes.
METRICS = (("auroc", stats.auroc, "proba"), ("accuracy", stats.accuracy, "label"))


def _run_order(run):
    return (run["dataset"], run["model"], variant_order(run["mode"]), run["seed"])


def _split_order(dataset, split):
    """The dataset's own order of splits (train, validation, tests); others after, by name."""
    splits = DATASETS[dataset].splits
    return (splits.index(split) if split in splits else len(splits), split)


def _where(dataset, model, seed, split):
    return f"{label(dataset)} {split} ({label(model)}, seed {seed})"


def _data_dir(run):
    """The data folder the run read (when its record says), else MMF's default."""
    value = run.get("data_dir")
    return value if isinstance(value, str) and value else None


# --- the examples runs share -------------------------------------------------------------


def same_examples(preds):
    """None when every one of `preds` holds the same examples (ids; the files' rows are in the
    ids' order) with the same gold labels; else why they cannot be compared."""
    import numpy as np

    first = preds[0]
    for p in preds[1:]:
        if p.ids != first.ids:
            return "not the same examples (their ids differ)"
        if (p.gold is None) != (first.gold is None) or (
            p.gold is not None and not np.array_equal(p.gold, first.gold)
        ):
            return "the same examples with other gold labels"
    return None


class ExampleSet:
    """The runs scored on the same examples of a split (the same ids and gold labels): each
    metric of each run on the same stratified resamples, drawn once (stats.resampled). Every
    interval over these examples is a percentile of those replicates: a run's (its row, as
    stats.bootstrap_ci), a mean over seeds' (the mean of their rows, as stats.pooled_bootstrap),
    a difference's (a row less another, as stats.paired_bootstrap), the same numbers at the cost
    of one draw per set of examples instead of one per interval."""

    def __init__(self, members, resamples, seed):
        preds = [p for _, p in members]
        self.gold = preds[0].gold
        self.row = {key: k for k, (key, _) in enumerate(members)}
        self.values, self.replicates, self.reasons = {}, {}, {}
        for name, metric, column in METRICS:
            scores = [getattr(p, column) for p in preds]
            try:
                self.replicates[name] = stats.resampled(self.gold, scores, metric, resamples, seed)
            except UsageError as e:  # AUROC of a split holding one class
                self.reasons[name] = str(e)
                continue
            self.values[name] = [metric(self.gold, s) for s in scores]

    def _undefined(self, name):
        return {"value": None, "low": None, "high": None, "reason": self.reasons[name]}

    def interval(self, name, key):
        """{value, low, high} of one run's `name` (auroc, accuracy), or why it is undefined."""
        if name in self.reasons:
            return self._undefined(name)
        k = self.row[key]
        low, high = stats.percentile_interval(self.replicates[name][k], LEVEL)
        return {"value": self.values[name][k], "low": low, "high": high}

    def seeds(self, name, keys):
        """mean_std of the runs' `name` and the pooled interval of their mean, or why not."""
        if name in self.reasons:
            return {"mean": None, "std": None, "n": 0, "pooled": None, "reason": self.reasons[name]}
        rows = [self.row[k] for k in keys]
        out = stats.mean_std([self.values[name][k] for k in rows])
        low, high = stats.percentile_interval(self.replicates[name][rows].mean(axis=0), LEVEL)
        return dict(out, pooled={"value": out["mean"], "low": low, "high": high})

    def difference(self, a, b):
        """AUROC(a) − AUROC(b) and the percentile interval of its replicates."""
        ra, rb = self.row[a], self.row[b]
        aurocs = self.replicates["auroc"]
        low, high = stats.percentile_interval(aurocs[ra] - aurocs[rb], LEVEL)
        value = self.values["auroc"][ra] - self.values["auroc"][rb]
        return {"difference": value, "low": low, "high": high}


def example_sets(loaded, resamples, seed):
    """{(run's place in `loaded`, split): its ExampleSet}, for every labelled split."""
    groups = {}
    for k, (run, preds, _) in enumerate(loaded):
        for split, p in preds.items():
            if p.labelled:
                key = (run["dataset"], split, tuple(p.ids), p.gold.tobytes())
                groups.setdefault(key, []).append(((k, split), p))
    out = {}
    for members in groups.values():
        shared = ExampleSet(members, resamples, seed)
        out.update({key: shared for key, _ in members})
    return out


# --- one run ------------------------------------------------------------------------------


def confusion(gold, predicted):
    """{tp, fp, fn, tn}: the predicted classes against the gold labels, hateful positive."""
    return {
        "tp": int(((predicted == 1) & (gold == 1)).sum()),
        "fp": int(((predicted == 1) & (gold == 0)).sum()),
        "fn": int(((predicted == 0) & (gold == 1)).sum()),
        "tn": int(((predicted == 0) & (gold == 0)).sum()),
    }


def _run_split(key, p, sets):
    entry = {"split": p.split, "file": p.file, "examples": len(p), "labelled": p.labelled}
    if p.labelled:
        entry["positives"] = int(p.gold.sum())
        for name, _, _ in METRICS:
            entry[name] = sets[key].interval(name, key)
        entry["confusion"] = confusion(p.gold, p.label)
    return entry


def _run_entry(k, loaded, sets):
    run, preds, reason = loaded[k]
    order = sorted(preds, key=lambda s: _split_order(run["dataset"], s))
    return {
        "dataset": run["dataset"],
        "model": run["model"],
        "mode": run["mode"],
        "seed": run["seed"],
        "settings": run.get("settings_label"),
        "dir": run["dir"],
        "predictions": bool(preds),
        "reason": reason,
        "splits": [_run_split((k, s), preds[s], sets) for s in order],
    }


# --- seeds --------------------------------------------------------------------------------


def _apart(intervals):
    """mean_std of seeds scored on other examples: no pooled interval (no resample shared)."""
    undefined = [i for i in intervals if i["value"] is None]
    if undefined:
        return {"mean": None, "std": None, "n": 0, "pooled": None, "reason": undefined[0]["reason"]}
    out = stats.mean_std([i["value"] for i in intervals])
    return dict(out, pooled=None, reason="not the same examples (ids or gold labels differ)")


def _seed_group(group, members, sets):
    dataset, model, mode, settings, split = group
    entry = {
        "dataset": dataset,
        "model": model,
        "mode": mode,
        "settings": settings,
        "split": split,
        "seeds": [seed for seed, _ in members],
        "examples": len(sets[members[0][1]].gold),
    }
    keys = [key for _, key in members]
    shared = {id(sets[key]) for key in keys}
    for name, _, _ in METRICS:
        if len(shared) == 1:
            entry[name] = sets[keys[0]].seeds(name, keys)
        else:
            entry[name] = _apart([sets[key].interval(name, key) for key in keys])
    return entry


def seed_groups(loaded, sets):
    """An entry per (dataset, model, mode, settings, labelled split) run with several seeds."""
    groups = {}
    for k, (run, preds, _) in enumerate(loaded):
        for split, p in preds.items():
            if p.labelled:
                group = (
                    run["dataset"],
                    run["model"],
                    run["mode"],
                    run.get("settings_label"),
                    split,
                )
                groups.setdefault(group, []).append((run["seed"], (k, split)))

    def order(group):
        dataset, model, mode, settings, split = group
        return (dataset, model, variant_order(mode), settings or "", _split_order(dataset, split))

    return [
        _seed_group(group, groups[group], sets)
        for group in sorted(groups, key=order)
        if len(groups[group]) > 1
    ]


# --- modes side by side -------------------------------------------------------------------


def by_seed(loaded):
    """{(dataset, model, seed, split): {mode: (run's place in `loaded`, Predictions)}}, modes
    in their order."""
    out = {}
    for k, (run, preds, _) in enumerate(loaded):
        for split, p in preds.items():
            key = (run["dataset"], run["model"], run["seed"], split)
            out.setdefault(key, {})[run["mode"]] = (k, p)
    for key, modes in out.items():
        out[key] = {m: modes[m] for m in sorted(modes, key=variant_order)}

    def order(key):
        dataset, model, seed, split = key
        return (dataset, model, seed, _split_order(dataset, split))

    return {key: out[key] for key in sorted(out, key=order)}


def pair_list(modes):
    """The comparisons among `modes` (variants): PE − Full-FT, PE − FC, and each study variant
    − PE, those whose two sides are both present."""
    pairs = [(PE, FULL), (PE, FC)]
    pairs += [(v, PE) for v in sorted(modes, key=variant_order) if v not in PAPER_MODES]
    return [(a, b) for a, b in pairs if a in modes and b in modes]


def _pair(key, side_a, side_b, sets):
    dataset, model, run_seed, split = key
    (a, (ka, pa)), (b, (kb, pb)) = side_a, side_b
    entry = {"dataset": dataset, "model": model, "seed": run_seed, "split": split, "a": a, "b": b}
    entry["examples"] = len(pa)
    why = same_examples([pa, pb])
    shared = sets.get((ka, split))
    if why is None and "auroc" in shared.reasons:
        why = shared.reasons["auroc"]
    if why is None:
        try:
            test = stats.delong(shared.gold, pa.proba, pb.proba)
        except UsageError as e:  # DeLong needs two of each class
            why = str(e)
    if why is not None:
        return dict(entry, reason=why, sentence=None)
    paired = shared.difference((ka, split), (kb, split))
    entry.update(paired)
    entry.update({k: test[k] for k in ("auroc_a", "auroc_b", "se", "z", "p")})
    where = _where(dataset, model, run_seed, split)
    entry["sentence"] = stats.sentence(label(a), label(b), where, paired, test)
    return entry


def pairs(sides, sets):
    """A paired comparison per pair_list pair of each (dataset, model, seed, labelled split)."""
    out = []
    for key, modes in sides.items():
        for a, b in pair_list(modes):
            if modes[a][1].labelled and modes[b][1].labelled:  # without labels: nothing to score
                out.append(_pair(key, (a, modes[a]), (b, modes[b]), sets))
    return out


# --- disagreements ------------------------------------------------------------------------


class Texts:
    """The memes' texts, each split's annotations read once; why they are missing, noted once."""

    def __init__(self):
        self.read = {}
        self.notes = []

    def __call__(self, dataset, split, data_dir):
        key = (dataset, split, data_dir)
        if key not in self.read:
            texts, why = meme_texts(dataset, split, data_dir)
            if why:
                self.notes.append(f"no meme texts for {label(dataset)} {split}: {why}")
            self.read[key] = texts
        return self.read[key]


def _rows(preds, modes, top, texts):
    """The examples labelled differently, widest spread (max − min probability over the modes)
    first, ids in order among equals; the first `top` as rows, and how many there are."""
    import numpy as np

    ids = preds[0].ids
    proba = np.stack([p.proba for p in preds])
    labels = np.stack([p.label for p in preds])
    gold = preds[0].gold
    spread = proba.max(axis=0) - proba.min(axis=0)
    differ = np.flatnonzero(labels.min(axis=0) != labels.max(axis=0))
    ranked = sorted(differ.tolist(), key=lambda i: -spread[i])  # stable: ids in order on ties
    rows = [
        {
            "id": ids[i],
            "spread": float(spread[i]),
            "gold": None if gold is None else int(gold[i]),
            "text": texts.get(text_key(ids[i]), ""),
            "proba": {m: float(proba[k, i]) for k, m in enumerate(modes)},
            "label": {m: int(labels[k, i]) for k, m in enumerate(modes)},
        }
        for i in ranked[:top]
    ]
    return rows, len(differ)


def _disagreement(key, modes, loaded, top, texts):
    dataset, model, run_seed, split = key
    preds = [p for _, p in modes.values()]
    entry = {"dataset": dataset, "model": model, "seed": run_seed, "split": split}
    entry.update({"modes": list(modes), "examples": len(preds[0])})
    why = same_examples(preds)
    if why:
        return dict(entry, differ=None, rows=[], reason=why)
    first_run = loaded[next(iter(modes.values()))[0]][0]
    found = texts(dataset, split, _data_dir(first_run)) if top else {}
    rows, differ = _rows(preds, list(modes), top, found)
    return dict(entry, differ=differ, rows=rows)


def disagreements(sides, loaded, top, texts):
    """Per (dataset, model, seed, split) run in several modes: where their labels differ."""
    return [
        _disagreement(key, modes, loaded, top, texts)
        for key, modes in sides.items()
        if len(modes) > 1
    ]


# --- everything ---------------------------------------------------------------------------


def evidence(runs, resamples=DEFAULT_RESAMPLES, seed=DEFAULT_SEED, top=DEFAULT_TOP):
    """The evidence of the collected `runs` (tables.collect_runs) as data: each bootstrap with
    `resamples` resamples from `seed` (the same seed, the same report), `top` disagreements
    shown per comparison. A malformed predictions file refuses it (PekitError, one line)."""
    loaded = [
        (run, *run_predictions(run["dir"], run["dataset"])) for run in sorted(runs, key=_run_order)
    ]
    sets = example_sets(loaded, resamples, seed)
    sides = by_seed(loaded)
    texts = Texts()
    out = {
        "resamples": resamples,
        "seed": seed,
        "level": LEVEL,
        "top": top,
        "runs": [_run_entry(k, loaded, sets) for k in range(len(loaded))],
        "seeds": seed_groups(loaded, sets),
        "pairs": pairs(sides, sets),
        "disagreements": disagreements(sides, loaded, top, texts),
    }
    out["notes"] = texts.notes
    return out
