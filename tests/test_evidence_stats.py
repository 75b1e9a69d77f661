"""pekit.report.stats: AUROC against scikit-learn, DeLong against its definition computed pair by
pair, the bootstrap against DeLong on correlated data, DeLong's p-values under the null, and the
refusals."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pekit.core.errors import UsageError
from pekit.report import stats

# --- helpers ------------------------------------------------------------------------------


def psi(x, y):
    return 1.0 if x > y else 0.5 if x == y else 0.0


def delong_by_definition(labels, scores_a, scores_b):
    """DeLong (1988) from the definition, O(n²): V10 per positive, V01 per negative, S10 and
    S01 their covariance matrices (ddof=1), var = L S10 Lᵀ / m + L S01 Lᵀ / n, L = (1, −1)."""
    labels = list(labels)
    models = [list(scores_a), list(scores_b)]
    pos = [i for i, v in enumerate(labels) if v == 1]
    neg = [i for i, v in enumerate(labels) if v == 0]
    m, n = len(pos), len(neg)
    v10 = np.array([[sum(psi(s[i], s[j]) for j in neg) / n for i in pos] for s in models])
    v01 = np.array([[sum(psi(s[i], s[j]) for i in pos) / m for j in neg] for s in models])
    aucs = v10.mean(axis=1)
    s10, s01 = np.cov(v10, ddof=1), np.cov(v01, ddof=1)
    contrast = np.array([1.0, -1.0])
    var = contrast @ s10 @ contrast / m + contrast @ s01 @ contrast / n
    single = [s10[k, k] / m + s01[k, k] / n for k in (0, 1)]
    return aucs, var, single


def correlated(n, seed, shift=0.8, shared=1.0, own=0.7, prevalence=0.4):
    """Labels and two models' scores sharing a latent variable (the example's difficulty)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < prevalence).astype(int)
    latent = shift * labels + shared * rng.standard_normal(n)
    a = latent + own * rng.standard_normal(n)
    b = latent + 0.1 * labels + own * rng.standard_normal(n)
    return labels, a, b


# --- AUROC and accuracy -------------------------------------------------------------------


def test_auroc_by_hand():
    # Pairs (positive, negative): 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3 of 4.
    assert stats.auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert stats.auroc([0, 1], [0.5, 0.5]) == 0.5  # a tie counts 1/2
    assert stats.auroc([1, 0, 1, 0], [0.9, 0.9, 0.2, 0.1]) == 0.625  # (0.5 + 1 + 0 + 1) / 4
    assert stats.auroc([True, False], [0, 1]) == 0.0


@pytest.mark.parametrize("seed", range(8))
def test_auroc_equals_scikit_learn_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    labels = rng.integers(0, 2, n)
    labels[:2] = (0, 1)
    scores = rng.integers(0, 1 + seed * 3, n) / 10  # seed 0: every score tied
    assert stats.auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert stats.auroc(list(labels), list(scores)) == pytest.approx(
        roc_auc_score(labels, scores), abs=1e-12
    )


def test_accuracy():
    assert stats.accuracy([0, 1, 1, 0], [0, 1, 0, 0]) == 0.75
    assert stats.accuracy([1], [1]) == 1.0
    with pytest.raises(UsageError, match="predicted must be 0 or 1"):
        stats.accuracy([0, 1], [0, 0.7])
    with pytest.raises(UsageError, match=r"labels \(2\) and predicted \(3\) differ in length"):
        stats.accuracy([0, 1], [0, 1, 1])


# --- DeLong against its definition ---------------------------------------------------------

SMALL_CASES = [
    # The case worked by hand below.
    ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], [0.2, 0.6, 0.6, 0.9]),
    # Ties within and across classes, in both models.
    ([0, 1, 0, 1, 1, 0, 0], [1, 2, 2, 2, 3, 1, 0], [0, 0, 1, 2, 2, 2, 3]),
    ([1, 1, 0, 0, 1, 0], [0.5, 0.5, 0.5, 0.5, 0.9, 0.1], [0.3, 0.7, 0.7, 0.3, 0.7, 0.3]),
    ([1, 0, 1, 0, 1, 0, 1, 0], [4, 4, 3, 3, 2, 2, 1, 1], [1, 2, 3, 4, 4, 3, 2, 1]),
]


def _random_small_cases(count=20):
    rng = np.random.default_rng(7)
    for _ in range(count):
        n = int(rng.integers(4, 16))
        labels = rng.permutation([0, 0, 1, 1] + list(rng.integers(0, 2, n - 4)))
        yield labels, rng.integers(0, 4, n), rng.integers(0, 4, n)  # ties everywhere


