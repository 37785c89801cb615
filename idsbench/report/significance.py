"""How sure a leaderboard can be: intervals over seeds and paired tests on shared test rows.

Two kinds of uncertainty are kept apart:

* **Seed to seed.** :func:`t_interval` gives a Student-t interval for the mean of a metric over
  the seeds of one model.  It says how much training randomness moves the score.
* **Test rows.** Two models scored on the *same* test rows are compared row by row.
  :func:`mcnemar_exact` asks whether the rows only one of them gets right are split evenly
  (exact binomial test on the discordant pairs); :func:`paired_bootstrap` resamples the test
  rows, the same rows for both models, and gives an interval for the difference in accuracy
  or macro-F1 averaged over each model's seeds.

Everything here works from stored predictions (``y_true`` and ``y_pred`` code arrays); no model
is run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: metrics :func:`paired_bootstrap` can resample
BOOTSTRAP_METRICS = ("accuracy", "f1_macro")


def t_interval(values: Sequence[float | None], level: float = 0.95) -> tuple[float, float] | None:
    """Student-t interval for the mean over seeds.

    Parameters
    ----------
    values
        One value per seed; ``None`` and NaN are ignored.
    level
        Coverage of the interval.

    Returns
    -------
    tuple of float or None
        ``(low, high)``, or None with fewer than two values (no spread to estimate).
    """
    from scipy import stats

    vals = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if len(vals) < 2:
        return None
    half = stats.t.ppf(0.5 + level / 2, len(vals) - 1) * vals.std(ddof=1) / math.sqrt(len(vals))
    return float(vals.mean() - half), float(vals.mean() + half)


@dataclass(frozen=True)
class McNemarResult:
    """Discordant rows of two prediction vectors and the exact two-sided p-value."""

    only_a: int  # rows model A gets right and model B gets wrong
    only_b: int  # rows model B gets right and model A gets wrong
    p_value: float


def mcnemar_exact(y_true, pred_a, pred_b) -> McNemarResult:
    """McNemar's exact test: do A and B err on the same test rows about equally often?

    Rows both models get right, or both get wrong, carry no information about which is better;
    under the null hypothesis each discordant row is equally likely to favour either model, so
    ``only_a`` is Binomial(only_a + only_b, 1/2).

    Parameters
    ----------
    y_true, pred_a, pred_b
        Class codes, one per test row, in the same row order.

    Returns
    -------
    McNemarResult
        ``p_value`` is 1 when the two never disagree on correctness.
    """
    from scipy.stats import binomtest

    y_true, pred_a, pred_b = (np.asarray(a) for a in (y_true, pred_a, pred_b))
    if not (len(y_true) == len(pred_a) == len(pred_b)):
        raise ValueError(f"McNemar needs predictions for the same rows: got {len(y_true)}, "
                         f"{len(pred_a)} and {len(pred_b)} rows")
    right_a, right_b = pred_a == y_true, pred_b == y_true
    only_a = int((right_a & ~right_b).sum())
    only_b = int((right_b & ~right_a).sum())
    if only_a + only_b == 0:
        return McNemarResult(0, 0, 1.0)
    return McNemarResult(only_a, only_b, float(binomtest(only_a, only_a + only_b, 0.5).pvalue))


@dataclass(frozen=True)
class BootstrapResult:
    """Observed difference (A minus B) and its percentile interval over row resamples."""

    metric: str
    difference: float
    low: float
    high: float
    n_boot: int

    @property
    def significant(self) -> bool:
        """True when the interval excludes zero."""
        return self.low > 0 or self.high < 0


def _scores_from_confusions(conf: np.ndarray, metric: str) -> np.ndarray:
    """``metric`` for a stack of K x K confusion matrices (rows: true class, columns: predicted).

    Matches :func:`idsbench.evaluation.metrics.classification_metrics`: macro-F1 averages over
    every class, and a class with no true and no predicted rows scores 0.
    """
    total = conf.sum(axis=(-2, -1))
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    if metric == "accuracy":
        return tp.sum(axis=-1) / np.maximum(total, 1)
    fp = conf.sum(axis=-2) - tp
    fn = conf.sum(axis=-1) - tp
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros(denom.shape, dtype=float), where=denom > 0)
    return f1.mean(axis=-1)


def paired_bootstrap(y_true, preds_a, preds_b, metric: str = "f1_macro",
                     n_classes: int | None = None, n_boot: int = 1000, level: float = 0.95,
                     seed: int = 0) -> BootstrapResult:
    """Paired bootstrap over test rows of ``metric(A) - metric(B)``.

    Each resample draws test rows with replacement, the same rows for both models; a model with
    several seeds scores the mean of its seeds' metrics on those rows.

    Only the distinct combinations of (true class, every prediction) matter to the metrics, so
    a resample is drawn as multinomial counts over those combinations rather than row by row:
    the same distribution as resampling rows, at a cost that does not grow with the test set.

    Parameters
    ----------
    y_true
        True class codes, one per test row.
    preds_a, preds_b
        Predicted codes: one row vector, or a (seeds x rows) array per model.
    metric
        ``"accuracy"`` or ``"f1_macro"``.
    n_classes
        Number of classes (default: one more than the largest code seen).
    n_boot, level, seed
        Resamples, interval coverage and the seed of the resampling (fixed, so the same
        predictions always give the same interval).

    Returns
    -------
    BootstrapResult
    """
    from scipy import sparse

    if metric not in BOOTSTRAP_METRICS:
        raise ValueError(f"paired_bootstrap metric {metric!r}: expected one of {BOOTSTRAP_METRICS}")
    y_true = np.asarray(y_true, dtype=np.int64)
    a = np.atleast_2d(np.asarray(preds_a, dtype=np.int64))
    b = np.atleast_2d(np.asarray(preds_b, dtype=np.int64))
    if a.shape[1] != len(y_true) or b.shape[1] != len(y_true):
        raise ValueError(f"paired_bootstrap needs predictions for the same {len(y_true)} rows: "
                         f"got {a.shape[1]} and {b.shape[1]}")
    k = n_classes or int(max(y_true.max(), a.max(), b.max())) + 1

    # one column per distinct (y, predictions...) combination, with how often it occurs
    stacked = np.vstack([y_true, a, b])
    combos, counts = np.unique(stacked, axis=1, return_counts=True)
    n_rows = len(y_true)

    # cell of the confusion matrix each combination falls in, per model seed: (seeds, combos)
    cells_a = combos[0] * k + combos[1:1 + len(a)]
    cells_b = combos[0] * k + combos[1 + len(a):]

    def score(weights: np.ndarray, cells: np.ndarray) -> np.ndarray:
        # weights: (draws, combos) -> the mean over seeds of the metric, one value per draw
        out = np.zeros(len(weights))
        for seed_cells in cells:
            onehot = sparse.csr_matrix((np.ones(len(seed_cells)), (np.arange(len(seed_cells)),
                                        seed_cells)), shape=(len(seed_cells), k * k))
            conf = np.asarray((onehot.T @ weights.T).T).reshape(len(weights), k, k)
            out += _scores_from_confusions(conf, metric)
        return out / len(cells)

    observed = counts[None, :].astype(float)
    diff = float(score(observed, cells_a)[0] - score(observed, cells_b)[0])

    # resample in blocks so that memory stays small when there are many combinations
    rng = np.random.default_rng(seed)
    diffs = []
    for start in range(0, n_boot, 200):
        draws = rng.multinomial(n_rows, counts / n_rows, size=min(200, n_boot - start))
        draws = draws.astype(float)
        diffs.append(score(draws, cells_a) - score(draws, cells_b))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(np.concatenate(diffs), [tail, 100 - tail])
    return BootstrapResult(metric, diff, float(low), float(high), n_boot)


@dataclass(frozen=True)
class Comparison:
    """One model against the best one on shared test rows (differences: this minus best)."""

    f1_macro: BootstrapResult
    accuracy: BootstrapResult
    mcnemar: tuple[McNemarResult, ...]  # one per pair of seeds
    seed_pairs: tuple[tuple[int, int], ...]  # (best's seed, this model's seed)

    @property
    def significant(self) -> bool:
        """The verdict the leaderboard marks: the macro-F1 interval excludes zero."""
        return self.f1_macro.significant

    @property
    def mcnemar_max_p(self) -> float:
        return max(m.p_value for m in self.mcnemar)


def compare_with_best(y_true, best: dict[int, np.ndarray], other: dict[int, np.ndarray],
                      n_classes: int, n_boot: int = 1000, seed: int = 0) -> Comparison:
    """Paired tests of ``other`` against ``best``; both map seed -> predicted codes.

    The bootstrap averages each model over all its seeds.  McNemar's test needs one prediction
    vector per model, so it runs once per pair of seeds: seeds both models share are paired by
    number; otherwise seeds are paired in sorted order.
    """
    a = np.vstack([other[s] for s in sorted(other)])
    b = np.vstack([best[s] for s in sorted(best)])
    f1 = paired_bootstrap(y_true, a, b, "f1_macro", n_classes, n_boot=n_boot, seed=seed)
    acc = paired_bootstrap(y_true, a, b, "accuracy", n_classes, n_boot=n_boot, seed=seed)
    common = sorted(set(best) & set(other))
    pairs = [(s, s) for s in common] or list(zip(sorted(best), sorted(other)))
    tests = tuple(mcnemar_exact(y_true, best[sb], other[so]) for sb, so in pairs)
    return Comparison(f1, acc, tests, tuple(pairs))
