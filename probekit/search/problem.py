"""One probing problem: a (layer, pool) of a train/eval pair with its validation split.

Selection (:meth:`Problem.select`) fits on the fitting part of train and scores on its
validation part; reporting (:meth:`Problem.report`) refits on all of train and scores on
eval. Nothing chosen ever looks at eval.

With ``C="auto"`` (the default of :class:`SearchConfig`), ``C`` is chosen ONCE per
(layer, pool, k), not per candidate, by :func:`probekit.probes.select_C` on this problem's
own validation split (:meth:`Problem.C_for`): at full width on the full-width probe
(``chosen_on: "full"``); for ``k`` below it on a leader (``chosen_on: "leader"``): the
``k`` best single dimensions on validation (univariate probes at ``C = 1``, ranked by the
search's criterion, computed once per problem). A leader, not a random sample: random
``k``-subsets of a wide layer rarely carry the task, and for probes that carry nothing the
strongest penalty (predict the majority) wins on validation. The leader depends on nothing
but the data and the split, not on which candidates a search happens to score first, so a
resumed search chooses the same ``C``. Every probe of ``k`` dimensions
(selection, report, random baseline) then uses that ``C``; :meth:`Problem.C_record` is the
block results carry. Code that takes :attr:`Problem.engine` / :attr:`Problem.config`
directly (the pairs scan, the greedy screen) gets the ``C`` chosen for ``k = 2``;
:meth:`Problem.engine_for` gives any other (elimination weights, MDL, ablation use it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..probes import (
    CSelection,
    Prepared,
    ProbeEngine,
    majority_baseline,
    random_dims_baseline,
    refit_wide,
    select_C,
    train_val_split,
)
from .config import SearchConfig

__all__ = ["RESAMPLES", "Problem", "ProblemData", "best_first"]

#: how repeats other than the first resample the selection data
RESAMPLES = ("split", "bootstrap")


def best_first(score: np.ndarray, loss: np.ndarray, criterion: str = "metric") -> np.ndarray:
    """Indices of candidates best-first.

    Args:
        score: ``[B]`` validation primary metric (NaN ranks last).
        loss: ``[B]`` validation loss (NaN ranks last).
        criterion: ``metric``: highest score, then lowest loss, then lowest index;
            ``loss``: lowest loss, then highest score, then lowest index.
    """
    s = np.where(np.isfinite(score), score, -np.inf)
    l = np.where(np.isfinite(loss), loss, np.inf)
    if criterion == "loss":
        return np.lexsort((np.arange(len(s)), -s, l))
    return np.lexsort((np.arange(len(s)), l, -s))


def _default_metrics(regression: bool) -> tuple[str, ...]:
    return ("pearson", "spearman") if regression else ("accuracy",)


class Problem:
    """The probes of one (layer, pool): selection on validation, reporting on eval.

    Args:
        X_train: ``[n_train, n_dims]`` features of the training source.
        y_train: ``[n_train]`` int64 classes or float64 targets.
        X_eval: ``[n_eval, n_dims]`` features of the evaluation source.
        y_eval: ``[n_eval]``.
        regression: ridge probes and regression metrics instead of logistic ones.
        config: the shared settings (metrics default to accuracy / Pearson-Spearman).
        split_seed: seed of the validation split (default ``config.seed``).
        bootstrap_seed: resample the fitting part with replacement, with this seed.
    """

    def __init__(
        self,
        X_train: np.ndarray,
        y_train: np.ndarray,
        X_eval: np.ndarray,
        y_eval: np.ndarray,
        *,
        regression: bool = False,
        config: SearchConfig | None = None,
        split_seed: int | None = None,
        bootstrap_seed: int | None = None,
    ):
        config = config or SearchConfig()
        self._config = config
        self.regression = bool(regression)
        self.metrics = tuple(config.metrics or _default_metrics(self.regression))
        self.primary = self.metrics[0]
        self.X_train, self.y_train, self.X_eval, self.y_eval = X_train, y_train, X_eval, y_eval
        self.n_dims = X_train.shape[1]
        seed = config.seed if split_seed is None else split_seed
        idx_fit, idx_val = train_val_split(y_train, val_fraction=config.val_fraction, seed=seed)
        if bootstrap_seed is not None:
            rng = np.random.default_rng(bootstrap_seed)
            idx_fit = np.sort(rng.choice(idx_fit, size=len(idx_fit), replace=True))
        self.idx_fit, self.idx_val = idx_fit, idx_val
        # row copies of the fitting and validation parts (see the README on memory)
        self.X_fit, self.y_fit = X_train[idx_fit], y_train[idx_fit]
        self.X_val, self.y_val = X_train[idx_val], y_train[idx_val]
        self._C: dict[int, CSelection] = {}
        self._aux: SearchConfig | None = None
        self._singles: np.ndarray | None = None
        self._selection: Prepared | None = None
        self._full: tuple[dict[str, float], np.ndarray] | None = None

    # ------------------------------------------------------------------ C per k
    def C_for(self, k: int) -> float:
        """The ``C`` of probes of ``k`` dimensions: the config's, or with ``C="auto"`` the
        :func:`select_C` choice for ``k`` (made once, then cached)."""
        cfg = self._config
        if not cfg.auto_C:
            return float(cfg.C)
        k = int(k)
        if k not in self._C:
            base = ProbeEngine(
                regression=self.regression, device=cfg.device, memory_budget=cfg.memory_budget
            )
            self._C[k] = select_C(
                base,
                self.X_train,
                self.y_train,
                self._C_dims(k),
                grid=cfg.C_grid,
                metrics=(self.primary,),
                split=(self.idx_fit, self.idx_val),
                chosen_on=None if k >= self.n_dims else "leader",
            )
        return self._C[k].C

    def _C_dims(self, k: int) -> np.ndarray:
        """The probe ``C_for(k)`` chooses on, ``[k]``: the full width, or the ``k`` best single
        dimensions on validation (sorted)."""
        D = self.n_dims
        if k >= D:
            return np.arange(D)
        if self._singles is None:
            eng = self._config.engine(self.regression, C=1.0)
            sc = eng.fit_score_prepared(
                self.selection_data(), np.arange(D)[:, None], metrics=(self.primary,)
            )
            self._singles = self.rank(sc[self.primary], sc["loss"])
        return np.sort(self._singles[:k])

    def C_record(self) -> dict[str, Any]:
        """The ``C`` block of results: ``{"mode": "fixed", "chosen": C}``, or ``{"mode":
        "auto", "grid", "by_k": {k: {"chosen", "chosen_on", "val_curve", "val_loss", ...}}}``
        for the ``k`` this problem has fitted so far."""
        if not self._config.auto_C:
            return {"mode": "fixed", "chosen": float(self._config.C)}
        by_k = {str(k): self._C[k].record() for k in sorted(self._C)}
        grid = next(iter(by_k.values()))["grid"] if by_k else None
        return {"mode": "auto", "grid": grid, "by_k": by_k}

    def engine_for(self, k: int) -> ProbeEngine:
        """The engine of probes of ``k`` dimensions (at :meth:`C_for`)."""
        return self._config.engine(self.regression, C=self.C_for(k))

    @property
    def engine(self) -> ProbeEngine:
        """The engine at the ``C`` of ``k = 2`` (for code that fits sets of any size with one
        engine; the fixed ``C`` when not ``"auto"``)."""
        return self.engine_for(min(2, self.n_dims))

    @property
    def config(self) -> SearchConfig:
        """The settings, with ``C="auto"`` resolved to the ``C`` of ``k = 2`` (what the pairs
        scan and the greedy screen read)."""
        if not self._config.auto_C:
            return self._config
        if self._aux is None:
            self._aux = dataclasses.replace(self._config, C=self.C_for(min(2, self.n_dims)))
        return self._aux

    # ------------------------------------------------------------------ probes
    def selection_data(self) -> Prepared:
        """The fitting and validation parts standardised once (:meth:`ProbeEngine.prepare`),
        shared by every selection call of this problem (the steps of a greedy search, the
        units of a pairs scan): ``4 (n_fit + n_val) D`` bytes, held while the problem is."""
        if self._selection is None:
            eng = self._config.engine(self.regression, C=1.0)
            self._selection = eng.prepare(self.X_fit, self.y_fit, self.X_val, self.y_val)
        return self._selection

    def select(self, dims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Validation ``(primary metric [B], loss [B])`` of probes on ``dims [B, k]``."""
        dims = np.asarray(dims)
        sc = self.engine_for(dims.shape[-1]).fit_score_prepared(
            self.selection_data(), dims, metrics=(self.primary,)
        )
        return sc[self.primary], sc["loss"]

    def rank(self, score: np.ndarray, loss: np.ndarray) -> np.ndarray:
        """:func:`best_first` under this problem's ``criterion``."""
        return best_first(score, loss, self._config.criterion)

    def report(self, dims: np.ndarray) -> dict[str, np.ndarray]:
        """Eval ``{metric: [B]}`` of probes on ``dims [B, k]`` refitted on all training data."""
        dims = np.asarray(dims)
        sc = self.engine_for(dims.shape[-1]).fit_score(
            self.X_train,
            self.y_train,
            self.X_eval,
            self.y_eval,
            dims,
            metrics=self.metrics,
        )
        return {m: sc[m] for m in self.metrics}

    def report_one(self, dims: Sequence[int]) -> dict[str, float]:
        """Eval ``{metric: float}`` of one probe on ``dims [k]`` (by :func:`refit_wide`: a wide
        logistic probe by Newton-CG, in the eigenbasis of its ``C`` selection when that was
        made on these dims)."""
        return self._refit_one(dims)

    def _refit_one(self, dims: Sequence[int], *, predict: bool = False):
        """Eval ``{metric: float}`` of one probe on ``dims`` refitted on all of train; with
        ``predict``, ``(scores, eval predictions [n_eval])`` from the same fit."""
        d = np.asarray(dims, dtype=np.int64)
        k = len(d)
        out = refit_wide(
            self.engine_for(k), self.X_train, self.y_train, self.X_eval, self.y_eval, d,
            self.C_for(k), metrics=self.metrics, selection=self._C.get(k), predict=predict,
        )  # fmt: skip
        sc, pred = out if predict else (out, None)
        scores = {m: float(sc[m][0]) for m in self.metrics}
        return (scores, pred) if predict else scores

    def full(self) -> dict[str, float]:
        """Eval scores of the full-width probe (fitted once per problem)."""
        return dict(self._full_refit()[0])

    def full_predictions(self) -> np.ndarray:
        """Eval predictions ``[n_eval]`` of the full-width probe: the same fit as
        :meth:`full` (so a verdict's full-width row and the reported score cannot drift)."""
        return self._full_refit()[1].copy()

    def _full_refit(self) -> tuple[dict[str, float], np.ndarray]:
        if self._full is None:
            self._full = self._refit_one(np.arange(self.n_dims), predict=True)
        return self._full

    def full_val(self) -> float:
        """Validation primary metric of the full-width probe."""
        D = self.n_dims
        sc = refit_wide(
            self.engine_for(D), self.X_fit, self.y_fit, self.X_val, self.y_val, np.arange(D),
            self.C_for(D), metrics=(self.primary,), selection=self._C.get(D),
        )  # fmt: skip
        return float(sc[self.primary][0])

    def random(self, k: int, seed: int | None = None) -> dict[str, Any]:
        """Eval scores of ``config.n_random`` probes on random ``k``-dimension sets."""
        return random_dims_baseline(
            self.engine_for(k),
            self.X_train,
            self.y_train,
            self.X_eval,
            self.y_eval,
            k,
            n_draws=self._config.n_random,
            seed=self._config.seed if seed is None else seed,
            metrics=self.metrics,
        )

    def majority(self) -> dict[str, float]:
        """Eval scores of the majority class (or the training mean)."""
        return majority_baseline(
            self.y_train, self.y_eval, self.metrics, regression=self.regression
        )


@dataclass(frozen=True)
class ProblemData:
    """The arrays and settings of one (layer, pool), shipped to a joblib worker, which builds
    its :class:`Problem` there (a worker's validation split, not a copy of the caller's)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_eval: np.ndarray
    y_eval: np.ndarray
    regression: bool
    config: SearchConfig

    def problem(self, **kw: Any) -> Problem:
        """A :class:`Problem` on these arrays (``split_seed=``, ``bootstrap_seed=``)."""
        return Problem(
            self.X_train,
            self.y_train,
            self.X_eval,
            self.y_eval,
            regression=self.regression,
            config=self.config,
            **kw,
        )

    def repeat(self, r: int, resample: str) -> Problem:
        """The problem of repeat ``r``: 0 is the main one; others use another validation split
        (``split``) or a bootstrap resample of the fitting part (``bootstrap``)."""
        if r == 0:
            return self.problem()
        if resample == "bootstrap":
            return self.problem(bootstrap_seed=self.config.seed + 1000003 * r)
        return self.problem(split_seed=self.config.seed + r)