@pytest.mark.parametrize("labels, a, b", SMALL_CASES + list(_random_small_cases()))
def test_delong_equals_its_definition(labels, a, b):
    aucs, var, single = delong_by_definition(labels, a, b)
    got = stats.delong(labels, a, b)
    assert got["auroc_a"] == pytest.approx(aucs[0], abs=1e-12)
    assert got["auroc_b"] == pytest.approx(aucs[1], abs=1e-12)
    assert got["difference"] == pytest.approx(aucs[0] - aucs[1], abs=1e-12)
    assert got["se"] ** 2 == pytest.approx(var, abs=1e-12)
    if var > 1e-12:
        z = (aucs[0] - aucs[1]) / math.sqrt(var)
        assert got["z"] == pytest.approx(z, rel=1e-9)
        assert got["p"] == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), rel=1e-9)
    assert stats.auroc_se(labels, a) ** 2 == pytest.approx(single[0], abs=1e-12)
    assert stats.auroc_se(labels, b) ** 2 == pytest.approx(single[1], abs=1e-12)


def test_delong_worked_by_hand():
    # labels [0, 0, 1, 1]; positives are examples 3 and 4, negatives 1 and 2.
    # a = [0.1, 0.4, 0.35, 0.8]: V10 (per positive) = [psi(.35,.1)+psi(.35,.4), 2] / 2 = [0.5, 1]
    #                            V01 (per negative) = [2, psi(.35,.4)+psi(.8,.4)] / 2 = [1, 0.5]
    #                            AUROC 0.75
    # b = [0.2, 0.6, 0.6, 0.9]:  V10 = [(1 + 0.5) / 2, 1] = [0.75, 1]   (0.6 ties 0.6: 1/2)
    #                            V01 = [1, (0.5 + 1) / 2] = [1, 0.75]
    #                            AUROC 0.875
    # The difference's components: V10 a−b = [−0.25, 0], V01 a−b = [0, −0.25]; each has sample
    # variance (0.125² + 0.125²) / 1 = 0.03125, so var = 0.03125/2 + 0.03125/2 = 0.03125,
    # se = √0.03125 = 0.17678, z = −0.125 / 0.17678 = −1/√2, p = erfc(1/2) = 0.4795.
    # a alone: V10 and V01 have variance 0.125 each: var = 0.125/2 + 0.125/2 = 0.125.
    labels, a, b = SMALL_CASES[0]
    got = stats.delong(labels, a, b)
    assert got["auroc_a"] == 0.75 and got["auroc_b"] == 0.875
    assert got["difference"] == -0.125
    assert got["se"] == pytest.approx(math.sqrt(0.03125), abs=1e-12)
    assert got["z"] == pytest.approx(-1 / math.sqrt(2), abs=1e-12)
    assert got["p"] == pytest.approx(math.erfc(0.5), abs=1e-12)
    assert got["p"] == pytest.approx(0.4795001, abs=1e-7)
    assert stats.auroc_se(labels, a) == pytest.approx(math.sqrt(0.125), abs=1e-12)


def test_delong_identical_scores():
    labels, a, _ = correlated(300, seed=3)
    got = stats.delong(labels, a, a.copy())
    assert got["difference"] == 0.0 and got["se"] == 0.0
    assert got["z"] == 0.0 and got["p"] == 1.0


def test_delong_no_doubt_left():
    # Every positive and every negative moves the same way: variance 0, difference 1.
    got = stats.delong([1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1])
    assert got["difference"] == 1.0 and got["se"] == 0.0
    assert got["z"] == math.inf and got["p"] == 0.0


def test_delong_p_values_are_uniform_under_the_null():
    # Two models with the same score distribution, independent noise: p < 0.05 about 1 in 20.
    rng = np.random.default_rng(11)
    ps = []
    for _ in range(200):
        labels = (rng.random(300) < 0.4).astype(int)
        latent = 0.8 * labels + rng.standard_normal(300)
        a = latent + rng.standard_normal(300)
        b = latent + rng.standard_normal(300)
        ps.append(stats.delong(labels, a, b)["p"])
    ps = np.array(ps)
    assert 0.01 <= (ps < 0.05).mean() <= 0.12
    assert 0.35 <= (ps < 0.5).mean() <= 0.65
    assert ps.min() >= 0 and ps.max() <= 1


# --- the bootstrap --------------------------------------------------------------------------


