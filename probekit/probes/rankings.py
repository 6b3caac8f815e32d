"""Rank the dimensions of a layer the way other probing toolkits do, from one pass of moments.

Each method orders the ``D`` dimensions of ``X [n_examples, D]`` by how much of the task it
appears to carry, without fitting one probe per dimension:

* ``mean-diff``: the absolute difference of the class means in units of the dimension's
  standard deviation (NeuroX's probeless ranking; the default of Gurnee et al.'s sparse
  probing). Several classes: summed over all pairs of classes. Regression: ``|pearson r|``.
* ``f-stat``: the ANOVA F statistic (scikit-learn's ``f_classif`` / ``f_regression``),
  computed from the same moments.
* ``l1``: the order in which dimensions enter the L1 (lasso) regularisation path, computed
  by LARS from the Gram matrix of the standardised features (squared loss on the centred
  target; several classes: one path per class in one-vs-rest, a dimension's entry is its
  earliest over the classes). This is the L1 path of a linear probe with squared loss, not
  of the logistic loss; it is exact, deterministic and needs no refits.
* ``lca``: NeuroX's linguistic correlation analysis: an elastic-net logistic probe
  (elastic-net linear regression for regression) on the standardised features, with
  NeuroX's default penalties (0.001 L1 and L2 on the mean loss); dimensions ordered by
  their weight mass, ``sum_c |w_c|`` over the classes.
* ``mi``: greedy forward selection by Gaussian mutual information, as in intrinsic probing
  (Torroba Hennigen et al., 2020): ``I(X_S; Y) = 1/2 [log det Sigma_S - sum_c p_c log det
  Sigma_{c,S}]`` with ``Sigma`` the total and ``Sigma_c`` the class covariances (the total
  entropy taken at its Gaussian value); regression: ``-1/2 log(1 - R^2_S)``. Every subset's
  value is a slice of one set of means and covariances, so nothing is refitted.

All moments are accumulated in float64 over row chunks, so a float16 cache is never copied
whole. :func:`rank_dimensions` is the entry point; the search stage scores the top-k of any
ranking with the probe engine.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError
from .standardize import row_blocks

logger = logging.getLogger(__name__)

__all__ = ["RANKING_METHODS", "ClassMoments", "Ranking", "class_moments", "rank_dimensions"]

RANKING_METHODS = ("mean-diff", "f-stat", "l1", "lca", "mi")


@dataclass(frozen=True)
class Ranking:
    """Dimensions ordered best first by one method.

    Attributes:
        method: one of :data:`RANKING_METHODS`.
        order: ``[m]`` int64 dimension indices, best first (``m = D``, or ``max_k`` for the
            greedy ``mi``).
        score: ``[m]`` float64, the method's value for each entry of ``order`` (per-dimension
            statistic; for ``mi`` the mutual information, in nats, of the first ``i + 1``
            dimensions together; for ``l1`` the regularisation strength at which it entered).
    """

    method: str
    order: np.ndarray
    score: np.ndarray

    def top(self, k: int) -> np.ndarray:
        """``[k]`` the first ``k`` dimensions."""
        return self.order[:k]


@dataclass(frozen=True)
class ClassMoments:
    """Counts, means and covariances of ``X`` overall and per class (or with the target).

    Attributes:
        n: number of examples.
        mean: ``[D]`` overall mean; ``scale``: ``[D]`` population standard deviation (1 for a
            constant column, as scikit-learn's ``StandardScaler``).
        cov: ``[D, D]`` overall (population) covariance.
        counts: ``[C]`` examples per class (classification) or None.
        class_mean: ``[C, D]`` class means or None.
        class_cov: ``[C, D, D]`` class covariances (population) or None.
        cov_xy: ``[D]`` covariance of each dimension with the target (regression) or None.
        var_y: variance of the target (regression) or None.
    """

    n: int
    mean: np.ndarray
    scale: np.ndarray
    cov: np.ndarray
    counts: np.ndarray | None = None
    class_mean: np.ndarray | None = None
    class_cov: np.ndarray | None = None
    cov_xy: np.ndarray | None = None
    var_y: float | None = None

    @property
    def regression(self) -> bool:
        return self.counts is None


def _check(X: np.ndarray, y: np.ndarray, regression: bool) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[0] != y.shape[0] or X.shape[0] < 2:
        raise ConfigError(f"rankings need X [n, D] and y [n] with n >= 2; got {X.shape}, {y.shape}")
    if not regression:
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            raise DataError("classification labels must be class indices")
        y = y.astype(np.int64)
        if (y < 0).any():
            raise DataError(f"{int((y < 0).sum())} examples are unlabelled (-1)")
        if len(np.unique(y)) < 2:
            raise DataError("a ranking needs at least two classes in the training labels")
    else:
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise DataError("regression targets contain NaN or infinite values")
    return X, y


def class_moments(
    X: np.ndarray, y: np.ndarray, *, regression: bool = False, rows_per_chunk: int | None = None
) -> ClassMoments:
    """The moments every ranking is computed from, in one chunked float64 pass over ``X``.

    Args:
        X: ``[n_examples, D]`` features (any float dtype; not modified, not copied whole).
        y: ``[n_examples]`` class indices, or real targets when ``regression``.
    """
    X, y = _check(X, y, regression)
    n, D = X.shape
    classes = None if regression else np.arange(int(y.max()) + 1)
    C = 1 if classes is None else len(classes)
    s1 = np.zeros((C, D))
    s2 = np.zeros((C, D, D))
    sxy = np.zeros(D)
    counts = np.zeros(C)
    for i, j in row_blocks(n, D, rows_per_chunk):
        Xc = X[i:j].astype(np.float64)
        yc = y[i:j]
        if classes is None:
            s1[0] += Xc.sum(0)
            s2[0] += Xc.T @ Xc
            sxy += Xc.T @ yc
            counts[0] += len(yc)
            continue
        for c in classes:
            Z = Xc[yc == c]
            s1[c] += Z.sum(0)
            s2[c] += Z.T @ Z
            counts[c] += len(Z)
    mean = s1.sum(0) / n
    cov = s2.sum(0) / n - np.outer(mean, mean)
    var = np.clip(np.diag(cov), 0.0, None)
    if not np.isfinite(cov).all():
        raise DataError("X: features contain NaN or infinite values")
    scale = np.sqrt(var)
    tiny = 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mean))
    scale[scale < tiny] = 1.0
    if classes is None:
        ym = float(y.mean())
        return ClassMoments(n, mean, scale, cov, cov_xy=sxy / n - mean * ym, var_y=float(y.var()))
    safe = np.maximum(counts, 1)[:, None]
    cmean = s1 / safe
    ccov = s2 / safe[:, :, None] - cmean[:, :, None] * cmean[:, None, :]
    return ClassMoments(n, mean, scale, cov, counts=counts, class_mean=cmean, class_cov=ccov)


def _mean_diff(m: ClassMoments) -> np.ndarray:
    if m.regression:
        return np.abs(m.cov_xy) / (m.scale * np.sqrt(max(m.var_y, 1e-300)))
    present = np.flatnonzero(m.counts > 0)
    mu = m.class_mean[present] / m.scale
    diff = np.abs(mu[:, None, :] - mu[None, :, :])  # [C, C, D]
    return diff.sum((0, 1)) / 2


def _f_stat(m: ClassMoments) -> np.ndarray:
    if m.regression:
        r = m.cov_xy / (m.scale * np.sqrt(max(m.var_y, 1e-300)))
        r2 = np.clip(r**2, 0.0, 1.0 - 1e-15)
        return r2 / (1 - r2) * (m.n - 2)
    present = m.counts > 0
    k = int(present.sum())
    between = (m.counts[present, None] * (m.class_mean[present] - m.mean) ** 2).sum(0)
    within = np.diag(m.cov) * m.n - between
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (between / (k - 1)) / (within / (m.n - k))
    return np.nan_to_num(f, nan=0.0, posinf=np.finfo(np.float64).max)


def _standardised_gram(m: ClassMoments) -> np.ndarray:
    return m.n * m.cov / np.outer(m.scale, m.scale)


def _l1_entry(m: ClassMoments) -> np.ndarray:
    """Regularisation strength at which each dimension first enters the lasso path (0: never)."""
    from sklearn.linear_model import lars_path_gram

    gram = _standardised_gram(m)
    if m.regression:
        targets = [m.n * m.cov_xy / m.scale]
    else:
        # one-vs-rest indicator targets, centred: X^T (1[y=c] - p_c) = n_c (mu_c - mu)
        present = np.flatnonzero(m.counts > 0)
        cs = present if len(present) > 2 else present[1:]
        targets = [m.counts[c] * (m.class_mean[c] - m.mean) / m.scale for c in cs]
    entry = np.zeros(len(m.mean))
    for Xy in targets:
        alphas, active, _ = lars_path_gram(Xy, gram, n_samples=m.n, method="lasso")
        seen: set[int] = set()
        for step, j in enumerate(active):
            if j not in seen:
                seen.add(j)
                entry[j] = max(entry[j], alphas[min(step, len(alphas) - 1)])
    return entry


def _lca_weights(X: np.ndarray, y: np.ndarray, m: ClassMoments, seed: int) -> np.ndarray:
    """``[C', D]`` absolute weights of NeuroX-style elastic-net probes (one row per class)."""
    from sklearn.linear_model import ElasticNet, LogisticRegression

    Z = (np.asarray(X, dtype=np.float64) - m.mean) / m.scale
    lam = 1e-3  # NeuroX's default lambda_l1 = lambda_l2 = 0.001 on the mean loss
    if m.regression:
        est = ElasticNet(alpha=2 * lam, l1_ratio=0.5, max_iter=2000, tol=1e-4)
        est.fit(Z, y - y.mean())
        return np.abs(est.coef_)[None, :]
    est = LogisticRegression(
        l1_ratio=0.5,
        C=1.0 / (2 * lam * len(y)),
        solver="saga",
        max_iter=300,
        tol=1e-3,
        random_state=seed,
    )
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FutureWarning)
        est.fit(Z, y)
    return np.abs(np.atleast_2d(est.coef_))


def _logdet(S: np.ndarray) -> np.ndarray:
    sign, ld = np.linalg.slogdet(S)
    return np.where(sign > 0, ld, -np.inf)


def _gaussian_mi_greedy(m: ClassMoments, max_k: int) -> tuple[np.ndarray, np.ndarray]:
    D = len(m.mean)
    ridge = 1e-9 * np.trace(m.cov) / D
    eye = np.eye(D) * ridge
    tot = m.cov + eye
    if m.regression:
        joint = np.block([[tot, m.cov_xy[:, None]], [m.cov_xy[None, :], np.array([[m.var_y]])]])
        mats, weights = None, None
    else:
        present = np.flatnonzero(m.counts > 0)
        mats = m.class_cov[present] + eye
        weights = m.counts[present] / m.n
    chosen: list[int] = []
    scores: list[float] = []
    free = np.ones(D, dtype=bool)
    for _ in range(min(max_k, D)):
        cand = np.flatnonzero(free)
        idx = np.concatenate([np.tile(chosen, (len(cand), 1)), cand[:, None]], axis=1).astype(int)
        sub = tot[idx[:, :, None], idx[:, None, :]]  # [B, k, k]
        if m.regression:
            # R^2 of y on X_S: cov_yS Sigma_S^-1 cov_Sy / var_y
            cxy = joint[idx, -1]  # [B, k]
            sol = np.linalg.solve(sub, cxy[:, :, None])[:, :, 0]
            r2 = np.clip((cxy * sol).sum(1) / max(m.var_y, 1e-300), 0.0, 1.0 - 1e-12)
            val = -0.5 * np.log1p(-r2)
        else:
            val = 0.5 * _logdet(sub)
            for w, Sc in zip(weights, mats):
                val = val - 0.5 * w * _logdet(Sc[idx[:, :, None], idx[:, None, :]])
        val = np.nan_to_num(val, nan=-np.inf)
        best = int(np.argmax(val))
        chosen.append(int(cand[best]))
        scores.append(float(val[best]))
        free[cand[best]] = False
    return np.asarray(chosen, dtype=np.int64), np.asarray(scores)


def rank_dimensions(
    X: np.ndarray,
    y: np.ndarray,
    method: str,
    *,
    regression: bool = False,
    max_k: int = 10,
    seed: int = 0,
    moments: ClassMoments | None = None,
) -> Ranking:
    """Order the dimensions of ``X`` by ``method`` (one of :data:`RANKING_METHODS`).

    Args:
        X: ``[n_examples, D]`` training features (not modified).
        y: ``[n_examples]`` class indices, or real targets when ``regression``.
        method: ``mean-diff``, ``f-stat``, ``l1``, ``lca`` or ``mi``.
        max_k: how many dimensions the greedy ``mi`` selects (the others rank all ``D``).
        seed: the random state of ``lca``'s solver (the other methods are deterministic).
        moments: precomputed :func:`class_moments` of ``(X, y)``, to rank by several methods
            from one pass.

    Returns:
        A :class:`Ranking`; ties keep the lower dimension first.
    """
    if method not in RANKING_METHODS:
        raise ConfigError(
            f"ranking method must be one of {', '.join(RANKING_METHODS)}; got {method!r}"
        )
    if max_k < 1:
        raise ConfigError(f"max_k must be >= 1, got {max_k}")
    m = moments if moments is not None else class_moments(X, y, regression=regression)
    if method == "mi":
        order, score = _gaussian_mi_greedy(m, max_k)
        return Ranking(method, order, score)
    if method == "lca":
        _, yy = _check(X, y, regression)
        mass = _lca_weights(X, yy, m, seed).sum(0)
        order = np.argsort(-mass, kind="stable").astype(np.int64)
        return Ranking(method, order, mass[order])
    stat = {"mean-diff": _mean_diff, "f-stat": _f_stat, "l1": _l1_entry}[method](m)
    order = np.argsort(-stat, kind="stable").astype(np.int64)
    return Ranking(method, order, stat[order])
