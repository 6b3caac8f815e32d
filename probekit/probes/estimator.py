"""``LinearProbe``: one linear probe as a scikit-learn estimator, on either backend.

``C="auto"`` chooses ``C`` on the seeded validation split of train (:func:`train_val_split`)
as :func:`select_C` does, then refits on all of ``X``: ``backend="torch"`` by
:func:`select_C` itself, ``backend="sklearn"`` by :func:`sklearn_select_C` (the same
protocol with one scikit-learn fit per ``C``), both with the tie rule of
:meth:`CSelection.from_curve`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.metaestimators import available_if

from ..metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS, batch_metrics
from .cselect import AUTO, CSelection, c_grid, parse_C, select_C
from .engine import ProbeEngine
from .splits import train_val_split
from .standardize import standardization_stats

__all__ = ["LinearProbe", "sklearn_select_C"]


def _sk_fit(Xs: np.ndarray, y: np.ndarray, C: float, regression: bool, max_iter: int, tol: float):
    """The scikit-learn estimator of the probe objective, fitted on standardised ``Xs``."""
    if regression:
        from sklearn.linear_model import Ridge

        return Ridge(alpha=1.0 / C).fit(Xs, y)
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=max_iter, tol=tol).fit(Xs, y)


def _log_loss(est, Xv: np.ndarray, yv: np.ndarray) -> float:
    """Mean validation log-loss of a fitted ``LogisticRegression`` from its decision values
    (log-softmax: exact for confident wrong predictions); labels it never saw are left out."""
    from scipy.special import log_softmax

    cls = est.classes_
    pos = np.searchsorted(cls, yv)
    known = (pos < len(cls)) & (cls[np.minimum(pos, len(cls) - 1)] == yv)
    if not known.any():
        return float("nan")
    z = est.decision_function(Xv[known])
    z = np.stack([np.zeros_like(z), z], 1) if z.ndim == 1 else z
    return float(-log_softmax(z, axis=1)[np.arange(len(z)), pos[known]].mean())


def sklearn_select_C(
    X,
    y,
    *,
    grid: Sequence[float] | None = None,
    split: tuple[np.ndarray, np.ndarray],
    metric: str,
    regression: bool = False,
    max_iter: int = 1000,
    tol: float = 1e-4,
) -> CSelection:
    """:func:`select_C` of the full-width probe with scikit-learn fits: per ``C`` of ``grid``
    (default :data:`DEFAULT_C_GRID`) a ``LogisticRegression(C)`` (``Ridge(alpha=1/C)``) on
    the fitting part ``X[split[0]]`` standardised on itself, scored on the validation part
    by ``metric`` and the mean log-loss (an eval label the fit part never showed counts as
    an error and is left out of the loss, as in the engine; ridge: the MSE).

    Args:
        X: ``[n, D]`` features.
        y: ``[n]`` labels or targets.
        split: ``(idx_fit, idx_val)`` (:func:`train_val_split`).
        metric: the primary metric (a :mod:`probekit.metrics` name).

    Returns:
        :class:`CSelection` (``chosen_on="full"``).
    """
    g = c_grid(grid)
    X, y = np.asarray(X), np.asarray(y)
    idx_fit, idx_val = split
    mean, scale = standardization_stats(X[idx_fit])
    Xf = (X[idx_fit].astype(np.float64) - mean) / scale
    Xv = (X[idx_val].astype(np.float64) - mean) / scale
    yf, yv = y[idx_fit], y[idx_val]
    preds, loss = [], []
    for C in g:
        est = _sk_fit(Xf, yf, C, regression, max_iter, tol)
        pred = est.predict(Xv)
        preds.append(pred)
        if regression:
            loss.append(float(np.mean((pred - yv) ** 2)))
            continue
        loss.append(_log_loss(est, Xv, yv))
    score = batch_metrics((metric,), yv, np.stack(preds))[metric]
    return CSelection.from_curve(
        g,
        score,
        np.asarray(loss),
        metric=metric,
        chosen_on="full",
        n_probes=1,
        n_fit=len(idx_fit),
        n_val=len(idx_val),
    )


class LinearProbe(BaseEstimator):
    """A linear probe as a scikit-learn estimator.

    L2-regularised logistic regression (``regression=False``; binary or multinomial) or
    ridge (``regression=True``, ``alpha = 1 / C``) on features standardised with the
    training mean and standard deviation. ``backend="sklearn"`` fits with scikit-learn
    (``LogisticRegression(C=C)`` / ``Ridge(alpha=1/C)``), ``backend="torch"`` with
    :class:`ProbeEngine`, on the same objective.

    Args:
        C: inverse regularisation strength (default 1.0, scikit-learn's), or ``"auto"``:
            chosen from ``C_grid`` on the seeded validation split of ``X`` (the
            ``val_fraction``, ``seed`` and ``scoring`` below) as :func:`select_C` does,
            then refitted on all of ``X``.
        regression: ridge instead of logistic regression.
        backend: ``"sklearn"`` or ``"torch"``.
        max_iter: iteration cap (lbfgs iterations for sklearn, Newton steps for torch).
        tol: convergence tolerance of the backend.
        device: torch device for ``backend="torch"``.
        C_grid: the grid of ``C="auto"`` (default :data:`DEFAULT_C_GRID`).
        val_fraction, seed: the :func:`train_val_split` of ``C="auto"``.
        scoring: the metric that chooses ``C`` (a :mod:`probekit.metrics` name; default
            ``"accuracy"``, ``"pearson"`` for regression; ties: the validation loss).

    Attributes (after ``fit``):
        classes_: ``[n_classes]`` (classification).
        coef_: ``[n_features]`` (binary / regression) or ``[n_classes, n_features]``, on
            standardised features.
        intercept_: float or ``[n_classes]``.
        mean_, scale_: ``[n_features]`` standardisation statistics.
        C_: the ``C`` of the fit (the chosen one for ``C="auto"``).
        C_selection_: the :meth:`CSelection.record` of ``C="auto"`` (``chosen``, ``grid``,
            ``val_curve``, ``val_loss``, ...); None for a numeric ``C``.
        n_features_in_: number of features seen in ``fit``.
        n_iter_: iterations used (``[1]`` for ridge, solved in closed form).
    """

    def __init__(
        self,
        C: float | str = 1.0,
        regression: bool = False,
        backend: str = "sklearn",
        max_iter: int = 1000,
        tol: float = 1e-4,
        device: str = "cpu",
        C_grid: Sequence[float] | None = None,
        val_fraction: float = 0.2,
        seed: int = 0,
        scoring: str | None = None,
    ):
        self.C = C
        self.regression = regression
        self.backend = backend
        self.max_iter = max_iter
        self.tol = tol
        self.device = device
        self.C_grid = C_grid
        self.val_fraction = val_fraction
        self.seed = seed
        self.scoring = scoring

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.regression:
            from sklearn.utils import RegressorTags

            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
            tags.target_tags.required = True
        else:
            from sklearn.utils import ClassifierTags

            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags()
            tags.target_tags.required = True
        return tags

    @property
    def _estimator_type(self):  # older scikit-learn and is_classifier()
        return "regressor" if self.regression else "classifier"

    def fit(self, X, y):
        """Fit on ``X [n, n_features]`` and ``y [n]``; returns self."""
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import check_X_y

        if self.backend not in ("sklearn", "torch"):
            raise ValueError(f"backend must be 'sklearn' or 'torch', got {self.backend!r}")
        C = parse_C(self.C)  # (a ConfigError is a ValueError)
        X, y = check_X_y(
            X, y, dtype=[np.float64, np.float32, np.float16], y_numeric=self.regression
        )
        self.n_features_in_ = X.shape[1]
        if not self.regression:
            check_classification_targets(y)
            self.classes_ = np.unique(y)
            if len(self.classes_) < 2:
                raise ValueError(
                    "LinearProbe needs samples of at least 2 classes; "
                    f"got only one class: {self.classes_[0]!r}"
                )
        else:
            y = y.astype(np.float64)
        sel = self._select_C(X, y) if C == AUTO else None
        self.C_ = sel.C if sel is not None else C
        self.C_selection_ = sel.record() if sel is not None else None
        self.mean_, self.scale_ = standardization_stats(X)
        if self.backend == "sklearn":
            self._fit_sklearn((X.astype(np.float64) - self.mean_) / self.scale_, y)
        else:
            self._fit_torch(X, y)
        return self

    def _select_C(self, X: np.ndarray, y: np.ndarray) -> CSelection:
        """The ``C="auto"`` choice on ``X [n, D]`` with this probe's backend."""
        metrics = REGRESSION_METRICS if self.regression else CLASSIFICATION_METRICS
        metric = self.scoring if self.scoring is not None else metrics[0]
        if metric not in metrics:
            kind = "regression" if self.regression else "classification"
            raise ValueError(f"scoring must be one of {metrics} for {kind}, got {metric!r}")
        if len(y) < 2:
            raise ValueError(
                f"C='auto' splits off validation examples: needs n_samples >= 2, got "
                f"n_samples = {len(y)}"
            )
        split = train_val_split(y, val_fraction=self.val_fraction, seed=self.seed)
        if self.backend == "sklearn":
            return sklearn_select_C(
                X,
                y,
                grid=self.C_grid,
                split=split,
                metric=metric,
                regression=self.regression,
                max_iter=self.max_iter,
                tol=self.tol,
            )
        eng = ProbeEngine(regression=self.regression, device=self.device, max_iter=self.max_iter)
        full = np.arange(X.shape[1])
        return select_C(eng, X, y, full, grid=self.C_grid, split=split, metrics=(metric,))

    def _fit_sklearn(self, Xs: np.ndarray, y: np.ndarray) -> None:
        """scikit-learn's fit at ``C_`` on standardised ``Xs``."""
        est = _sk_fit(Xs, y, self.C_, self.regression, self.max_iter, self.tol)
        if self.regression:
            self.coef_ = est.coef_.astype(np.float64)
            self.intercept_ = float(est.intercept_)
            self.n_iter_ = np.array([1])  # closed form: one solve
            return
        binary = len(self.classes_) == 2
        self.coef_ = est.coef_[0] if binary else est.coef_
        self.intercept_ = float(est.intercept_[0]) if binary else est.intercept_
        self.n_iter_ = est.n_iter_

    def _fit_torch(self, X: np.ndarray, y: np.ndarray) -> None:
        """The engine's fit at ``C_`` (it standardises ``X`` itself, with the same stats)."""
        eng = ProbeEngine(
            regression=self.regression,
            C=self.C_,
            device=self.device,
            max_iter=self.max_iter,
            tol=self.tol,
        )
        fit = eng.fit(X, y, np.arange(X.shape[1])[None, :])
        coef, icpt = fit.coef[0], fit.intercept[0]
        if self.regression or len(self.classes_) == 2:
            self.coef_, self.intercept_ = coef[0], float(icpt[0])
        else:
            self.coef_, self.intercept_ = coef, icpt
        self.n_iter_ = fit.n_iter if not self.regression else np.array([1])

    @available_if(lambda self: not self.regression)
    def decision_function(self, X) -> np.ndarray:
        """Scores ``[m]`` (binary) or ``[m, n_classes]`` (classification only)."""
        return self._decision(X)

    def _decision(self, X) -> np.ndarray:
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32, np.float16])
        Xs = (X.astype(np.float64) - self.mean_) / self.scale_
        return Xs @ np.asarray(self.coef_).T + self.intercept_

    def predict(self, X) -> np.ndarray:
        """Labels (or values) ``[m]``."""
        z = self._decision(X)
        if self.regression:
            return z
        if z.ndim == 1:
            return self.classes_[(z > 0).astype(np.int64)]
        return self.classes_[z.argmax(axis=1)]

    @available_if(lambda self: not self.regression)
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``[m, n_classes]`` (classification only)."""
        from scipy.special import expit, softmax

        z = self._decision(X)
        if z.ndim == 1:
            p = expit(z)
            return np.stack([1 - p, p], axis=1)
        return softmax(z, axis=1)

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy (classification) or R^2 (regression), as scikit-learn's mixins."""
        from sklearn.metrics import accuracy_score, r2_score

        if self.regression:
            return float(r2_score(y, self.predict(X), sample_weight=sample_weight))
        return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))