def test_paired_bootstrap_agrees_with_delong_on_correlated_data():
    labels, a, b = correlated(2000, seed=5)
    d = stats.delong(labels, a, b)
    paired = stats.paired_bootstrap(labels, a, b, resamples=1000, seed=1)
    assert paired["difference"] == pytest.approx(d["difference"], abs=1e-12)
    # The paired replicates themselves, through the generic path on the example indices: the
    # same seed draws the same resamples, so the intervals must be the same.
    replicates = []

    def difference(y, idx):
        i = idx.astype(int)
        replicates.append(stats.auroc(y, a[i]) - stats.auroc(y, b[i]))
        return replicates[-1]

    generic = stats.bootstrap_ci(labels, np.arange(len(labels)), difference, 1000, seed=1)
    assert generic["low"] == pytest.approx(paired["low"], abs=1e-12)
    assert generic["high"] == pytest.approx(paired["high"], abs=1e-12)
    spread = np.std(replicates[1:], ddof=1)  # [0] is the full data's value
    assert spread == pytest.approx(d["se"], rel=0.15)
    # Both 95% intervals: centred within a quarter se of each other, widths within 20%.
    centre = (paired["low"] + paired["high"]) / 2
    assert abs(centre - d["difference"]) < 0.25 * d["se"]
    assert paired["high"] - paired["low"] == pytest.approx(2 * 1.96 * d["se"], rel=0.2)
    assert paired["low"] < d["difference"] + 1.96 * d["se"]
    assert d["difference"] - 1.96 * d["se"] < paired["high"]


def test_bootstrap_of_one_auroc_agrees_with_delong():
    labels, a, _ = correlated(2000, seed=6)
    se = stats.auroc_se(labels, a)
    ci = stats.bootstrap_ci(labels, a, stats.auroc, resamples=1000, seed=2)
    assert ci["value"] == pytest.approx(roc_auc_score(labels, a), abs=1e-12)
    assert ci["low"] < ci["value"] < ci["high"]
    assert ci["high"] - ci["low"] == pytest.approx(2 * 1.96 * se, rel=0.2)
    assert ci["resamples"] == 1000 and ci["level"] == 0.95 and ci["seed"] == 2


def test_the_vectorised_auroc_is_the_generic_path():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 300)
    scores = rng.integers(0, 20, 300) / 20  # ties
    fast = stats.bootstrap_ci(labels, scores, stats.auroc, resamples=200, seed=9, level=0.9)
    slow = stats.bootstrap_ci(labels, scores, lambda y, s: stats.auroc(y, s), 200, 9, 0.9)
    assert fast == pytest.approx(slow, abs=1e-12)


def test_the_bootstrap_is_fast():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 10_000)
    a, b = rng.random(10_000) + 0.3 * labels, rng.random(10_000) + 0.2 * labels
    start = time.perf_counter()
    stats.bootstrap_ci(labels, a, stats.auroc, resamples=1000)
    stats.paired_bootstrap(labels, a, b, resamples=1000)
    assert time.perf_counter() - start < 10  # about 1 s on one core


def test_the_same_seed_the_same_interval():
    labels, a, b = correlated(400, seed=8)
    first = stats.bootstrap_ci(labels, a, stats.auroc, resamples=300, seed=5)
    assert stats.bootstrap_ci(labels, a, stats.auroc, resamples=300, seed=5) == first
    other = stats.bootstrap_ci(labels, a, stats.auroc, resamples=300, seed=6)
    assert (other["low"], other["high"]) != (first["low"], first["high"])
    assert other["value"] == first["value"]
    paired = stats.paired_bootstrap(labels, a, b, resamples=300, seed=5)
    assert stats.paired_bootstrap(labels, a, b, resamples=300, seed=5) == paired
    moved = stats.paired_bootstrap(labels, a, b, resamples=300, seed=6)
    assert (moved["low"], moved["high"]) != (paired["low"], paired["high"])


def test_every_resample_keeps_the_class_counts():
    labels = np.array([1] * 7 + [0] * 23)
    rng = np.random.default_rng(1)
    scores = rng.permutation(30).astype(float)  # distinct: repeats show the replacement
    calls = []

    def record(y, s):
        calls.append((int(y.sum()), len(y), len(set(s.tolist()))))
        return float(y.mean())

    ci = stats.bootstrap_ci(rng.permutation(labels), scores, record, resamples=50)
    assert len(calls) == 51  # the data, then each resample
    assert {(positives, n) for positives, n, _ in calls} == {(7, 30)}
    assert any(distinct < 30 for _, _, distinct in calls[1:])  # drawn with replacement
    assert ci["value"] == ci["low"] == ci["high"] == pytest.approx(7 / 30)


def test_accuracy_through_the_bootstrap():
    labels, a, _ = correlated(500, seed=2)

    def thresholded(y, s):
        return stats.accuracy(y, (s > 0.4).astype(int))

    ci = stats.bootstrap_ci(labels, a, thresholded, resamples=200)
    assert ci["value"] == pytest.approx(((a > 0.4) == labels).mean())
    assert ci["low"] <= ci["value"] <= ci["high"]


