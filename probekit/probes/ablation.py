"""Ablations of a selected dimension set: is the task's information only there?

Two questions about a set ``S`` of dimensions, each answered with the same probe as
everywhere else (:class:`probekit.probes.ProbeEngine`):

* **without**: a probe on every dimension *except* ``S``. A score near the full-width one
  means the information is also elsewhere (copied or spread).
* **erased**: a probe on every dimension after everything linearly correlated with ``X_S``
  is removed from the representation by least-squares concept erasure (LEACE, Belrose et
  al. 2023, with the concept ``Z = X_S``), fitted from the training statistics. After
  erasure no dimension covaries with the original ``X_S`` on the training set, and the
  change to the representation is the smallest that achieves this (in the whitened norm).
  A score that falls to the baseline means the task information lives in the directions of
  ``S`` (and their linear correlates); one that stays up means it lives elsewhere too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .standardize import row_blocks

__all__ = ["SetEraser", "ablate", "fit_set_eraser"]


@dataclass(frozen=True)
class SetEraser:
    """The LEACE eraser of the dimensions ``dims``: ``x' = x - M (x - mean)``.

    Attributes:
        dims: ``[k]`` the erased dimensions.
        mean: ``[D]`` training mean.
        M: ``[D, D]`` the erasure map ``W^+ P W`` (``W`` whitening, ``P`` the projection on the
            whitened cross-covariance with ``X_S``).
    """

    dims: np.ndarray
    mean: np.ndarray
    M: np.ndarray

    def transform(self, X: np.ndarray, *, rows_per_chunk: int | None = None) -> np.ndarray:
        """``[n, D]`` float32 erased copy of ``X [n, D]`` (``X`` is not modified)."""
        out = np.empty(X.shape, dtype=np.float32)
        for i, j in row_blocks(len(X), X.shape[1], rows_per_chunk):
            Xc = X[i:j].astype(np.float64) - self.mean
            out[i:j] = Xc - Xc @ self.M.T + self.mean
        return out


def _covariance(X: np.ndarray, rows_per_chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    n, D = X.shape
    s1, s2 = np.zeros(D), np.zeros((D, D))
    for i, j in row_blocks(n, D, rows_per_chunk):
        Xc = X[i:j].astype(np.float64)
        s1 += Xc.sum(0)
        s2 += Xc.T @ Xc
    mean = s1 / n
    return mean, s2 / n - np.outer(mean, mean)


def fit_set_eraser(X_train: np.ndarray, dims: Sequence[int] | np.ndarray) -> SetEraser:
    """Fit the LEACE eraser of ``X_train[:, dims]`` from the training statistics.

    Args:
        X_train: ``[n, D]`` training features (not modified).
        dims: ``[k]`` the dimensions whose information is erased.
    """
    dims = np.asarray(dims, dtype=np.int64)
    D = X_train.shape[1]
    if dims.ndim != 1 or len(dims) == 0 or dims.min() < 0 or dims.max() >= D:
        raise ConfigError(f"ablation: dims must be a non-empty list of indices < {D}, got {dims}")
    mean, cov = _covariance(X_train)
    evals, evecs = np.linalg.eigh(cov)
    keep = evals > evals.max() * 1e-10
    inv_sqrt = (evecs[:, keep] / np.sqrt(evals[keep])) @ evecs[:, keep].T  # W
    sqrt = (evecs[:, keep] * np.sqrt(evals[keep])) @ evecs[:, keep].T  # W^+
    cross = inv_sqrt @ cov[:, dims]  # W Sigma_XZ, [D, k]
    q, r = np.linalg.qr(cross)
    rank = int((np.abs(np.diag(r)) > np.abs(r).max() * 1e-10).sum())
    q = q[:, :rank]
    M = sqrt @ (q @ q.T) @ inv_sqrt
    return SetEraser(dims, mean, M)


def ablate(
    engine,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_eval: np.ndarray,
    y_eval: np.ndarray,
    dims: Sequence[int] | np.ndarray,
    *,
    metrics: Sequence[str] = ("accuracy",),
) -> dict[str, dict[str, float]]:
    """Scores of the probe on all dimensions except ``dims`` and on all after erasing them.

    Returns:
        ``{"without": {metric: value, "loss": ...}, "erased": {...}}`` scored on eval.
    """
    dims = np.asarray(dims, dtype=np.int64)
    D = X_train.shape[1]
    rest = np.setdiff1d(np.arange(D), dims)
    out: dict[str, dict[str, float]] = {}
    if len(rest):
        sc = engine.fit_score(X_train, y_train, X_eval, y_eval, rest[None, :], metrics)
        out["without"] = {m: float(v[0]) for m, v in sc.items()}
    eraser = fit_set_eraser(X_train, dims)
    Xt, Xe = eraser.transform(X_train), eraser.transform(X_eval)
    sc = engine.fit_score(Xt, y_train, Xe, y_eval, np.arange(D)[None, :], metrics)
    out["erased"] = {m: float(v[0]) for m, v in sc.items()}
    return out
