"""A per-probe penalty: ``C [B]`` fits a grid of C values in one batch, each equal to
scikit-learn at that C (binary fused/batched/shared-prefix, multinomial, ridge)."""

from __future__ import annotations

import numpy as np
import pytest
from probe_data import planted
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from probekit.errors import ConfigError
from probekit.probes import ProbeEngine

GRID = np.logspace(-4, 2, 10)


def _sk_coef(X, y, d, C, regression=False):
    A = StandardScaler().fit_transform(X[:, d].astype(np.float64))
    if regression:
        return Ridge(alpha=1.0 / C).fit(A, y).coef_.ravel()
    est = LogisticRegression(C=C, tol=1e-10, max_iter=5000).fit(A, y)
    return est.coef_.ravel()


@pytest.mark.parametrize(
    ("K", "dims"),
    [
        (2, [[0, 1, 2]]),  # fused small-k kernel path
        (2, [list(range(12))]),  # batched matrix products
        (3, [[0, 1, 2, 3]]),  # multinomial
    ],
)
def test_grid_of_C_in_one_batch_equals_sklearn_per_C(K, dims):
    Xtr, ytr, _, _ = planted(n=800, K=K, seed=3)
    d = np.repeat(np.asarray(dims), len(GRID), axis=0)  # [G, k]: the same dims per C
    fit = ProbeEngine(tol=1e-8).fit(Xtr, ytr, d, C=GRID)
    assert fit.converged.all()
    for g, C in enumerate(GRID):
        ref = _sk_coef(Xtr, ytr, d[g], C)
        ours = fit.coef[g].ravel()
        np.testing.assert_allclose(ours, ref, atol=2e-4 * max(1.0, np.abs(ref).max()))
    # and each equals the same probe fitted alone at that C
    for g in (0, 5, 9):
        alone = ProbeEngine(C=GRID[g], tol=1e-8).fit(Xtr, ytr, d[g : g + 1])
        np.testing.assert_allclose(fit.coef[g], alone.coef[0], atol=1e-6)


def test_grid_of_C_on_shared_prefix_batch_equals_sklearn():
    """Probes that share their first k-1 columns take the greedy-step path."""
    Xtr, ytr, _, _ = planted(n=800, seed=4)
    d = np.array([[0, 1, 2 + j] for j in range(4)] * 3)  # [12, 3]
    C = np.repeat([1e-3, 0.1, 10.0], 4)
    fit = ProbeEngine(tol=1e-8).fit(Xtr, ytr, d, C=C)
    for b in range(len(d)):
        ref = _sk_coef(Xtr, ytr, d[b], C[b])
        np.testing.assert_allclose(fit.coef[b].ravel(), ref, atol=2e-4 * max(1, abs(ref).max()))


def test_ridge_grid_of_alpha_equals_sklearn():
    Xtr, _, _, _ = planted(n=600, seed=5)
    rng = np.random.default_rng(0)
    y = Xtr[:, :4].astype(np.float64) @ rng.normal(size=4) + rng.normal(size=len(Xtr))
    d = np.repeat(np.arange(8)[None, :], len(GRID), axis=0)
    fit = ProbeEngine(regression=True).fit(Xtr, y, d, C=GRID)
    for g, C in enumerate(GRID):
        np.testing.assert_allclose(fit.coef[g].ravel(), _sk_coef(Xtr, y, d[g], C, True), atol=1e-6)


def test_engine_level_C_array_and_validation():
    Xtr, ytr, Xev, yev = planted(n=400, seed=6)
    d = np.array([[0, 1]] * 3)
    a = ProbeEngine(C=np.array([0.01, 1.0, 100.0])).fit_score(Xtr, ytr, Xev, yev, d)
    b = ProbeEngine().fit_score(Xtr, ytr, Xev, yev, d, C=[0.01, 1.0, 100.0])
    np.testing.assert_array_equal(a["loss"], b["loss"])
    assert len(set(np.round(a["loss"], 6))) == 3  # three different penalties, three fits
    with pytest.raises(ConfigError, match=r"expected a number or an array \[3\]"):
        ProbeEngine().fit(Xtr, ytr, d, C=[1.0, 2.0])
    with pytest.raises(ConfigError, match="select_C"):
        ProbeEngine(C="auto")
    with pytest.raises(ConfigError, match="positive finite"):
        ProbeEngine().fit(Xtr, ytr, d, C=[1.0, -1.0, 2.0])
