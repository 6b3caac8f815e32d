"""Exact single-dimension threshold classifiers ("stumps"), for every dimension at once.

A stump on dimension ``d`` predicts ``left[d]`` when ``x[d] <= threshold[d]`` and
``right[d]`` otherwise. :func:`fit_stumps` finds, for every column of ``X`` together, the
threshold that is *exactly* best on the training data (not a grid): each column is sorted
once, label counts are accumulated with cumulative sums, and the objective is evaluated at
every boundary between two distinct values (plus the two constant predictors).

Objectives:

* binary classification: ``accuracy``, ``mcc`` or ``f1`` (positive class = label 1), both
  orientations (left = 0 / right = 1 and the reverse) considered;
* multi-class: accuracy, each side predicting its majority class;
* regression: least squares (each side predicts its mean), which also maximises the Pearson
  correlation of the two-valued prediction with the target.

The sort is the hot path. Instead of ``np.argsort`` (slow), every float is mapped to an
order-preserving int32, packed with the example index into one int64, and the packed keys are
sorted with ``np.sort`` (SIMD); the index is read back from the low 32 bits. Work is done in
chunks of dimensions so memory stays bounded (``chunk_elems``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, DataError

logger = logging.getLogger(__name__)

__all__ = ["StumpFit", "fit_stumps", "predict_stumps", "sorted_order"]

_BINARY_METRICS = ("accuracy", "mcc", "f1")


@dataclass
class StumpFit:
    """Fitted stumps, one per input column.

    Attributes:
        threshold: ``[n_dims]`` float64; predict ``left`` where ``x <= threshold``
            (``-inf``/``+inf`` for a constant predictor).
        left: ``[n_dims]`` prediction on the low side (class index, or mean for regression).
        right: ``[n_dims]`` prediction on the high side.
        train_score: ``[n_dims]`` the optimised objective on the training data (the metric
            for classification; R^2 of the split for regression).
        objective: name of the optimised objective.
        regression: whether predictions are real values.
    """

    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    train_score: np.ndarray
    objective: str
    regression: bool

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions ``[n_dims, n_examples]`` for ``X`` ``[n_examples, n_dims]``."""
        return predict_stumps(self, X)


def _ordered_int(X: np.ndarray) -> np.ndarray:
    """Map float32 ``X`` to int32 keys with the same order (``-0.0`` treated as ``+0.0``)."""
    a = np.asarray(X, dtype=np.float32) + np.float32(0.0)  # -0.0 + 0.0 == +0.0
    i = a.view(np.int32)
    return i ^ ((i >> 31) & np.int32(0x7FFFFFFF))


