"""GLUE metrics: accuracy, F1, Matthews correlation, Pearson and Spearman correlation.

Two entry points with the same names and the same values:

* :func:`compute_metrics` scores one prediction vector with scikit-learn / scipy (the
  reference implementation);
* :func:`batch_metrics` scores ``B`` prediction vectors at once, vectorised over the batch
  (confusion counts for the classification metrics, centred dot products of ranks for the
  correlations). It is tested equal to :func:`compute_metrics`.

Metric values are fractions (accuracy 0.873; MCC and correlations in ``[-1, 1]``). The metric
names of a task come from its :class:`~probekit.taskspec.TaskSpec` (``task.metrics``, the first
being the primary one).

Conventions, matching scikit-learn / scipy:

* ``f1`` is binary F1 of the positive class ``1`` (GLUE's MRPC and QQP; labels must be 0/1);
  it is 0 when there are no predicted and no true positives.
* Classification labels may be any sortable values (ints, strings).
* ``mcc`` is 0 when its denominator is 0 (a constant prediction or constant truth).
* ``pearson`` / ``spearman`` are NaN when the predictions or the truth are constant.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from .errors import ConfigError
from .taskspec import TaskSpec, get_task

__all__ = [
    "CLASSIFICATION_METRICS",
    "METRICS",
    "REGRESSION_METRICS",
    "batch_metrics",
    "compute_metrics",
    "confusion_metrics",
    "is_regression_metrics",
    "metric_names",
]

CLASSIFICATION_METRICS = ("accuracy", "f1", "mcc")
REGRESSION_METRICS = ("pearson", "spearman")
METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS


def metric_names(task: TaskSpec | str) -> tuple[str, ...]:
    """The official GLUE metric names of ``task`` (a :class:`~probekit.taskspec.TaskSpec` or
    a task name), primary metric first: ``("mcc",)`` for CoLA, ``("f1", "accuracy")`` for MRPC.
    """
    if isinstance(task, str):
        task = get_task(task)
    return tuple(task.metrics)


def _check_names(names: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    if not names:
        raise ConfigError("metrics: at least one metric name is needed")
    bad = [m for m in names if m not in METRICS]
    if bad:
        raise ConfigError(f"metrics: unknown metric(s) {bad}; known: {', '.join(METRICS)}")
    return names


def is_regression_metrics(names: Sequence[str] | str) -> bool:
    """True when all ``names`` are regression metrics, False when all are classification
    metrics; raises :class:`ConfigError` for a mixture."""
    names = _check_names(names)
    reg = [m in REGRESSION_METRICS for m in names]
    if all(reg):
        return True
    if not any(reg):
        return False
    raise ConfigError(f"metrics: cannot mix classification and regression metrics: {names}")


def compute_metrics(names: Sequence[str] | str, y_true, y_pred) -> dict[str, float]:
    """Score one prediction vector with scikit-learn / scipy.

    Args:
        names: metric names (see :data:`METRICS`).
        y_true: ``[n]`` true labels (int) or targets (float).
        y_pred: ``[n]`` predicted labels or values.

    Returns:
        ``{name: value}`` as Python floats.
    """
    from scipy import stats
    from sklearn import metrics as skm

    names = _check_names(names)
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise ConfigError(
            f"compute_metrics: y_true {y_true.shape} and y_pred {y_pred.shape} "
            "must be equal 1-d shapes"
        )
    out: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m in names:
            if m == "accuracy":
                v = skm.accuracy_score(y_true, y_pred)
            elif m == "f1":
                v = skm.f1_score(y_true, y_pred, pos_label=1, average="binary", zero_division=0.0)
            elif m == "mcc":
                v = skm.matthews_corrcoef(y_true, y_pred)
            elif m == "pearson":
                v = stats.pearsonr(y_pred.astype(np.float64), y_true.astype(np.float64))[0]
            else:  # spearman
                v = stats.spearmanr(y_pred, y_true)[0]
            out[m] = float(v)
    return out


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a [B, n]`` with ``b [n]`` (float64); NaN when
    either is constant."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean()
    num = a @ b
    den = np.sqrt((a * a).sum(axis=1) * (b @ b))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    # constant rows: tiny residual variance from rounding must still count as constant
    r[den <= 1e-300] = np.nan
    return np.clip(r, -1.0, 1.0)


def batch_metrics(names: Sequence[str] | str, y_true, y_pred) -> dict[str, np.ndarray]:
    """Score ``B`` prediction vectors at once; equal to :func:`compute_metrics` row by row.

    Args:
        names: metric names (see :data:`METRICS`).
        y_true: ``[n]`` true labels (non-negative ints) or targets (float).
        y_pred: ``[B, n]`` predicted labels (classification) or values (regression).

    Returns:
        ``{name: [B] float64 array}``.
    """
    names = _check_names(names)
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == 1:
        y_pred = y_pred[None, :]
    if y_true.ndim != 1 or y_pred.ndim != 2 or y_pred.shape[1] != y_true.shape[0]:
        raise ConfigError(
            "batch_metrics: need y_true [n] and y_pred [B, n]; "
            f"got {y_true.shape} and {y_pred.shape}"
        )
    B = y_pred.shape[0]
    out: dict[str, np.ndarray] = {}
    cls_names = [m for m in names if m in CLASSIFICATION_METRICS]
    if cls_names:
        labels = np.union1d(np.unique(y_true), np.unique(y_pred))
        K = len(labels)
        yt = np.searchsorted(labels, y_true).astype(np.int64)
        yp = np.searchsorted(labels, y_pred).astype(np.int64)
        # confusion counts [B, K, K] (true, pred) with one bincount
        flat = (np.arange(B, dtype=np.int64)[:, None] * (K * K) + yt[None, :] * K + yp).ravel()
        cm = np.bincount(flat, minlength=B * K * K).reshape(B, K, K).astype(np.float64)
        out.update(confusion_metrics(cls_names, cm, labels))
    for m in names:
        if m == "pearson":
            out[m] = _pearson_rows(y_pred.astype(np.float64), y_true.astype(np.float64))
        elif m == "spearman":
            from scipy.stats import rankdata

            out[m] = _pearson_rows(
                rankdata(y_pred, axis=1, method="average"),
                rankdata(y_true, method="average").astype(np.float64),
            )
    return {m: out[m] for m in names}


def confusion_metrics(names: Sequence[str] | str, cm, labels) -> dict[str, np.ndarray]:
    """Classification metrics from confusion counts.

    Args:
        names: classification metric names (``accuracy``, ``f1``, ``mcc``).
        cm: ``[B, K, K]`` counts, ``cm[b, true, pred]``.
        labels: ``[K]`` the label value of each row/column (sorted); ``f1`` needs them to be
            a subset of ``{0, 1}`` (positive class 1).

    Returns:
        ``{name: [B] float64}``, equal to scikit-learn's values for the same predictions.
    """
    names = _check_names(names)
    cm = np.asarray(cm, dtype=np.float64)
    labels = np.asarray(labels)
    B, K, _ = cm.shape
    n = cm.sum(axis=(1, 2))
    out: dict[str, np.ndarray] = {}
    correct = np.trace(cm, axis1=1, axis2=2)
    for m in names:
        if m == "accuracy":
            out[m] = correct / n
        elif m == "f1":
            if K > 2 or not set(labels.tolist()) <= {0, 1}:
                raise ConfigError(
                    f"metric 'f1' is binary F1 of class 1; labels are {labels.tolist()[:10]}"
                )
            pos = int(np.searchsorted(labels, 1))
            if pos < K and labels[pos] == 1:
                neg = 1 - pos if K == 2 else None
                tp = cm[:, pos, pos]
                fp = cm[:, neg, pos] if neg is not None else np.zeros(B)
                fn = cm[:, pos, neg] if neg is not None else np.zeros(B)
            else:
                tp = fp = fn = np.zeros(B)
            den = 2 * tp + fp + fn
            with np.errstate(invalid="ignore", divide="ignore"):
                out[m] = np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0)
        elif m == "mcc":  # multiclass form of sklearn.metrics.matthews_corrcoef
            t_sum = cm.sum(axis=2)  # [B, K] true counts
            p_sum = cm.sum(axis=1)  # [B, K] predicted counts
            cov_ytyp = correct * n - (t_sum * p_sum).sum(axis=1)
            cov_ypyp = n * n - (p_sum * p_sum).sum(axis=1)
            cov_ytyt = n * n - (t_sum * t_sum).sum(axis=1)
            den = cov_ytyt * cov_ypyp
            with np.errstate(invalid="ignore", divide="ignore"):
                out[m] = np.where(den > 0, cov_ytyp / np.sqrt(np.where(den > 0, den, 1)), 0.0)
        else:
            raise ConfigError(f"confusion_metrics: {m!r} is not a classification metric")
    return out
