"""The seeded validation split of train that every selection uses (:func:`train_val_split`)."""

from __future__ import annotations

import logging
import math

import numpy as np

from ..errors import ConfigError, DataError

__all__ = ["train_val_split"]

logger = logging.getLogger(__name__)


def train_val_split(
    y, val_fraction: float = 0.2, seed: int = 0, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of ``range(len(y))`` into (train, validation) index arrays, both sorted.

    Classification labels are stratified by class; regression targets (float ``y``) are
    stratified by quintile bins. Use the validation part for selection and report on eval.

    Args:
        y: ``[n]`` labels or targets.
        val_fraction: fraction of examples in the validation part, in (0, 1).
        seed: random seed (the split depends on nothing else).
        stratify: keep class (or quintile) proportions equal in both parts.

    Returns:
        ``(idx_train [n - n_val], idx_val [n_val])`` int64.
    """
    from sklearn.model_selection import train_test_split

    y = np.asarray(y)
    if y.ndim != 1 or len(y) < 2:
        raise DataError(f"train_val_split: need y of shape [n] with n >= 2, got {y.shape}")
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must lie in (0, 1), got {val_fraction!r}")
    idx = np.arange(len(y))
    strata = None
    if stratify:
        if np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y, 1) == 0):
            edges = np.quantile(y, [0.2, 0.4, 0.6, 0.8])
            strata = np.searchsorted(edges, y, side="right")
        else:
            strata = y
        _, counts = np.unique(strata, return_counts=True)
        n_val = math.ceil(val_fraction * len(y))
        if counts.min() < 2 or n_val < len(counts) or len(y) - n_val < len(counts):
            logger.warning(
                "train_val_split: too few examples per stratum to stratify; splitting at random"
            )
            strata = None
    tr, va = train_test_split(
        idx, test_size=val_fraction, random_state=seed, shuffle=True, stratify=strata
    )
    return np.sort(tr).astype(np.int64), np.sort(va).astype(np.int64)
