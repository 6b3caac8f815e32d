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
refit at the chosen ``C`` is the caller's: :func:`refit_wide` fits a wide logistic probe on
all of train by the same Newton-CG to the float32 floor (in the selection's eigenbasis, no
second eigendecomposition) and scores it on eval as the engine's ``fit_score`` does; other
probes go to the engine.

``dims`` is one probe ``[k]`` (``chosen_on`` ``"full"`` at full width, else ``"dims"``), or a
set of probes ``[S, k]`` (e.g. a fixed random sample of a search's candidates,
``"sample"``) whose validation scores and losses are averaged per ``C``.

:func:`parse_C` is the one reader of a ``C`` setting (``"auto"`` or a positive number).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from ..metrics import batch_metrics
from .engine import ProbeEngine
from .newton_cg import fit_c_grid
from .results import FitStats, ProbeScores
from .splits import train_val_split
from .standardize import standardization_stats, standardized_columns

__all__ = [
    "AUTO",
    "DEFAULT_C_GRID",
    "REFIT_TOL",
    "REUSE_BASIS_C",
    "REUSE_ROWS_PER_DIM",
    "TIE_TOL",
    "WIDE_K",
    "CSelection",
    "WideStart",
    "c_grid",
    "parse_C",
    "refit_wide",
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

#: the tolerance of :func:`refit_wide` (the float32 floor of the objective stops it first)
REFIT_TOL = 1e-10

#: :func:`refit_wide` reuses the selection's eigenbasis up to this ``C``: there the penalty
#: keeps the Hessian near diagonal in it (CoLA MiniLM, 1,000 examples: 14 ms against 24 ms
#: with a fresh eigendecomposition at C = 1e-4; above C = 1 the fresh basis is the faster)
REUSE_BASIS_C = 1.0

#: ... and at every ``C`` when the fitting part had at least this many examples per column:
#: its Gram matrix is then close to all of train's, and the saved ``2 n k^2`` product and
#: eigendecomposition outweigh a few more CG iterations (C = 100: MiniLM SST-2 10,000 x 384
#: 150 against 178 ms, a 768-dimension layer 10,000 x 768 559 against 731 ms; CoLA 800 x 384,
#: 2 per column, 60 against 50 ms)
REUSE_ROWS_PER_DIM = 8


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
        warm: a wide single probe's eigenbasis on the fitting part (:class:`WideStart`),
            for :func:`refit_wide`; None otherwise (not part of the record).
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
    warm: WideStart | None = field(default=None, repr=False, compare=False)

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
        warm: WideStart | None = None,
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
            warm=warm,
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
    warm = None
    if not engine.regression and d.shape[1] >= WIDE_K and len(np.unique(y_fit)) >= 2:
        per = [_wide_curve(engine, X, y, idx_fit, idx_val, row, g, metric[0]) for row in d]
        sc = {metric[0]: np.stack([p[0] for p in per], 1), "loss": np.stack([p[1] for p in per], 1)}
        warm = per[0][2] if S == 1 else None
    else:
        # the used columns first, then the rows (not a row copy of every column)
        u, inv = np.unique(d, return_inverse=True)
        Xu = X[:, u] if len(u) < X.shape[1] else X
        fs = engine.fit_score(
            Xu[idx_fit],
            y_fit,
            Xu[idx_val],
            y[idx_val],
            np.tile(inv.reshape(d.shape), (len(g), 1)),  # [G * S, k]: dims s at C g
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
        warm=warm,
    )


def refit_wide(
    engine: ProbeEngine,
    X_train,
    y_train,
    X_eval,
    y_eval,
    dims,
    C: float,
    *,
    metrics: Sequence[str] = ("accuracy",),
    selection: CSelection | None = None,
    predict: bool = False,
) -> ProbeScores | tuple[ProbeScores, np.ndarray]:
    """The refit at the chosen ``C`` of one probe on all of train, scored on eval: what
    ``engine.fit_score(X_train, y_train, X_eval, y_eval, [dims], metrics, C=C)`` returns (the
    same objective, standardisation and scores), for wide logistic probes (at least
    :data:`WIDE_K` columns) by :func:`.newton_cg.fit_c_grid` at :data:`REFIT_TOL` (to the
    float32 floor) instead of the engine's dense Newton; other probes by the engine.

    Args:
        engine: the probe engine (kind and device; its own ``C`` is ignored).
        X_train: ``[n, D]``; y_train: ``[n]``; X_eval: ``[m, D]``; y_eval: ``[m]``.
        dims: ``[k]`` the probe's columns.
        C: the penalty (e.g. :attr:`CSelection.C`).
        metrics: metric names.
        selection: the :func:`select_C` result of this probe on a split of this train: the
            fit starts from its solution at ``C`` (the same optimum, fewer Newton steps),
            and runs in the eigenbasis of its fitting part (no second eigendecomposition)
            when that had at least ``k`` examples and ``C`` is at most :data:`REUSE_BASIS_C`
            or it had :data:`REUSE_ROWS_PER_DIM` examples per column.
        predict: also return the probe's eval predictions ``[m]`` (labels or values), from
            the same fit.

    Returns:
        :class:`ProbeScores` ``{metric: [1], "loss": [1]}`` with its :class:`FitStats`
        (``n_iter``: Newton steps, ``converged``); with ``predict``, ``(scores, pred)``.
    """
    t0 = time.perf_counter()
    X, y = np.asarray(X_train), np.asarray(y_train)
    d = np.asarray(dims, dtype=np.int64).reshape(-1)
    names = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    if engine.regression or len(d) < WIDE_K or len(np.unique(y)) < 2:
        sc = engine.fit_score(X, y, X_eval, y_eval, d[None, :], metrics=names, C=C)
        if not predict:
            return sc
        return sc, engine.fit(X, y, d[None, :], C=C).predict(X_eval, device=engine.device)[0]
    warm = selection.warm if selection is not None else None
    if warm is not None and not np.array_equal(warm.cols, d):
        warm = None  # (a selection made on other columns)
    reuse = (
        selection is not None
        and warm is not None
        and warm.V is not None
        and (C <= REUSE_BASIS_C or selection.n_fit >= REUSE_ROWS_PER_DIM * len(d))
    )
    fit, scores, _, pred = _wide_fit_score(
        engine, (X, y), (np.asarray(X_eval), np.asarray(y_eval)), d, (C,), names, REFIT_TOL,
        basis=warm.V if reuse else None, warm=warm,
    )  # fmt: skip
    stats = FitStats(
        n_probes=1,
        k=len(d),
        chunk_size=1,
        n_chunks=1,
        compiled=False,
        compile_fallback=False,
        n_iter=fit.n_newton,
        converged=fit.converged,
        elapsed_s=time.perf_counter() - t0,
    )
    return (ProbeScores(scores, stats), pred[0]) if predict else ProbeScores(scores, stats)


@dataclass(frozen=True)
class WideStart:
    """What a wide :func:`select_C` of one probe leaves for :func:`refit_wide`: the probe's
    columns ``cols [k]``, the eigenvectors ``V [k, k]`` (float64 tensor; None when the
    fitting part had fewer than ``k`` examples) of its fitting part's standardised features,
    and its solutions: ``grid [G]``, ``coef [G, K', k]``, ``intercept [G, K']`` in the units
    of the fitting part's standardisation ``mean``, ``scale [k]``."""

    cols: np.ndarray
    V: torch.Tensor | None
    grid: tuple[float, ...] = ()
    coef: np.ndarray | None = None
    intercept: np.ndarray | None = None
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    def start_at(
        self, C: float, mean: np.ndarray, scale: np.ndarray, n_free: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The solution at ``C`` (a grid point) in the units of another standardisation
        ``mean``, ``scale [k]`` of the same columns: ``(coef [1, K', k], intercept [1,
        K'])``, the start of a refit on all of train (at C = 100 on a 768-dimension layer: 5
        Newton steps instead of 12); None when ``C`` is not on the grid or the classes
        differ (``n_free`` rows of coefficients expected)."""
        if self.coef is None or C not in self.grid or self.coef.shape[1] != n_free:
            return None
        g = self.grid.index(C)
        w = self.coef[g] / self.scale  # [K', k] in the raw units of the features
        b = self.intercept[g] - w @ self.mean
        return (w * scale)[None], (b + w @ mean)[None]


def _standardized(X: np.ndarray, cols: np.ndarray, mean, scale, dev) -> torch.Tensor:
    """``(X[:, cols] - mean) / scale`` (``mean``, ``scale`` ``[k]``, of ``cols``): ``[n, k]``
    float32 on ``dev``, by :func:`.standardize.standardized_columns` (float64 row blocks; X is
    never modified)."""
    D = X.shape[1]
    mean_d, scale_d = np.zeros(D), np.ones(D)
    mean_d[cols], scale_d[cols] = mean, scale
    return standardized_columns(X, cols, mean_d, scale_d, dev, by_rows=True)


def _wide_curve(
    engine: ProbeEngine,
    X: np.ndarray,
    y: np.ndarray,
    idx_fit: np.ndarray,
    idx_val: np.ndarray,
    cols: np.ndarray,
    grid: tuple[float, ...],
    metric: str,
) -> tuple[np.ndarray, np.ndarray, WideStart]:
    """Validation ``metric`` and mean log-loss ``[G]`` of the logistic probe on ``cols [k]``
    at each ``C`` of ``grid``, fitted on ``X[idx_fit]`` at :data:`WIDE_TOL`; and the
    solutions for a refit."""
    _, sc, warm, _ = _wide_fit_score(
        engine, (X[idx_fit], y[idx_fit]), (X[idx_val], y[idx_val]), cols, grid, (metric,),
        WIDE_TOL,
    )  # fmt: skip
    return sc[metric], sc["loss"], warm


def _wide_fit_score(engine, fit_part, eval_part, cols, grid, metrics, tol, basis=None, warm=None):
    """The logistic probe on ``cols [k]`` at each ``C`` of ``grid [G]``, fitted by
    :func:`.newton_cg.fit_c_grid` on ``fit_part = (X [n, D], y [n])`` (standardised on it, as
    the engine does; in the rotation ``basis`` when given) and scored on ``eval_part``:
    ``(GridFit, {metric: [G], "loss": [G]}, WideStart, predictions [G, m])``; with ``warm``
    (a :class:`WideStart` of these columns, one C), from its solution at that C. An eval
    label the fit part never showed counts as an error and is left out of the loss, as in
    the engine."""
    (Xf, yf), (Xv, yv) = fit_part, eval_part
    dev = engine.device
    cols = np.asarray(cols, dtype=np.int64)
    mean, scale = standardization_stats(Xf, cols=cols)
    classes, yi = np.unique(yf, return_inverse=True)
    Xt = _standardized(Xf, cols, mean, scale, dev)  # [n_fit, k]
    n_free = 1 if len(classes) == 2 else len(classes)
    one_C = warm is not None and len(grid) == 1
    start = warm.start_at(float(grid[0]), mean, scale, n_free) if one_C else None
    fit = fit_c_grid(Xt, yi, len(classes), np.asarray(grid), tol=tol, basis=basis, start=start)
    W = torch.as_tensor(fit.coef, dtype=torch.float32, device=dev)  # [G, K', k]
    b = torch.as_tensor(fit.intercept, dtype=torch.float32, device=dev)
    Z = torch.einsum("nk,gck->gnc", _standardized(Xv, cols, mean, scale, dev), W)
    Z = Z + b[:, None, :]  # [G, n_val, K']
    if len(classes) == 2:
        Z = torch.cat([torch.zeros_like(Z), Z], 2)
    G = len(grid)
    pos = np.searchsorted(classes, yv)
    known = (pos < len(classes)) & (classes[np.minimum(pos, len(classes) - 1)] == yv)
    lab = torch.as_tensor(np.where(known, pos, 0), device=dev)
    ll = torch.logsumexp(Z, 2) - Z.gather(2, lab[None, :, None].expand(G, -1, 1))[..., 0]
    kn = torch.as_tensor(known, device=dev)
    loss = ll[:, kn].sum(1, dtype=torch.float64) / max(int(known.sum()), 1)
    pred = classes[Z.argmax(2).cpu().numpy()]
    scores = batch_metrics(metrics, yv, pred)
    scores["loss"] = loss.cpu().numpy()
    grid_t = tuple(float(c) for c in grid)
    warm = WideStart(cols, fit.basis, grid_t, fit.coef, fit.intercept, mean, scale)
    return fit, scores, warm, pred
