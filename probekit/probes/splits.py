"""The seeded validation split of train that every selection uses (:func:`train_val_split`).

The split is scikit-learn's ``train_test_split(..., shuffle=True, stratify=...)`` (its
``StratifiedShuffleSplit`` / ``ShuffleSplit`` draw, step for step on a NumPy
``RandomState``), written out here for two reasons: importing scikit-learn costs about 1.2 s
of every command's start-up (scipy.stats and pandas come with it), and a split that must
depend on nothing but the seed should not change when scikit-learn changes. A test pins it
to scikit-learn's output over many label sets, fractions and seeds.
"""

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
    y = np.asarray(y)
    if y.ndim != 1 or len(y) < 2:
        raise DataError(f"train_val_split: need y of shape [n] with n >= 2, got {y.shape}")
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must lie in (0, 1), got {val_fraction!r}")
    n = len(y)
    n_val = math.ceil(val_fraction * n)
    if n_val >= n:
        raise ConfigError(f"val_fraction={val_fraction!r} leaves no training examples out of {n}")
    strata = _strata(y, n_val) if stratify else None
    rng = np.random.RandomState(seed)
    if strata is None:
        perm = rng.permutation(n)
        va, tr = perm[:n_val], perm[n_val:]
    else:
        tr, va = _stratified_draw(strata, n - n_val, n_val, rng)
    return np.sort(tr).astype(np.int64), np.sort(va).astype(np.int64)


def _strata(y: np.ndarray, n_val: int) -> np.ndarray | None:
    """The stratum of each example (the class; a quintile bin for float targets), or None
    (with a warning) when some stratum is too small to appear on both sides."""
    if np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y, 1) == 0):
        edges = np.quantile(y, [0.2, 0.4, 0.6, 0.8])
        strata = np.searchsorted(edges, y, side="right")
    else:
        strata = y
    _, counts = np.unique(strata, return_counts=True)
    if counts.min() < 2 or n_val < len(counts) or len(y) - n_val < len(counts):
        logger.warning(
            "train_val_split: too few examples per stratum to stratify; splitting at random"
        )
        return None
    return strata


def _stratified_draw(
    strata: np.ndarray, n_train: int, n_val: int, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """``StratifiedShuffleSplit``'s draw: per-stratum counts by the approximate mode of the
    multivariate hypergeometric, then a permutation of each stratum's members."""
    _, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    members = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    n_tr = _approximate_mode(counts, n_train, rng)
    n_va = _approximate_mode(counts - n_tr, n_val, rng)
    tr, va = [], []
    for i, idx in enumerate(members):
        perm = idx.take(rng.permutation(counts[i]), mode="clip")
        tr.append(perm[: n_tr[i]])
        va.append(perm[n_tr[i] : n_tr[i] + n_va[i]])
    return np.concatenate(tr), np.concatenate(va)


def _approximate_mode(counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Draws per class: the floor of the proportional share, the remainder given to the
    largest fractional parts (ties broken at random), as ``sklearn.utils.extmath``."""
    continuous = counts / counts.sum() * n_draws
    floored = np.floor(continuous)
    need = int(n_draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need)
            floored[rng.choice(inds, size=add_now, replace=False)] += 1
            need -= add_now
            if need == 0:
                break
    return floored.astype(int)