# --- refusals -------------------------------------------------------------------------------

REFUSALS = [
    (lambda: stats.auroc([0, 1, 1], [0.1, 0.2]), r"labels \(3\) and scores \(2\) differ"),
    (lambda: stats.auroc([0, 1, 2], [0.1, 0.2, 0.3]), r"labels must be 0 or 1; found 2 at index 2"),
    (lambda: stats.auroc([1, 1, 1], [0.1, 0.2, 0.3]), r"AUROC needs both classes.* 3 positives, 0"),
    (lambda: stats.auroc([], []), "no examples"),
    (lambda: stats.auroc([0, 1], [0.1, float("nan")]), "scores must be finite"),
    (lambda: stats.auroc([0, 1], ["a", "b"]), "scores must be numbers"),
    (lambda: stats.auroc([[0, 1]], [[0.1, 0.2]]), "labels must be a flat sequence"),
    (
        lambda: stats.bootstrap_ci([0, 1], [0.1, 0.2], stats.auroc, 0),
        "resamples must be at least 1",
    ),
    (lambda: stats.bootstrap_ci([0, 1], [0.1, 0.2], stats.auroc, 2.5), "resamples must be a whole"),
    (lambda: stats.bootstrap_ci([0, 1], [0.1, 0.2], stats.auroc, level=95), "level must be"),
    (lambda: stats.bootstrap_ci([0, 1], [0.1, 0.2], "auroc"), "metric must be a function"),
    (lambda: stats.bootstrap_ci([0, 0], [0.1, 0.2], stats.auroc), "AUROC needs both classes"),
    (
        lambda: stats.paired_bootstrap([0, 1], [0.1, 0.2], [0.1], resamples=5),
        r"labels \(2\) and scores_b \(1\) differ",
    ),
    (lambda: stats.paired_bootstrap([0, 1], [0.1, 0.2], [0.3, 0.4], 0), "resamples must be at"),
    (lambda: stats.paired_bootstrap([2, 1], [0.1, 0.2], [0.3, 0.4]), "labels must be 0 or 1"),
    (
        lambda: stats.delong([0, 1, 1], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1]),
        "DeLong's test needs at least 2 of each class; the labels hold 2 positives, 1 negatives",
    ),
    (lambda: stats.delong([0, 1], [0.1, 0.2], [0.3]), r"labels \(2\) and scores_b \(1\) differ"),
    (lambda: stats.auroc_se([0, 0, 1], [0.1, 0.2, 0.3]), "at least 2 of each class"),
    (lambda: stats.mean_std([]), "no values"),
]


@pytest.mark.parametrize("call, message", REFUSALS)
def test_refusals(call, message):
    with pytest.raises(UsageError, match=message):
        call()


# --- seeds and sentences ------------------------------------------------------------------


def test_mean_std():
    assert stats.mean_std([0.7]) == {"mean": 0.7, "std": None, "n": 1}
    got = stats.mean_std([0.70, 0.72, 0.74])
    assert got["mean"] == pytest.approx(0.72) and got["n"] == 3
    assert got["std"] == pytest.approx(np.std([0.70, 0.72, 0.74], ddof=1))


def test_the_sentence():
    paired = {"difference": -0.0163, "low": -0.0412, "high": 0.0091}
    line = stats.sentence("PE", "Full-FT", "HMD dev_seen", paired, {"p": 0.2149})
    assert line == "PE \u2212 Full-FT on HMD dev_seen: \u22120.016 [\u22120.041, 0.009], p = 0.21"
    assert stats.sentence("A", "B", "x", paired, {"p": 0.0004}).endswith("p < 0.001")
    assert stats.sentence("A", "B", "x", paired, {"p": 0.1}).endswith("p = 0.10")
    assert stats.sentence("A", "B", "x", paired, {"p": 1.0}).endswith("p = 1.0")
    assert stats.signed(-0.0004) == "0.000"  # no minus on a zero
    assert stats.signed(-0.25) == "\u22120.250" and stats.signed(0.5) == "0.500"


def test_the_sentence_from_real_results():
    labels, a, b = correlated(500, seed=12)
    paired = stats.paired_bootstrap(labels, a, b, resamples=200)
    d = stats.delong(labels, a, b)
    line = stats.sentence("PE", "Full-FT", "HMD dev_seen", paired, d)
    assert line.startswith("PE \u2212 Full-FT on HMD dev_seen: ")
    assert "-" not in line.replace("Full-FT", "").replace("dev_seen", "")
    assert stats.signed(paired["difference"]) in line
