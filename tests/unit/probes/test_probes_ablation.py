"""Ablation of a dimension set (probekit.probes.ablation): without the set, and LEACE-erased."""

from __future__ import annotations

import numpy as np
import pytest

from probekit.errors import ConfigError
from probekit.probes import ProbeEngine
from probekit.probes.ablation import ablate, fit_set_eraser


def _planted(n=4000, D=10, seed=0, copy=True):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.standard_normal((n, D))
    X[:, 3] += 2.0 * y
    if copy:  # dimension 7 carries a noisy copy of dimension 3
        X[:, 7] = X[:, 3] + 0.3 * rng.standard_normal(n)
    return X.astype(np.float32), y


def test_erasure_removes_all_linear_covariance_with_the_set_and_keeps_the_rest():
    X, _ = _planted()
    er = fit_set_eraser(X, [3])
    Xe = er.transform(X)
    Xc = X.astype(np.float64) - X.mean(0)
    Ec = Xe.astype(np.float64) - Xe.mean(0)
    cov = Ec.T @ Xc[:, [3]] / len(X)
    assert np.abs(cov).max() < 1e-4
    # dimensions uncorrelated with dimension 3 are left (almost) as they were
    np.testing.assert_allclose(Xe[:, 0], X[:, 0], atol=0.05)
    before = X.copy()
    er.transform(X)
    np.testing.assert_array_equal(X, before)


def test_information_copied_elsewhere_survives_removal_but_not_erasure():
    X, y = _planted()
    Xtr, ytr, Xev, yev = X[:3000], y[:3000], X[3000:], y[3000:]
    res = ablate(ProbeEngine(), Xtr, ytr, Xev, yev, [3])
    assert res["without"]["accuracy"] > 0.8  # dimension 7 still carries it
    assert res["erased"]["accuracy"] < 0.6  # nothing linear is left
    X, y = _planted(copy=False)
    res = ablate(ProbeEngine(), X[:3000], y[:3000], X[3000:], y[3000:], [5])
    assert res["without"]["accuracy"] > 0.8 and res["erased"]["accuracy"] > 0.8


def test_bad_dims():
    X, _ = _planted(n=100)
    with pytest.raises(ConfigError, match="non-empty list of indices < 10"):
        fit_set_eraser(X, [10])
