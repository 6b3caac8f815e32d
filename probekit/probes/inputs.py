"""Input checks of :class:`~probekit.probes.ProbeEngine` calls: features, labels, column
subsets, penalties and metrics, each refused with an error naming the value at fault."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError
from ..metrics import is_regression_metrics
from .standardize import as_features

__all__ = ["Inputs", "check_C", "check_dims", "check_metrics", "check_targets", "validate"]


@dataclass
class Inputs:
    """Validated inputs of one call: ``X_train [n, D]``, ``dims [B, k]`` and, when scoring,
    ``X_eval [m, D]``; ``classes [K]`` and class indices ``yi [n]`` for classification."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_eval: np.ndarray | None
    y_eval: np.ndarray | None
    dims: np.ndarray
    metrics: tuple[str, ...]
    classes: np.ndarray | None
    yi: np.ndarray | None

    @property
    def n_classes(self) -> int:
        return 1 if self.classes is None else len(self.classes)


def check_C(C) -> float | np.ndarray:
    """``C`` as a positive finite float, or a 1-d float64 array of them."""
    if isinstance(C, (str, bool)):
        raise ConfigError(
            f"C must be a positive finite number or an array of them, got {C!r} "
            "(C='auto' is chosen by probekit.probes.select_C, not by the engine)"
        )
    try:
        arr = np.asarray(C, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"C must be a positive finite number, got {C!r}") from None
    if arr.ndim > 1 or arr.size == 0 or not (np.isfinite(arr).all() and (arr > 0).all()):
        raise ConfigError(f"C must be a positive finite number or a 1-d array of them, got {C!r}")
    return float(arr) if arr.ndim == 0 else arr


def check_dims(dims, D: int) -> np.ndarray:
    """``dims`` as an int64 array ``[B, k]`` (a ``[k]`` row becomes ``[1, k]``) of columns in
    ``[0, D)``."""
    try:
        dims = np.asarray(dims)
    except ValueError:
        raise ConfigError(
            "dims: expected a rectangular int array [B, k] "
            "(all probes of one batch have the same k)"
        ) from None
    if dims.ndim == 1:
        dims = dims[None, :]
    if dims.ndim != 2 or dims.shape[1] == 0 or dims.shape[0] == 0:
        raise ConfigError(
            f"dims: expected an int array [B, k] with B, k >= 1, got shape {dims.shape}"
        )
    if not np.issubdtype(dims.dtype, np.integer):
        raise ConfigError(f"dims: expected integers, got dtype {dims.dtype}")
    if dims.min() < 0 or dims.max() >= D:
        raise ConfigError(
            f"dims: indices must lie in [0, {D}), got range [{dims.min()}, {dims.max()}]"
        )
    return dims.astype(np.int64)


def check_targets(y, n: int, name: str, regression: bool) -> np.ndarray:
    """``y`` as ``[n]`` labels (float64 finite targets for regression)."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(f"{name}: expected shape [{n}], got {y.shape}")
    if regression:
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise DataError(f"{name}: regression targets contain NaN or infinite values")
    return y


def check_metrics(metrics, regression: bool) -> tuple[str, ...]:
    """``metrics`` as a tuple of names fitting the probe kind."""
    metrics = tuple(metrics) if not isinstance(metrics, str) else (metrics,)
    if metrics and is_regression_metrics(metrics) != regression:
        kind = "regression" if regression else "classification"
        raise ConfigError(f"metrics {metrics} do not fit a {kind} probe")
    return metrics


def validate(X_train, y_train, X_eval, y_eval, dims, metrics, regression: bool) -> Inputs:
    """The checked inputs of one engine call (classes and class indices for classification)."""
    X_train = as_features(X_train, "X_train")
    n, D = X_train.shape
    dims = check_dims(dims, D)
    y_train = check_targets(y_train, n, "y_train", regression)
    metrics = tuple(metrics) if not isinstance(metrics, str) else (metrics,)
    if X_eval is not None:
        X_eval = as_features(X_eval, "X_eval")
        if X_eval.shape[1] != D:
            raise DataError(f"X_eval has {X_eval.shape[1]} dims but X_train has {D}")
        y_eval = check_targets(y_eval, X_eval.shape[0], "y_eval", regression)
        metrics = check_metrics(metrics, regression)
    classes = yi = None
    if not regression:
        classes, yi = np.unique(y_train, return_inverse=True)
        if len(classes) < 2:
            raise DataError(
                f"y_train: need at least 2 classes to fit a classifier, "
                f"got {len(classes)} ({classes.tolist()})"
            )
    return Inputs(X_train, y_train, X_eval, y_eval, dims, metrics, classes, yi)
