"""The statistics behind the report's evidence, over one binary classifier's per-example
predictions: gold labels (0 or 1) and the probability of class 1, in the same order.

    auroc, accuracy     one model's AUROC (ties count 1/2) and accuracy
    auroc_se            DeLong's standard error of one AUROC
    bootstrap_ci        a stratified percentile bootstrap interval for any metric
    pooled_bootstrap    the same for a metric's mean over seeds scored on the same examples
    resampled, percentile_interval
                        the replicates behind all three, for many intervals on the same examples
    paired_bootstrap    the same for the difference of two models' AUROCs on the same examples
    delong              DeLong's test of that difference (Sun & Xu's fast algorithm)
    mean_std            the mean and sample spread of a metric over seeds
    sentence            one line stating a comparison

Pure functions. numpy is imported inside them: the kit loads with the standard library alone.
Unusable inputs (lengths that differ, a label that is not 0 or 1, one class only where a metric
needs both) raise UsageError with one line saying what was wrong.
"""

from __future__ import annotations

import itertools
import math
import numbers
import statistics

from ..core.errors import UsageError

MINUS = "\u2212"  # the sign printed for negative numbers: a true minus, not a hyphen

# Cells of the (resamples × distinct scores) count tables the vectorised bootstrap builds at
# once: a few tens of MB, whatever the data's size.
_CELLS = 1 << 21


# --- checking inputs ----------------------------------------------------------------------


def _binary(values, name):
    """`values` as an int array of 0s and 1s, or UsageError."""
    import numpy as np

    array = np.asarray(values)
    if array.ndim != 1:
        raise UsageError(f"{name} must be a flat sequence, got shape {array.shape}")
    if array.size == 0:
        raise UsageError(f"no examples: {name} is empty")
    ok = np.isin(array, (0, 1)) if array.dtype.kind in "biuf" else np.zeros(array.shape, bool)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise UsageError(f"{name} must be 0 or 1; found {array[i]!r} at index {i}")
    return array.astype(np.int64)


def _numbers(values, name, length):
    """`values` as a float array of `length` finite numbers, or UsageError."""
    import numpy as np

    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be numbers") from None
    if array.ndim != 1:
        raise UsageError(f"{name} must be a flat sequence, got shape {array.shape}")
    if len(array) != length:
        raise UsageError(f"labels ({length}) and {name} ({len(array)}) differ in length")
    finite = np.isfinite(array)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise UsageError(f"{name} must be finite numbers; found {array[i]} at index {i}")
    return array


def _checked(labels, **scores):
    """(labels as 0/1 ints, [each of `scores` as floats of the same length])."""
    y = _binary(labels, "labels")
    return y, [_numbers(values, name, len(y)) for name, values in scores.items()]


