"""probekit.probes.estimator: LinearProbe on both backends, scikit-learn's estimator checks."""

from __future__ import annotations

import numpy as np
from probe_data import planted

from probekit.probes import LinearProbe


def test_linear_probe_backends_agree():
    Xtr, ytr, Xev, yev = planted(K=2, seed=9)
    a = LinearProbe(C=0.3, backend="sklearn", tol=1e-8).fit(Xtr, ytr)
    b = LinearProbe(C=0.3, backend="torch", tol=1e-8).fit(Xtr, ytr)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-4)
    assert abs(a.score(Xev, yev) - b.score(Xev, yev)) <= 0.004
    Xtr3, ytr3, Xev3, _ = planted(K=3, seed=9)
    a3 = LinearProbe(backend="sklearn", tol=1e-8).fit(Xtr3, ytr3)
    b3 = LinearProbe(backend="torch", tol=1e-8).fit(Xtr3, ytr3)
    np.testing.assert_allclose(a3.coef_, b3.coef_, atol=5e-4)
    np.testing.assert_allclose(a3.predict_proba(Xev3), b3.predict_proba(Xev3), atol=1e-4)
    yr = Xtr.astype(np.float64) @ np.arange(24) / 24
    r1 = LinearProbe(regression=True, backend="sklearn").fit(Xtr, yr)
    r2 = LinearProbe(regression=True, backend="torch").fit(Xtr, yr)
    np.testing.assert_allclose(r1.coef_, r2.coef_, atol=1e-5)


def _checks():
    from sklearn.utils.estimator_checks import parametrize_with_checks

    ests = [
        LinearProbe(),
        LinearProbe(backend="torch"),
        LinearProbe(regression=True),
        LinearProbe(regression=True, backend="torch"),
        LinearProbe(C="auto"),
        LinearProbe(C="auto", backend="torch"),
        LinearProbe(C="auto", regression=True),
        LinearProbe(C="auto", regression=True, backend="torch"),
    ]
    # every applicable check passes; none needs to be marked as an expected failure
    return parametrize_with_checks(ests)


@_checks()
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
