"""probekit.probes.estimator: ``LinearProbe(C="auto")`` on both backends: the choice on
planted data (a tiny C best, a large C best), the same C on both backends, the record, parity
with scikit-learn's ``LogisticRegressionCV`` on the same grid and split, and scikit-learn's
meta-estimators (clone, GridSearchCV)."""

from __future__ import annotations

import numpy as np
import pytest
from probe_data import planted
from sklearn.base import clone
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from probekit.probes import DEFAULT_C_GRID, LinearProbe, train_val_split

BACKENDS = ("sklearn", "torch")


def _noisy_wide(seed=0):
    """Few examples, many noise dims: a small C is clearly best (C=1 overfits)."""
    return planted(n=200, m=1000, D=150, seed=seed)


def _clean_narrow(seed=0):
    """Many examples, few dims, a strong planted signal: a large C is best."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3000, 6))
    y = X @ np.array([3.0, -2.0, 2.0, 0, 0, 0]) + 0.05 * rng.logistic(size=3000) > 0
    return X[:2000], y[:2000].astype(np.int64), X[2000:], y[2000:].astype(np.int64)


@pytest.mark.parametrize("data", [_noisy_wide, _clean_narrow])
def test_both_backends_choose_the_same_C(data):
    Xtr, ytr, Xev, yev = data()
    fits = [LinearProbe(C="auto", backend=b, tol=1e-8).fit(Xtr, ytr) for b in BACKENDS]
    a, b = fits
    assert a.C_ == b.C_
    if data is _noisy_wide:
        assert a.C_ <= 0.01  # the planted problem: C=1 overfits
    else:
        assert a.C_ >= 1.0
    np.testing.assert_allclose(
        a.C_selection_["val_curve"],
        b.C_selection_["val_curve"],
        atol=1.01 / a.C_selection_["n_val"],
    )
    np.testing.assert_allclose(a.C_selection_["val_loss"], b.C_selection_["val_loss"], rtol=2e-3)
    assert abs(a.score(Xev, yev) - b.score(Xev, yev)) <= 0.005
    # the refit on all of X at the chosen C is the numeric-C probe
    fixed = LinearProbe(C=a.C_, tol=1e-8).fit(Xtr, ytr)
    np.testing.assert_allclose(a.coef_, fixed.coef_)


def test_the_record_and_the_numeric_C():
    Xtr, ytr, _, _ = _noisy_wide(seed=1)
    p = LinearProbe(C="auto", C_grid=[1.0, 0.001, 0.1], val_fraction=0.25, seed=3).fit(Xtr, ytr)
    rec = p.C_selection_
    assert rec["mode"] == "auto" and rec["chosen_on"] == "full" and rec["metric"] == "accuracy"
    assert rec["grid"] == [0.001, 0.1, 1.0] and rec["chosen"] == p.C_
    assert len(rec["val_curve"]) == len(rec["val_loss"]) == 3 and rec["n_probes"] == 1
    n_val = len(train_val_split(ytr, 0.25, seed=3)[1])
    assert (rec["n_fit"], rec["n_val"]) == (len(ytr) - n_val, n_val)
    fixed = LinearProbe(C=0.5).fit(Xtr, ytr)
    assert fixed.C_ == 0.5 and fixed.C_selection_ is None
    mcc = LinearProbe(C="auto", scoring="mcc", backend="torch").fit(Xtr, ytr)
    assert mcc.C_selection_["metric"] == "mcc"


def test_ridge_auto_backends_agree():
    Xtr, _, _, _ = _noisy_wide(seed=2)
    rng = np.random.default_rng(0)
    Xs = StandardScaler().fit_transform(Xtr.astype(np.float64))
    y = Xs[:, :4] @ rng.normal(size=4) + 3.0 * rng.normal(size=len(Xs))
    a, b = (LinearProbe(C="auto", regression=True, backend=bk).fit(Xtr, y) for bk in BACKENDS)
    assert a.C_ == b.C_ and a.C_selection_["metric"] == "pearson"
    np.testing.assert_allclose(a.C_selection_["val_curve"], b.C_selection_["val_curve"], atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_auto_equals_logistic_regression_cv_on_the_same_grid_and_split(backend):
    """Within 0.5 points of eval accuracy (LogisticRegressionCV standardises on all of train,
    we on the fitting part: the same choice here, a small C that beats C=1 by 3 points)."""
    Xtr, ytr, Xev, yev = planted(n=600, m=1000, D=200, seed=0)
    split = train_val_split(ytr, 0.2, seed=0)
    sc = StandardScaler().fit(Xtr.astype(np.float64))
    ref = LogisticRegressionCV(
        Cs=list(DEFAULT_C_GRID), cv=[split], scoring="accuracy", max_iter=5000, tol=1e-8
    ).fit(sc.transform(Xtr.astype(np.float64)), ytr)
    ref_acc = float((ref.predict(sc.transform(Xev.astype(np.float64))) == yev).mean())
    ours = LinearProbe(C="auto", backend=backend, tol=1e-8).fit(Xtr, ytr)
    assert abs(ours.score(Xev, yev) - ref_acc) * 100 <= 0.5
    assert ours.C_ == float(ref.C_[0]) < 1.0
    assert ours.score(Xev, yev) >= LinearProbe(C=1.0).fit(Xtr, ytr).score(Xev, yev) + 0.02


def test_clone_and_grid_search():
    Xtr, ytr, Xev, yev = planted(n=300, m=100, D=12, seed=5)
    p = LinearProbe(C="auto", C_grid=(0.01, 1.0), scoring="mcc")
    q = clone(p)
    assert q.get_params() == p.get_params() and not hasattr(q, "C_")
    gs = GridSearchCV(LinearProbe(), {"C": ["auto", 0.001]}, cv=3).fit(Xtr, ytr)
    assert gs.best_params_["C"] in ("auto", 0.001)
    assert gs.best_estimator_.C_ in DEFAULT_C_GRID or gs.best_estimator_.C_ == 0.001
    assert 0.0 <= gs.score(Xev, yev) <= 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"C": "often"}, "C must be 'auto' or a positive number, got 'often'"),
        ({"C": -1.0}, "C must be 'auto' or a positive finite number, got -1.0"),
        ({"C": None}, "C must be 'auto' or a positive number, got None"),
        ({"C": "auto", "C_grid": [-1.0]}, "C grid: expected one or more positive"),
        ({"C": "auto", "C_grid": ["x"]}, "C grid: expected positive numbers"),
        ({"C": "auto", "scoring": "pearson"}, "scoring must be one of .* got 'pearson'"),
        ({"C": "auto", "val_fraction": 1.5}, "val_fraction must lie in"),
    ],
)
def test_bad_settings(kwargs, match):
    Xtr, ytr, _, _ = planted(n=100, m=10, D=8, seed=6)
    for backend in BACKENDS:
        with pytest.raises(ValueError, match=match):
            LinearProbe(backend=backend, **kwargs).fit(Xtr, ytr)
