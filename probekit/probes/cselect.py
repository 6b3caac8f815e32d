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

from ..errors import ConfigError
from .engine import ProbeEngine
from .splits import train_val_split

__all__ = ["AUTO", "DEFAULT_C_GRID", "TIE_TOL", "CSelection", "c_grid", "parse_C", "select_C"]

#: the value of a ``C`` setting that asks for selection on validation
AUTO = "auto"

#: the default grid of ``C="auto"``: 10 values, log-spaced from 1e-4 to 100
DEFAULT_C_GRID: tuple[float, ...] = tuple(float(c) for c in np.logspace(-4, 2, 10))


#: validation scores within ``max(TIE_TOL, 1 / n_val)`` of the best count as tied (then the
#: validation loss decides)
TIE_TOL = 1e-3


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


def _choose(score: np.ndarray, loss: np.ndarray, tol: float = TIE_TOL) -> int:
    """Index of the best ``C``: among the scores within ``tol`` of the highest, the lowest
    loss, then the lowest index (NaN last)."""
    s = np.where(np.isfinite(score), score, -np.inf)
    l = np.where(np.isfinite(loss), loss, np.inf)
    tied = s >= s.max() - tol if np.isfinite(s.max()) else np.ones(len(s), dtype=bool)
    return int(np.lexsort((np.arange(len(s)), l, ~tied))[0])


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
    sc = engine.fit_score(
        X[idx_fit],
        y[idx_fit],
        X[idx_val],
        y[idx_val],
        np.tile(d, (len(g), 1)),  # [G * S, k]: probe g * S + s is dims s at C g
        metrics=metric[:1],
        C=np.repeat(np.asarray(g), S),
    )
    with np.errstate(all="ignore"):
        score = np.nanmean(sc[metric[0]].reshape(len(g), S), axis=1)
        loss = np.nanmean(sc["loss"].reshape(len(g), S), axis=1)
    if chosen_on is None:
        full = S == 1 and d.shape[1] == X.shape[1] and len(np.unique(d)) == X.shape[1]
        chosen_on = "full" if full else ("dims" if S == 1 else "sample")
    best = _choose(score, loss, max(TIE_TOL, 1.0 / len(idx_val)))
    return CSelection(
        C=g[best],
        grid=g,
        val_scores=score,
        val_loss=loss,
        metric=metric[0],
        chosen_on=chosen_on,
        n_probes=S,
        n_fit=len(idx_fit),
        n_val=len(idx_val),
    )
