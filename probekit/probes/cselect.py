"""Regularisation chosen on validation: ``C="auto"``.

:func:`select_C` fits a log-spaced grid of ``C`` values (default :data:`DEFAULT_C_GRID`,
``np.logspace(-4, 2, 10)``) in ONE batched engine call (a per-probe penalty, ``C [G * S]``)
on the fitting part of the seeded validation split of train (:func:`train_val_split`, the
split every search uses), scores each on the validation part, and chooses the ``C`` with the
best primary metric; ties (scores within ``max(TIE_TOL, 1 / n_val)`` of the best: one
validation example's worth of accuracy, so that neither a single example nor rounding noise
in a metric flat in ``C``, like Pearson's r of ridge, moves ``C`` by decades) go to the
lower validation loss, then to the smaller ``C``. The caller then refits on all of train with
the chosen ``C``. Ridge likewise (``alpha = 1 / C``).

Wide logistic probes (at least :data:`WIDE_K` columns) are fitted for the choice by the
matrix-free truncated Newton of :mod:`.newton_cg` (all ``C`` at once, in the eigenbasis of
the features, to a loose tolerance: the choice needs validation scores and losses, not 1e-8
coefficients) and scored here; narrower probes by the engine's exact batched Newton. The
refit at the chosen ``C`` is the caller's, on the engine, either way.

``dims`` is one probe ``[k]`` (``chosen_on`` ``"full"`` at full width, else ``"dims"``), or a
set of probes ``[S, k]`` (e.g. a fixed random sample of a search's candidates,
``"sample"``) whose validation scores and losses are averaged per ``C``.

:func:`parse_C` is the one reader of a ``C`` setting (``"auto"`` or a positive number).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from ..metrics import batch_metrics
from .engine import ProbeEngine
from .newton_cg import fit_c_grid
from .splits import train_val_split
from .standardize import standardization_stats, standardized_columns

__all__ = [
    "AUTO",
    "DEFAULT_C_GRID",
    "TIE_TOL",
    "WIDE_K",
    "CSelection",
    "c_grid",
    "parse_C",
    "select_C",
]

#: the value of a ``C`` setting that asks for selection on validation
AUTO = "auto"

#: the default grid of ``C="auto"``: 10 values, log-spaced from 1e-4 to 100
DEFAULT_C_GRID: tuple[float, ...] = tuple(float(c) for c in np.logspace(-4, 2, 10))


#: validation scores within ``max(TIE_TOL, 1 / n_val)`` of the best count as tied (then the
#: validation loss decides)
TIE_TOL = 1e-3

#: logistic probes of at least this many columns choose ``C`` with :mod:`.newton_cg`
#: (below it the engine's dense Newton, ``2 n k^2`` per pass, is the faster)
WIDE_K = 64

#: the Newton-decrement tolerance of those fits (the predicted gap of the mean training
#: log-loss to its optimum)
WIDE_TOL = 1e-6


def parse_C(value: Any) -> float | str:
    """A ``C`` setting: ``"auto"`` (any case) or a positive finite number (also as a string,
    as the command line passes it). Raises :class:`ConfigError` naming the value otherwise."""
    if isinstance(value, str):
        if value.strip().lower() == AUTO:
            return AUTO
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"C must be 'auto' or a positive number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ConfigError(f"C must be 'auto' or a positive number, got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ConfigError(f"C must be 'auto' or a positive finite number, got {value!r}")
    return float(value)


def c_grid(grid: Sequence[float] | None = None) -> tuple[float, ...]:
    """The grid of ``C="auto"`` as a sorted tuple of distinct positive floats (default
    :data:`DEFAULT_C_GRID`)."""
    if grid is None:
        return DEFAULT_C_GRID
    try:
        g = np.unique(np.asarray(list(grid), dtype=np.float64))
    except (TypeError, ValueError):
        raise ConfigError(f"C grid: expected positive numbers, got {grid!r}") from None
    if g.size == 0 or not (np.isfinite(g).all() and (g > 0).all()):
        raise ConfigError(f"C grid: expected one or more positive finite numbers, got {grid!r}")
    return tuple(float(c) for c in g)


@dataclass(frozen=True)
class CSelection:
    """The outcome of :func:`select_C`.

    Attributes:
        C: the chosen ``C``.
        grid: ``[G]`` the ``C`` values tried, ascending.
        val_scores: ``[G]`` validation primary metric per ``C`` (mean over the probes).
        val_loss: ``[G]`` validation log-loss (ridge: MSE) per ``C`` (mean over the probes).
        metric: the primary metric.
        chosen_on: ``"full"`` (the full-width probe), ``"dims"`` (one given probe),
            ``"sample"`` (several probes, averaged) or ``"leader"`` (set by a caller that
            passed a candidate set's leader).
        n_probes: probes per ``C`` the choice averaged over.
        n_fit, n_val: sizes of the fitting and validation parts.
    """

    C: float
    grid: tuple[float, ...]
    val_scores: np.ndarray
    val_loss: np.ndarray
    metric: str
    chosen_on: str
    n_probes: int
    n_fit: int
    n_val: int

    @property
    def index(self) -> int:
        """Position of :attr:`C` in :attr:`grid`."""
        return self.grid.index(self.C)

    @classmethod
    def from_curve(
        cls,
        grid: Sequence[float],
        val_scores,
        val_loss,
        *,
        metric: str,
        chosen_on: str,
        n_probes: int,
        n_fit: int,
        n_val: int,
    ) -> CSelection:
        """The selection from a validation curve ``val_scores [G]`` and ``val_loss [G]`` over
        ``grid [G]`` (ascending): the best score, scores within ``max(TIE_TOL, 1 / n_val)``
        counting as tied; ties go to the lowest loss, then to the smallest ``C`` (NaN
        last). The one tie rule of every backend."""
        score = np.asarray(val_scores, dtype=np.float64)
        loss = np.asarray(val_loss, dtype=np.float64)
        s = np.where(np.isfinite(score), score, -np.inf)
        lo = np.where(np.isfinite(loss), loss, np.inf)
        tol = max(TIE_TOL, 1.0 / n_val)
        tied = s >= s.max() - tol if np.isfinite(s.max()) else np.ones(len(s), dtype=bool)
        best = int(np.lexsort((np.arange(len(s)), lo, ~tied))[0])
        return cls(
            C=float(grid[best]),
            grid=tuple(float(c) for c in grid),
            val_scores=score,
            val_loss=loss,
            metric=metric,
            chosen_on=chosen_on,
            n_probes=n_probes,
            n_fit=n_fit,
            n_val=n_val,
        )

    def record(self) -> dict[str, Any]:
        """The JSON block results carry: ``{"mode": "auto", "chosen", "chosen_on", "grid",
        "val_curve" (primary metric per C), "val_loss", "metric", "n_probes", "n_fit",
        "n_val"}``."""
        return {
            "mode": AUTO,
            "chosen": self.C,
            "chosen_on": self.chosen_on,
            "grid": list(self.grid),
            "val_curve": [float(v) if np.isfinite(v) else None for v in self.val_scores],
            "val_loss": [float(v) if np.isfinite(v) else None for v in self.val_loss],
            "metric": self.metric,
            "n_probes": self.n_probes,
            "n_fit": self.n_fit,
            "n_val": self.n_val,
        }


def select_C(
    engine: ProbeEngine,
    X_train,
    y_train,
    dims,
    *,
    grid: Sequence[float] | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    metrics: Sequence[str] = ("accuracy",),
    split: tuple[np.ndarray, np.ndarray] | None = None,
    chosen_on: str | None = None,
) -> CSelection:
    """Choose ``C`` for probes on ``dims`` on a validation split of train.

    Args:
        engine: the probe engine (its kind, device and memory budget; its own ``C`` is
            ignored).
        X_train: ``[n_examples, n_dims]`` training features (never modified).
        y_train: ``[n_examples]`` labels or targets.
        dims: ``[k]`` one probe, or ``[S, k]`` probes whose validation curves are averaged.
        grid: the ``C`` values (default :data:`DEFAULT_C_GRID`).
        val_fraction, seed: the :func:`train_val_split` (ignored when ``split`` is given).
        metrics: metric names; the first decides.
        split: ``(idx_fit, idx_val)`` to use instead of a fresh split (a search's own).
        chosen_on: the label recorded (default ``"full"``, ``"dims"`` or ``"sample"``).

    Returns:
        :class:`CSelection`; refit on all of train with ``.C``.
    """
    g = c_grid(grid)
    X = np.asarray(X_train)
    y = np.asarray(y_train)
    d = np.asarray(dims)
    if d.ndim == 1:
        d = d[None, :]
    if d.ndim != 2 or d.size == 0:
        raise ConfigError(f"select_C: dims must be [k] or [S, k], got shape {d.shape}")
    metric = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    if not metric:
        raise ConfigError("select_C: metrics is empty; the first metric decides")
    idx_fit, idx_val = split if split is not None else train_val_split(y, val_fraction, seed)
    S = len(d)
    y_fit = y[idx_fit]
    if not engine.regression and d.shape[1] >= WIDE_K and len(np.unique(y_fit)) >= 2:
        per = [_wide_curve(engine, X, y, idx_fit, idx_val, row, g, metric[0]) for row in d]
        sc = {metric[0]: np.stack([p[0] for p in per], 1), "loss": np.stack([p[1] for p in per], 1)}
    else:
        fs = engine.fit_score(
            X[idx_fit],
            y_fit,
            X[idx_val],
            y[idx_val],
            np.tile(d, (len(g), 1)),  # [G * S, k]: probe g * S + s is dims s at C g
            metrics=metric[:1],
            C=np.repeat(np.asarray(g), S),
        )
        sc = {key: fs[key].reshape(len(g), S) for key in (metric[0], "loss")}
    with np.errstate(all="ignore"):
        score = np.nanmean(sc[metric[0]], axis=1)
        loss = np.nanmean(sc["loss"], axis=1)
    if chosen_on is None:
        full = S == 1 and d.shape[1] == X.shape[1] and len(np.unique(d)) == X.shape[1]
        chosen_on = "full" if full else ("dims" if S == 1 else "sample")
    return CSelection.from_curve(
        g,
        score,
        loss,
        metric=metric[0],
        chosen_on=chosen_on,
        n_probes=S,
        n_fit=len(idx_fit),
        n_val=len(idx_val),
    )


def _wide_curve(
    engine: ProbeEngine,
    X: np.ndarray,
    y: np.ndarray,
    idx_fit: np.ndarray,
    idx_val: np.ndarray,
    cols: np.ndarray,
    grid: tuple[float, ...],
    metric: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Validation ``metric`` and mean log-loss ``[G]`` of the logistic probe on ``cols [k]``
    at each ``C`` of ``grid``, fitted by :func:`.newton_cg.fit_c_grid` on ``X[idx_fit]``
    (standardised on it, as the engine does). An eval label the fit part never showed counts
    as an error and is left out of the loss, as in the engine."""
    dev = engine.device
    Xf = X[idx_fit]
    cols = np.asarray(cols, dtype=np.int64)
    mean, scale = standardization_stats(Xf[:, cols])
    mean_d, scale_d = np.zeros(X.shape[1]), np.ones(X.shape[1])
    mean_d[cols], scale_d[cols] = mean, scale
    classes, yi = np.unique(y[idx_fit], return_inverse=True)
    Xt = standardized_columns(Xf, cols, mean_d, scale_d, dev).T.contiguous()  # [n_fit, k]
    fit = fit_c_grid(Xt, yi, len(classes), np.asarray(grid), tol=WIDE_TOL)
    Xv = standardized_columns(X[idx_val], cols, mean_d, scale_d, dev)  # [k, n_val]
    W = torch.as_tensor(fit.coef, dtype=torch.float32, device=dev)  # [G, K', k]
    b = torch.as_tensor(fit.intercept, dtype=torch.float32, device=dev)
    Z = torch.einsum("gck,kn->gnc", W, Xv) + b[:, None, :]  # [G, n_val, K']
    if len(classes) == 2:
        Z = torch.cat([torch.zeros_like(Z), Z], 2)
    yv = y[idx_val]
    pos = np.searchsorted(classes, yv)
    known = (pos < len(classes)) & (classes[np.minimum(pos, len(classes) - 1)] == yv)
    lab = torch.as_tensor(np.where(known, pos, 0), device=dev)
    ll = torch.logsumexp(Z, 2) - Z.gather(2, lab[None, :, None].expand(len(grid), -1, 1))[..., 0]
    kn = torch.as_tensor(known, device=dev)
    loss = ll[:, kn].sum(1, dtype=torch.float64) / max(int(known.sum()), 1)
    pred = classes[Z.argmax(2).cpu().numpy()]
    return batch_metrics((metric,), yv, pred)[metric], loss.cpu().numpy()
