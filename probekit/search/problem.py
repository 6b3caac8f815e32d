"""One probing problem: a (layer, pool) of a train/eval pair with its validation split.

Selection (:meth:`Problem.select`) fits on the fitting part of train and scores on its
validation part; reporting (:meth:`Problem.report`) refits on all of train and scores on
eval. Nothing chosen ever looks at eval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..probes import majority_baseline, random_dims_baseline, train_val_split
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
        self.config = config
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
        self.engine = config.engine(self.regression)

    def select(self, dims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Validation ``(primary metric [B], loss [B])`` of probes on ``dims [B, k]``."""
        sc = self.engine.fit_score(
            self.X_fit,
            self.y_fit,
            self.X_val,
            self.y_val,
            np.asarray(dims),
            metrics=(self.primary,),
        )
        return sc[self.primary], sc["loss"]

    def rank(self, score: np.ndarray, loss: np.ndarray) -> np.ndarray:
        """:func:`best_first` under this problem's ``criterion``."""
        return best_first(score, loss, self.config.criterion)

    def report(self, dims: np.ndarray) -> dict[str, np.ndarray]:
        """Eval ``{metric: [B]}`` of probes on ``dims [B, k]`` refitted on all training data."""
        sc = self.engine.fit_score(
            self.X_train,
            self.y_train,
            self.X_eval,
            self.y_eval,
            np.asarray(dims),
            metrics=self.metrics,
        )
        return {m: sc[m] for m in self.metrics}

    def report_one(self, dims: Sequence[int]) -> dict[str, float]:
        """Eval ``{metric: float}`` of one probe on ``dims [k]``."""
        rep = self.report(np.asarray(dims, dtype=np.int64)[None, :])
        return {m: float(v[0]) for m, v in rep.items()}

    def full(self) -> dict[str, float]:
        """Eval scores of the full-width probe."""
        return self.report_one(np.arange(self.n_dims))

    def full_val(self) -> float:
        """Validation primary metric of the full-width probe."""
        s, _ = self.select(np.arange(self.n_dims)[None, :])
        return float(s[0])

    def random(self, k: int, seed: int | None = None) -> dict[str, Any]:
        """Eval scores of ``config.n_random`` probes on random ``k``-dimension sets."""
        return random_dims_baseline(
            self.engine,
            self.X_train,
            self.y_train,
            self.X_eval,
            self.y_eval,
            k,
            n_draws=self.config.n_random,
            seed=self.config.seed if seed is None else seed,
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
