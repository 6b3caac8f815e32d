"""Peer rankings (probekit.probes.rankings): planted dimensions recovered, parity with scikit-learn,
Gaussian mutual information against its closed form."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_selection import f_classif, f_regression

from probekit.errors import ConfigError, DataError
from probekit.probes.rankings import RANKING_METHODS, class_moments, rank_dimensions

PLANTED = [17, 3, 9]  # strongest first


def _planted(kind: str, n: int = 3000, D: int = 24, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D))
    if kind == "regression":
        y = 2.0 * X[:, 17] + 1.0 * X[:, 3] + 0.5 * X[:, 9] + 0.3 * rng.standard_normal(n)
        return X.astype(np.float16), y
    C = 3 if kind == "multiclass" else 2
    y = rng.integers(0, C, n)
    for d, s in zip(PLANTED, (2.0, 1.2, 0.7)):
        X[:, d] += s * (y == 1) - (s * (y == 2) if C == 3 else 0.0)
    return X.astype(np.float16), y


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("method", RANKING_METHODS)
def test_every_method_recovers_the_planted_dimensions(kind, method):
    X, y = _planted(kind)
    before = X.copy()
    r = rank_dimensions(X, y, method, regression=kind == "regression", max_k=3)
    assert set(r.order[:3].tolist()) == set(PLANTED), (method, kind, r.order[:5])
    assert r.order[0] == 17
    np.testing.assert_array_equal(X, before)  # the caller's array is not touched


def test_f_stat_equals_scikit_learn():
    X, y = _planted("multiclass")
    F, _ = f_classif(X.astype(np.float64), y)
    r = rank_dimensions(X, y, "f-stat")
    np.testing.assert_allclose(r.score, F[r.order], rtol=1e-8)
    X, y = _planted("regression")
    F, _ = f_regression(X.astype(np.float64), y)
    r = rank_dimensions(X, y, "f-stat", regression=True)
    np.testing.assert_allclose(r.score, F[r.order], rtol=1e-8)


def test_gaussian_mi_of_a_planted_gaussian_equals_its_closed_form():
    # X | y ~ N(y * delta, Sigma), y ~ Bernoulli(p): I_G = 1/2 log(1 + p(1-p) delta' Sigma^-1 delta)
    rng = np.random.default_rng(1)
    n, p = 400_000, 0.3
    delta = np.array([1.0, 0.5])
    A = np.array([[1.0, 0.0], [0.6, 0.8]])
    Sigma = A @ A.T
    y = (rng.random(n) < p).astype(np.int64)
    X = rng.standard_normal((n, 2)) @ A.T + y[:, None] * delta
    want = 0.5 * np.log1p(p * (1 - p) * delta @ np.linalg.solve(Sigma, delta))
    r = rank_dimensions(X, y, "mi", max_k=2)
    assert r.score[1] == pytest.approx(want, rel=0.01)
    # one dimension alone: the same formula with the scalar variance
    j = int(r.order[0])
    want1 = 0.5 * np.log1p(p * (1 - p) * delta[j] ** 2 / Sigma[j, j])
    assert r.score[0] == pytest.approx(want1, rel=0.01)


def test_regression_mi_is_minus_half_log_one_minus_r2():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200_000, 3))
    y = X[:, 0] + 0.5 * X[:, 1] + rng.standard_normal(200_000)
    r = rank_dimensions(X, y, "mi", regression=True, max_k=3)
    r2_all = 1.25 / 2.25
    assert r.order[:2].tolist() == [0, 1]
    assert r.score[2] == pytest.approx(-0.5 * np.log(1 - r2_all), rel=0.01)


def test_moments_are_reused_and_inputs_checked():
    X, y = _planted("binary", n=500)
    m = class_moments(X, y)
    a = rank_dimensions(X, y, "mean-diff", moments=m)
    b = rank_dimensions(X, y, "mean-diff")
    np.testing.assert_array_equal(a.order, b.order)
    with pytest.raises(ConfigError, match="ranking method must be one of"):
        rank_dimensions(X, y, "pca")
    with pytest.raises(DataError, match="at least two classes"):
        rank_dimensions(X, np.zeros(500, dtype=int), "f-stat")
    Xn = X.astype(np.float32)
    Xn[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        rank_dimensions(Xn, y, "f-stat")