def _key_to_float(k: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_ordered_int` (int32 keys back to float32 values)."""
    k = np.asarray(k, dtype=np.int32)
    return (k ^ ((k >> 31) & np.int32(0x7FFFFFFF))).view(np.float32)


def sorted_order(keys32: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort every column of the int32 keys ``keys32`` ``[n, c]`` (from :func:`_ordered_int`).

    Returns:
        ``(keys [c, n] int64, order [c, n] int64)``: ``order[j]`` is the argsort of column
        ``j`` (ties by example index) and ``keys[j]`` the sorted keys.
    """
    n = keys32.shape[0]
    packed = keys32.T.astype(np.int64)  # [c, n]
    packed <<= 32
    packed |= np.arange(n, dtype=np.int64)[None, :]
    packed.sort(axis=1)
    order = packed & np.int64(0xFFFFFFFF)
    packed >>= 32
    return packed, order


def _masked_best(score: np.ndarray, valid: np.ndarray, fill) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise argmax of ``score [c, m]`` over ``valid`` positions (overwrites ``score``)."""
    np.copyto(score, fill, where=~valid)
    best = score.argmax(axis=1)
    return best, score[np.arange(score.shape[0]), best]


def fit_stumps(
    X: np.ndarray,
    y: np.ndarray,
    *,
    regression: bool = False,
    metric: str = "accuracy",
    n_classes: int | None = None,
    chunk_elems: int = 1 << 19,
) -> StumpFit:
    """Fit the exactly best threshold on every dimension of ``X`` at once.

    Args:
        X: ``[n_examples, n_dims]`` features (any float dtype; not modified).
        y: ``[n_examples]`` class indices ``0..C-1`` or real targets (``regression=True``).
        regression: least-squares stumps instead of classification.
        metric: objective for binary classification (``accuracy``, ``mcc``, ``f1``); other
            metrics, and every multi-class task, use accuracy.
        n_classes: number of classes (default ``max(y) + 1``).
        chunk_elems: bound on ``n_examples * dims`` processed at once (memory and cache use).

    Returns:
        A :class:`StumpFit` with ``[n_dims]`` arrays.
    """
    keys32 = _checked_keys(X, y, metric)
    n, D = keys32.shape
    yv, C, objective = _targets(np.asarray(y), regression, metric, n_classes)
    sst = float(((yv - yv.mean()) ** 2).sum()) if regression else 0.0
    thr = np.empty(D, dtype=np.float64)
    left = np.empty(D, dtype=np.float64 if regression else np.int64)
    right = np.empty_like(left)
    score = np.empty(D, dtype=np.float64)
    step = max(1, chunk_elems // n)
    for s in range(0, D, step):
        e = min(D, s + step)
        keys, order = sorted_order(keys32[:, s:e])  # [c, n]
        ys = yv[order]  # [c, n] labels in value order
        valid = keys[:, 1:] != keys[:, :-1]  # [c, n-1]: a boundary after the i lowest values
        if regression:
            best, left[s:e], right[s:e], score[s:e] = _best_least_squares(ys, valid, sst)
        elif C == 2:
            best, left[s:e], right[s:e], score[s:e] = _best_binary(ys, valid, objective)
        else:
            best, left[s:e], right[s:e], score[s:e] = _best_multiclass(ys, valid, C)
        thr[s:e] = _midpoints(keys, best)
    return StumpFit(
        threshold=thr,
        left=left,
        right=right,
        train_score=score,
        objective=objective,
        regression=regression,
    )


def _checked_keys(X, y, metric: str) -> np.ndarray:
    """The order-preserving int32 keys ``[n, D]`` of ``X`` after checking ``X``, ``y`` and
    ``metric`` (a :class:`DataError` or :class:`ConfigError` naming what is wrong)."""
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise DataError(f"X must be [n_examples, n_dims], got shape {X.shape}")
    n = X.shape[0]
    if y.shape != (n,):
        raise DataError(f"y must be [n_examples={n}], got shape {y.shape}")
    if n < 2:
        raise DataError(f"need at least 2 examples to fit stumps, got {n}")
    if n >= 2**30:
        raise DataError(f"too many examples for the stump sort ({n})")
    if metric not in ("accuracy", "mcc", "f1", "pearson", "spearman", "r2"):
        raise ConfigError(f"unknown stump metric {metric!r}")
    keys32 = _ordered_int(X)
    if np.any((keys32 & np.int32(0x7F800000)) == np.int32(0x7F800000)):
        raise DataError("X contains NaN or infinite values")
    return keys32


def _targets(y: np.ndarray, regression: bool, metric: str, n_classes: int | None):
    """``(targets [n], number of classes (0 for regression), objective)``: float64 targets,
    or int32 class indices with the objective the metric allows (accuracy where the metric
    has no stump form)."""
    if regression:
        return y.astype(np.float64), 0, "r2"
    yv = y.astype(np.int64)
    if yv.min() < 0:
        raise DataError("class labels must be >= 0 (unlabelled examples, -1, cannot train a stump)")
    C = max(2, int(n_classes or yv.max() + 1))
    objective = metric if (C == 2 and metric in _BINARY_METRICS) else "accuracy"
    if objective != metric:
        logger.debug("stump objective %r not available here; optimising accuracy", metric)
    return yv.astype(np.int32), C, objective


def _best_least_squares(ys: np.ndarray, valid: np.ndarray, sst: float):
    """The least-squares split of each row of targets in value order ``ys [c, n]`` (total
    sum of squares ``sst``): ``(best [c], left mean, right mean, R^2 [c])``; ``best`` is the
    number of examples on the left (``n``: the constant predictor)."""
    c, n = ys.shape
    rows = np.arange(c)
    i_f = np.arange(1, n, dtype=np.float64)[None, :]  # interior split positions i = 1..n-1
    S = np.cumsum(ys, axis=1)  # [c, n]
    T = S[:, -1]
    Si = S[:, :-1]
    gain = Si * Si / i_f + (T[:, None] - Si) ** 2 / (n - i_f)
    b, g = _masked_best(gain, valid, -np.inf)
    const = T * T / n
    use = g > const  # otherwise the constant predictor (best = n)
    best = np.where(use, b + 1, n)
    Sb = np.where(use, Si[rows, b], T)
    nb = best.astype(np.float64)
    mean = T / n
    left = np.where(best > 0, Sb / np.maximum(nb, 1), mean)
    right = np.where(best < n, (T - Sb) / np.maximum(n - nb, 1), mean)
    score = np.where(use, (g - const) / sst, 0.0) if sst > 0 else np.zeros(c)
    return best, left, right, score


def _best_binary(ys: np.ndarray, valid: np.ndarray, objective: str):
    """The best binary split of each row of labels in value order ``ys [c, n]`` for
    ``objective`` (accuracy, f1 or mcc): both orientations (A: 0 left / 1 right, B the
    reverse) and the two constant predictors; ``(best [c], left, right, score [c])``."""
    c, n = ys.shape
    i_int = np.arange(1, n, dtype=np.int64)[None, :]  # interior split positions i = 1..n-1
    i_f = i_int.astype(np.float64)
    c1 = np.cumsum(ys, axis=1, dtype=np.int64)  # positives among the i lowest
    P = int(c1[0, -1])
    c1 = c1[:, :-1]
    if objective == "accuracy":
        gi = i_int - 2 * c1  # A is right (P - c1) + (i - c1) times
        ba, va = _masked_best(gi.copy(), valid, np.iinfo(np.int64).min)
        bb, vb = _masked_best(-gi, valid, np.iinfo(np.int64).min)
        sa, sb = (P + va) / n, (n - P + vb) / n
        c0s, c1s = (n - P) / n, P / n  # all-0 and all-1 predictors
    elif objective == "f1":
        ba, sa = _masked_best(2.0 * (P - c1) / (P + n - i_f), valid, -np.inf)
        bb, sb = _masked_best(2.0 * c1 / (P + i_f), valid, -np.inf)
        c0s, c1s = 0.0, 2.0 * P / (P + n)
    else:  # mcc: TP*TN - FP*FN = P*i - n*c1, denominator sqrt(P (n-P) i (n-i)); B = -A
        if 0 < P < n:
            m = (P * i_f - n * c1) / np.sqrt(float(P) * float(n - P) * i_f * (n - i_f))
        else:
            m = np.zeros(c1.shape)
        ba, sa = _masked_best(m.copy(), valid, -np.inf)
        bb, sb = _masked_best(-m, valid, -np.inf)
        c0s, c1s = 0.0, 0.0
    cand = np.stack([sa, sb, np.full(c, c0s), np.full(c, c1s)])  # [4, c]
    which = cand.argmax(axis=0)
    conds = [which == 0, which == 1, which == 2]
    best = np.select(conds, [ba + 1, bb + 1, n], n)
    left = np.select(conds, [0, 1, 0], 1)
    right = np.select(conds, [1, 0, 0], 1)
    return best, left, right, cand[which, np.arange(c)]


def _best_multiclass(ys: np.ndarray, valid: np.ndarray, C: int):
    """The most accurate split of each row of class indices in value order ``ys [c, n]``,
    each side predicting its majority class: ``(best [c], left, right, accuracy [c])``."""
    c, n = ys.shape
    rows = np.arange(c)
    onehot = np.zeros((c, n, C), dtype=np.int32)
    np.put_along_axis(onehot, ys[:, :, None].astype(np.int64), 1, axis=2)
    cnt = np.cumsum(onehot, axis=1)  # [c, n, C]
    del onehot
    tot = cnt[:, -1, :]  # [c, C]
    cl = cnt[:, :-1, :]
    acc = (cl.max(axis=2) + (tot[:, None, :] - cl).max(axis=2)).astype(np.float64)
    b, g = _masked_best(acc, valid, -np.inf)
    const = tot.max(axis=1).astype(np.float64)
    use = g > const
    best = np.where(use, b + 1, n)
    lc = np.where(use[:, None], cl[rows, b], tot)
    left = lc.argmax(axis=1)
    right = np.where(use, (tot - lc).argmax(axis=1), left)
    return best, left, right, np.where(use, g, const) / n


def _midpoints(keys: np.ndarray, best: np.ndarray) -> np.ndarray:
    """``[c]`` thresholds: the midpoint between the last value on the left and the first on
    the right of each row's split after ``best [c]`` of the sorted ``keys [c, n]`` (``-inf``
    / ``+inf`` for the constant predictors)."""
    n = keys.shape[1]
    rows = np.arange(keys.shape[0])
    lo = _key_to_float(keys[rows, np.clip(best - 1, 0, n - 1)]).astype(np.float64)
    hi = _key_to_float(keys[rows, np.clip(best, 0, n - 1)]).astype(np.float64)
    t = (lo + hi) / 2.0
    t = np.where(best <= 0, -np.inf, t)
    return np.where(best >= n, np.inf, t)


def predict_stumps(fit: StumpFit, X: np.ndarray) -> np.ndarray:
    """Predictions of every stump: ``[n_dims, n_examples]`` for ``X`` ``[n_examples, n_dims]``."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != fit.threshold.shape[0]:
        raise DataError(f"X must be [n_examples, {fit.threshold.shape[0]}], got shape {X.shape}")
    low = fit.threshold[:, None] >= X.T
    return np.where(low, fit.left[:, None], fit.right[:, None])
