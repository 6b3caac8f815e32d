"""Exact-threshold stumps (probekit.stumps) against a brute force over thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from probekit.errors import DataError
from probekit.stumps import fit_stumps, predict_stumps


def planted(n: int, D: int, seed: int = 0):
    """``X [n, D]``; the label depends on dims 3 and 17."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D)).astype(np.float32)
    y = ((X[:, 3] + X[:, 17] + 0.3 * rng.standard_normal(n)) > 0).astype(np.int64)
    return X, y


def _score(metric: str, y, p) -> float:
    from sklearn.metrics import f1_score, matthews_corrcoef

    if metric == "accuracy":
        return (p == y).mean()
    if metric == "mcc":
        return matthews_corrcoef(y, p)
    return f1_score(y, p, zero_division=0)


def _brute(x, y, metric, C=2, reg=False):

    vals = np.unique(x)
    cands = np.concatenate([[-np.inf], (vals[:-1] + vals[1:]) / 2, [np.inf]])
    best = -np.inf
    for t in cands:
        low = x <= t
        if reg:
            p = np.where(
                low, y[low].mean() if low.any() else 0, y[~low].mean() if (~low).any() else 0
            )
            best = max(best, 1 - ((y - p) ** 2).sum() / ((y - y.mean()) ** 2).sum())
        elif C == 2:
            for a, b in ((0, 1), (1, 0)):
                p = np.where(low, a, b)
                best = max(best, _score(metric, y, p))
        else:
            lc = np.bincount(y[low], minlength=C).max() if low.any() else 0
            rc = np.bincount(y[~low], minlength=C).max() if (~low).any() else 0
            best = max(best, (lc + rc) / len(y))
    return best


@pytest.mark.parametrize("metric", ["accuracy", "mcc", "f1"])
def test_stumps_exact_binary(metric):

    rng = np.random.default_rng(3)
    for _ in range(3):
        X = np.round(rng.standard_normal((70, 6)), 1).astype(np.float16)  # many ties
        X[:, 0] = -0.0
        X[:4, 0] = 0.0  # -0.0 and +0.0 are one value
        y = (X[:, 1] + 0.5 * rng.standard_normal(70) > 0.2).astype(int)
        Xc = X.copy()
        fit = fit_stumps(X, y, metric=metric)
        np.testing.assert_array_equal(X, Xc)  # input untouched
        want = [_brute(X[:, j].astype(np.float64), y, metric) for j in range(6)]
        np.testing.assert_allclose(fit.train_score, want, atol=1e-12)
        pred = predict_stumps(fit, X)
        np.testing.assert_allclose(
            [_score(metric, y, p) for p in pred], fit.train_score, atol=1e-12
        )
        assert fit.train_score[0] == pytest.approx(
            _brute(np.zeros(70), y, metric)
        )  # constant column


def test_stumps_exact_multiclass_and_regression():
    rng = np.random.default_rng(4)
    X = np.round(rng.standard_normal((80, 5)), 1).astype(np.float32)
    y3 = np.clip(np.round(X[:, 2] + rng.standard_normal(80) * 0.5).astype(int) + 1, 0, 2)
    fit = fit_stumps(X, y3)
    np.testing.assert_allclose(
        fit.train_score, [_brute(X[:, j].astype(np.float64), y3, "accuracy", C=3) for j in range(5)]
    )
    np.testing.assert_allclose((predict_stumps(fit, X) == y3).mean(1), fit.train_score)
    yr = 2.0 * X[:, 3] + rng.standard_normal(80)
    fit = fit_stumps(X, yr, regression=True)
    np.testing.assert_allclose(
        fit.train_score,
        [_brute(X[:, j].astype(np.float64), yr, None, reg=True) for j in range(5)],
        atol=1e-10,
    )
    assert fit.train_score.argmax() == 3
    with pytest.raises(DataError, match="NaN"):
        fit_stumps(np.array([[np.nan], [1.0]]), np.array([0, 1]))
    with pytest.raises(DataError, match="y must be"):
        fit_stumps(X, y3[:10])


def test_stumps_chunked_equal():
    X, y = planted(300, D=50)
    a = fit_stumps(X, y)
    b = fit_stumps(X, y, chunk_elems=300 * 7)  # 7 dims per chunk
    np.testing.assert_array_equal(a.threshold, b.threshold)
    np.testing.assert_array_equal(a.train_score, b.train_score)
