"""Planted data and scikit-learn references shared by the probe engine's unit tests."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from probekit.metrics import batch_metrics


def planted(n=1500, m=500, D=24, K=2, seed=0, dtype=np.float16):
    """Gaussian features with varied scales/offsets; labels from a planted linear model on
    the first 6 dims (logistic noise), multinomial for K > 2."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + m, D)) * rng.uniform(0.3, 4.0, D) + rng.normal(0, 3, D)
    Xs = (X - X.mean(0)) / X.std(0)
    if K == 2:
        w = np.zeros(D)
        w[:6] = rng.normal(0, 1.0, 6)
        y = (Xs @ w + rng.logistic(size=n + m) > 0.3).astype(np.int64)
    else:
        W = np.zeros((D, K))
        W[:6] = rng.normal(0, 1.0, (6, K))
        y = np.argmax(Xs @ W + rng.gumbel(size=(n + m, K)), axis=1).astype(np.int64)
    X = X.astype(dtype)
    return X[:n], y[:n], X[n:], y[n:]


def sklearn_scores(Xtr, ytr, Xev, yev, dims, C, metrics, regression=False, solver="lbfgs"):
    """Reference: StandardScaler + LogisticRegression(C) (or Ridge(1/C)) per probe."""
    preds = []
    for d in dims:
        sc = StandardScaler().fit(Xtr[:, d].astype(np.float64))
        A, E = (
            sc.transform(Xtr[:, d].astype(np.float64)),
            sc.transform(Xev[:, d].astype(np.float64)),
        )
        est = (
            Ridge(alpha=1.0 / C)
            if regression
            else LogisticRegression(C=C, tol=1e-8, max_iter=2000, solver=solver)
        )
        preds.append(est.fit(A, ytr).predict(E))
    return batch_metrics(metrics, yev, np.stack(preds))


def random_dims(D, k, B, seed):
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(D, k, replace=False) for _ in range(B)])