def _classes(y, what, least=1):
    """(positives, negatives) in `y`: `what` needs at least `least` of each."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if min(positives, negatives) < least:
        need = "both classes" if least == 1 else f"at least {least} of each class"
        raise UsageError(
            f"{what} needs {need}; the labels hold {positives} positives, {negatives} negatives"
        )
    return positives, negatives


def _resampling(resamples, level):
    if isinstance(resamples, bool) or not isinstance(resamples, numbers.Integral):
        raise UsageError(f"resamples must be a whole number, got {resamples!r}")
    if resamples < 1:
        raise UsageError(f"resamples must be at least 1, got {resamples}")
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise UsageError(f"level must be a number between 0 and 1, got {level!r}")


# --- one model ----------------------------------------------------------------------------


def _midranks(values):
    """1-based ranks of `values`, tied values sharing the mean of the ranks they span."""
    import numpy as np

    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    # A tie group holds the 0-based places start..end-1: ranks start+1..end, mean (start+1+end)/2.
    ranks[order] = ((starts + ends + 1) / 2.0)[np.cumsum(first) - 1]
    return ranks


def _auroc(y, s, positives, negatives):
    # Mann–Whitney: the positives' rank sum less its least possible value counts the pairs a
    # positive outranks, ties (shared midranks) as 1/2.
    rank_sum = _midranks(s)[y == 1].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def auroc(labels, scores):
    """ROC AUC: the chance a random positive scores above a random negative, ties counting 1/2
    (scikit-learn's roc_auc_score), in O(n log n) from average ranks."""
    y, (s,) = _checked(labels, scores=scores)
    return _auroc(y, s, *_classes(y, "AUROC"))


def accuracy(labels, predicted):
    """The fraction of `predicted` classes (0 or 1, already thresholded) equal to `labels`."""
    y = _binary(labels, "labels")
    p = _binary(predicted, "predicted")
    if len(p) != len(y):
        raise UsageError(f"labels ({len(y)}) and predicted ({len(p)}) differ in length")
    return float((y == p).mean())


def _structural(y, s):
    """DeLong's structural components, by Sun & Xu's midranks: per positive, the fraction of
    negatives it outranks; per negative, the fraction of positives that outrank it (ties 1/2).
    A positive's rank among all less its rank among positives counts the negatives below it."""
    import numpy as np

    x, z = s[y == 1], s[y == 0]
    m, n = len(x), len(z)
    overall = _midranks(np.concatenate([x, z]))
    v10 = (overall[:m] - _midranks(x)) / n
    v01 = 1.0 - (overall[m:] - _midranks(z)) / m
    return v10, v01


def _delong_variance(v10, v01):
    import numpy as np

    return float(np.var(v10, ddof=1) / len(v10) + np.var(v01, ddof=1) / len(v01))


def auroc_se(labels, scores):
    """DeLong's standard error of one AUROC (needs 2 positives and 2 negatives)."""
    y, (s,) = _checked(labels, scores=scores)
    _classes(y, "DeLong's variance", least=2)
    return math.sqrt(_delong_variance(*_structural(y, s)))


# --- the bootstrap ------------------------------------------------------------------------


def _draws(y, resamples, seed):
    """Per resample, (positive indices, negative indices): as many of each as in the data,
    drawn with replacement, so every resample keeps the class balance the metric was measured
    at. One resample's draws at a time, so the stream depends on the seed alone."""
    import numpy as np

    rng = np.random.default_rng(seed)
    classes = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    for _ in range(resamples):
        yield tuple(c[rng.integers(0, len(c), len(c))] if len(c) else c for c in classes)


def _blocks(y, resamples, seed, chunk):
    """_draws in blocks of at most `chunk` resamples: (start, stop, positive index rows,
    negative index rows), so the vectorised metrics hold a bounded table at once."""
    import numpy as np

    draws = _draws(y, resamples, seed)
    for start in range(0, resamples, chunk):
        block = list(itertools.islice(draws, chunk))
        pos_rows = np.stack([p for p, _ in block])
        neg_rows = np.stack([q for _, q in block])
        yield start, start + len(block), pos_rows, neg_rows


def _auroc_batch(dense, levels, pos_rows, neg_rows):
    """The AUROC of each resample (rows of positive and negative indices) from the scores'
    dense ranks 0..levels-1: per resample, a histogram of its negatives' ranks; a positive
    earns the negatives below it and half those tied. Integer and half counts: exact."""
    import numpy as np

    rows = len(pos_rows)
    offsets = (np.arange(rows) * levels)[:, None]
    counts = np.bincount((dense[neg_rows] + offsets).ravel(), minlength=rows * levels)
    counts = counts.reshape(rows, levels)
    credit = np.cumsum(counts, axis=1) - 0.5 * counts
    earned = np.take_along_axis(credit, dense[pos_rows], axis=1).sum(axis=1)
    return earned / (pos_rows.shape[1] * neg_rows.shape[1])


def _resampled_aurocs(y, models, resamples, seed):
    """Each model's AUROC on the same stratified resamples: an array (models, resamples)."""
    import numpy as np

    ranked = [np.unique(s, return_inverse=True) for s in models]
    widest = max([len(y)] + [len(distinct) for distinct, _ in ranked])
    chunk = max(1, _CELLS // widest)
    out = np.empty((len(models), resamples))
    for start, stop, pos_rows, neg_rows in _blocks(y, resamples, seed, chunk):
        for k, (distinct, dense) in enumerate(ranked):
            dense = dense.reshape(-1)  # numpy 2.0.x shaped the inverse like its input
            out[k, start:stop] = _auroc_batch(dense, len(distinct), pos_rows, neg_rows)
    return out


def _resampled_accuracies(y, models, resamples, seed):
    """Each model's accuracy (its predicted classes against `y`) on the same stratified
    resamples: an array (models, resamples). A resample's correct answers are counted over its
    positives and negatives apart: integer counts, so the same numbers as `accuracy` on the
    drawn examples, without a call per resample."""
    import numpy as np

    correct = [np.asarray(p == y, dtype=np.int64) for p in models]
    chunk = max(1, _CELLS // len(y))
    out = np.empty((len(models), resamples))
    for start, stop, pos_rows, neg_rows in _blocks(y, resamples, seed, chunk):
        for k, right in enumerate(correct):
            hits = right[pos_rows].sum(axis=1) + right[neg_rows].sum(axis=1)
            out[k, start:stop] = hits / len(y)
    return out


def _replicates(y, models, metric, resamples, seed):
    """`metric` of each model on the same stratified resamples: an array (models, resamples).
    AUROC and accuracy take vectorised paths; any other metric is called per resample."""
    import numpy as np

    if metric is auroc:
        return _resampled_aurocs(y, models, resamples, seed)
    if metric is accuracy:
        return _resampled_accuracies(y, models, resamples, seed)
    out = np.empty((len(models), resamples))
    for r, draw in enumerate(_draws(y, resamples, seed)):
        picks = np.concatenate(draw)
        for k, s in enumerate(models):
            out[k, r] = float(metric(y[picks], s[picks]))
    return out


def _interval(replicates, level):
    import numpy as np

    low, high = np.percentile(replicates, [50.0 * (1 - level), 50.0 * (1 + level)])
    return float(low), float(high)


def _value(y, s, metric):
    """`metric` on all the examples (AUROC's classes checked first, for its one-line refusal)."""
    if metric is auroc:
        return _auroc(y, s, *_classes(y, "AUROC"))
    return float(metric(y, s))


def _metric(metric):
    if not callable(metric):
        raise UsageError(f"metric must be a function (labels, scores) -> float, got {metric!r}")


def bootstrap_ci(labels, scores, metric, resamples=1000, seed=0, level=0.95):
    """`metric(labels, scores) -> float` on the data, and its stratified percentile bootstrap
    interval: positives and negatives resampled apart, each with replacement, keeping their
    counts. `metric` is given numpy arrays (labels as 0/1 ints, positives first); `auroc` and
    `accuracy` (scores: predicted classes) themselves take vectorised paths with the same
    resamples. The same seed, the same interval."""
    y, (s,) = _checked(labels, scores=scores)
    _resampling(resamples, level)
    _metric(metric)
    value = _value(y, s, metric)
    low, high = _interval(_replicates(y, [s], metric, resamples, seed)[0], level)
    return {
        "value": value,
        "low": low,
        "high": high,
        "resamples": resamples,
        "level": level,
        "seed": seed,
    }


def _models(labels, scores, what):
    """(labels as 0/1 ints, [each of `scores` as floats]): several models on the same examples."""
    y = _binary(labels, "labels")
    if isinstance(scores, (str, bytes)) or not len(scores):
        raise UsageError(f"{what}: no scores")
    return y, [_numbers(s, f"scores[{k}]", len(y)) for k, s in enumerate(scores)]


def resampled(labels, scores, metric, resamples=1000, seed=0):
    """`metric` of each of `scores` (models on the same examples) on the same stratified
    resamples: an array (models, resamples), the replicates whose percentiles bootstrap_ci (a
    row), paired_bootstrap (a difference of rows) and pooled_bootstrap (the mean of rows) give,
    drawn once for any number of models: many intervals on the same examples at the cost of
    one. percentile_interval turns replicates into an interval."""
    y, models = _models(labels, scores, "resampled")
    _resampling(resamples, 0.5)
    _metric(metric)
    for s in models:
        _value(y, s, metric)  # the one-line refusal of a metric undefined on these labels
    return _replicates(y, models, metric, resamples, seed)


def percentile_interval(replicates, level=0.95):
    """(low, high): the percentile interval at `level` of bootstrap replicates."""
    _resampling(1, level)
    return _interval(replicates, level)


def pooled_bootstrap(labels, scores, metric, resamples=1000, seed=0, level=0.95):
    """The mean over seeds of `metric` (each of `scores` one seed's, on the same examples in the
    same order) and its stratified percentile bootstrap interval: each resample draws examples
    once and scores every seed on them, so the interval is the examples' sampling error of the
    mean, the seeds' spread aside (mean_std gives that). `value` equals mean_std's mean."""
    y, models = _models(labels, scores, "pooled_bootstrap")
    _resampling(resamples, level)
    _metric(metric)
    values = [_value(y, s, metric) for s in models]
    replicates = _replicates(y, models, metric, resamples, seed).mean(axis=0)
    low, high = _interval(replicates, level)
    return {
        "value": statistics.mean(values),
        "low": low,
        "high": high,
        "resamples": resamples,
        "level": level,
        "seed": seed,
        "seeds": len(models),
    }


def paired_bootstrap(labels, scores_a, scores_b, resamples=1000, seed=0, level=0.95):
    """AUROC(a) − AUROC(b) on the same examples and its stratified percentile bootstrap
    interval, both models scored on the same resamples each time, so what the examples share
    (an easy or a hard draw) cancels in the difference."""
    y, (a, b) = _checked(labels, scores_a=scores_a, scores_b=scores_b)
    _resampling(resamples, level)
    positives, negatives = _classes(y, "AUROC")
    aurocs = _resampled_aurocs(y, [a, b], resamples, seed)
    low, high = _interval(aurocs[0] - aurocs[1], level)
    return {
        "difference": _auroc(y, a, positives, negatives) - _auroc(y, b, positives, negatives),
        "low": low,
        "high": high,
        "resamples": resamples,
        "level": level,
        "seed": seed,
    }


# --- DeLong -------------------------------------------------------------------------------


def delong(labels, scores_a, scores_b):
    """DeLong, DeLong & Clarke-Pearson (1988): are two correlated AUROCs (two models, the same
    examples) different? The difference's variance from the structural components (Sun & Xu,
    2014), z = difference / se, p two-sided from the normal distribution. Identical scores
    (variance 0, difference 0) give z = 0 and p = 1."""
    y, (a, b) = _checked(labels, scores_a=scores_a, scores_b=scores_b)
    positives, negatives = _classes(y, "DeLong's test", least=2)
    a10, a01 = _structural(y, a)
    b10, b01 = _structural(y, b)
    auroc_a = _auroc(y, a, positives, negatives)
    auroc_b = _auroc(y, b, positives, negatives)
    difference = auroc_a - auroc_b
    # The contrast (1, −1) applied per example before the variance: var(a − b) without the
    # rounding of var(a) + var(b) − 2 cov(a, b), so identical scores give exactly 0.
    variance = _delong_variance(a10 - b10, a01 - b01)
    se = math.sqrt(variance)
    if variance > 0:
        z = difference / se
        p = math.erfc(abs(z) / math.sqrt(2))
    elif difference == 0:
        z, p = 0.0, 1.0
    else:  # every example moves the same way: no doubt left
        z, p = math.copysign(math.inf, difference), 0.0
    return {
        "auroc_a": auroc_a,
        "auroc_b": auroc_b,
        "difference": difference,
        "se": se,
        "z": z,
        "p": p,
    }


# --- seeds and sentences ------------------------------------------------------------------


def mean_std(values):
    """{"mean", "std", "n"} of a metric over runs: std is the sample standard deviation
    (ddof=1), None for a single value, whose spread is unknown, not 0."""
    values = [float(v) for v in values]
    if not values:
        raise UsageError("mean_std: no values")
    std = statistics.stdev(values) if len(values) > 1 else None
    return {"mean": statistics.mean(values), "std": std, "n": len(values)}


def signed(value, digits=3):
    """`value` to `digits` decimals with a true minus sign; a value that rounds to zero has none."""
    text = f"{value:.{digits}f}"
    if text.startswith("-"):
        text = text[1:] if float(text) == 0 else MINUS + text[1:]
    return text


def p_value(p):
    """ "p = 0.21": two significant digits, "p < 0.001" below 0.001."""
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:#.2g}"


def sentence(name_a, name_b, where, paired, delong_result):
    """ "PE − Full-FT on HMD dev_seen: −0.016 [−0.041, 0.009], p = 0.21": the paired bootstrap's
    difference and interval, DeLong's p."""
    return (
        f"{name_a} {MINUS} {name_b} on {where}: {signed(paired['difference'])} "
        f"[{signed(paired['low'])}, {signed(paired['high'])}], {p_value(delong_result['p'])}"
    )
