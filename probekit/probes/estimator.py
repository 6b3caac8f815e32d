"""``LinearProbe``: one linear probe as a scikit-learn estimator, on either backend."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.metaestimators import available_if

from .engine import ProbeEngine
from .standardize import standardization_stats

__all__ = ["LinearProbe"]


class LinearProbe(BaseEstimator):
    """A linear probe as a scikit-learn estimator.

    L2-regularised logistic regression (``regression=False``; binary or multinomial) or
    ridge (``regression=True``, ``alpha = 1 / C``) on features standardised with the
    training mean and standard deviation. ``backend="sklearn"`` fits with scikit-learn
    (``LogisticRegression(C=C)`` / ``Ridge(alpha=1/C)``), ``backend="torch"`` with
    :class:`ProbeEngine`, on the same objective.

    Args:
        C: inverse regularisation strength.
        regression: ridge instead of logistic regression.
        backend: ``"sklearn"`` or ``"torch"``.
        max_iter: iteration cap (lbfgs iterations for sklearn, Newton steps for torch).
        tol: convergence tolerance of the backend.
        device: torch device for ``backend="torch"``.

    Attributes (after ``fit``):
        classes_: ``[n_classes]`` (classification).
        coef_: ``[n_features]`` (binary / regression) or ``[n_classes, n_features]``, on
            standardised features.
        intercept_: float or ``[n_classes]``.
        mean_, scale_: ``[n_features]`` standardisation statistics.
        n_features_in_: number of features seen in ``fit``.
        n_iter_: iterations used (``[1]`` for ridge, solved in closed form).
    """

    def __init__(
        self,
        C: float = 1.0,
        regression: bool = False,
        backend: str = "sklearn",
        max_iter: int = 1000,
        tol: float = 1e-4,
        device: str = "cpu",
    ):
        self.C = C
        self.regression = regression
        self.backend = backend
        self.max_iter = max_iter
        self.tol = tol
        self.device = device

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
        if not (isinstance(self.C, (int, float)) and self.C > 0):
            raise ValueError(f"C must be a positive number, got {self.C!r}")
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
        self.mean_, self.scale_ = standardization_stats(X)
        if self.backend == "sklearn":
            Xs = (X.astype(np.float64) - self.mean_) / self.scale_
            if self.regression:
                from sklearn.linear_model import Ridge

                est = Ridge(alpha=1.0 / self.C).fit(Xs, y)
                self.coef_ = est.coef_.astype(np.float64)
                self.intercept_ = float(est.intercept_)
                self.n_iter_ = np.array([1])  # closed form: one solve
            else:
                from sklearn.linear_model import LogisticRegression

                est = LogisticRegression(C=self.C, max_iter=self.max_iter, tol=self.tol).fit(Xs, y)
                self.coef_ = est.coef_[0] if len(self.classes_) == 2 else est.coef_
                self.intercept_ = (
                    float(est.intercept_[0]) if len(self.classes_) == 2 else est.intercept_
                )
                self.n_iter_ = est.n_iter_
        else:
            eng = ProbeEngine(
                regression=self.regression,
                C=self.C,
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
        return self

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
