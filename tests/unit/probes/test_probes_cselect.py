"""``C="auto"``: select_C against a scikit-learn selection over the same grid and split."""

from __future__ import annotations

import numpy as np
import pytest
from probe_data import planted
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, log_loss
from sklearn.preprocessing import StandardScaler

from probekit.errors import ConfigError
from probekit.probes import (
    DEFAULT_C_GRID,
    ProbeEngine,
    evaluate_probe,
    parse_C,
    select_C,
    train_val_split,
)


def _sk_fit(X, y, C, regression):
    sc = StandardScaler().fit(X.astype(np.float64))
    est = Ridge(alpha=1 / C) if regression else LogisticRegression(C=C, tol=1e-8, max_iter=5000)
    return sc, est.fit(sc.transform(X.astype(np.float64)), y)


def sklearn_selection(Xtr, ytr, Xev, yev, grid, split, regression=False):
    """LogisticRegressionCV-style: fit per C on the fit part, choose on validation by the
    primary metric (ties: loss), refit on all train, score on eval."""
    itr, iva = split
    curve, losses = [], []
    for C in grid:
        sc, est = _sk_fit(Xtr[itr], ytr[itr], C, regression)
        A = sc.transform(Xtr[iva].astype(np.float64))
        if regression:
            p = est.predict(A)
            curve.append(np.corrcoef(p, ytr[iva])[0, 1])
            losses.append(np.mean((p - ytr[iva]) ** 2))
        else:
            curve.append(accuracy_score(ytr[iva], est.predict(A)))
            losses.append(log_loss(ytr[iva], est.predict_proba(A), labels=est.classes_))
    tied = np.asarray(curve) >= max(curve) - max(1e-3, 1 / len(iva))  # one example's worth
    best = int(np.lexsort((np.arange(len(grid)), losses, ~tied))[0])
    sc, est = _sk_fit(Xtr, ytr, grid[best], regression)
    p = est.predict(sc.transform(Xev.astype(np.float64)))
    ev = np.corrcoef(p, yev)[0, 1] if regression else accuracy_score(yev, p)
    return grid[best], np.asarray(curve), float(ev)


def _small_wide(seed=0):
    """Few examples, many noisy dims: C=1 overfits, so the choice matters."""
    Xtr, ytr, Xev, yev = planted(n=240, m=600, D=80, seed=seed)
    return Xtr, ytr, Xev, yev


def test_select_C_matches_sklearn_selection_planted():
    Xtr, ytr, Xev, yev = _small_wide()
    split = train_val_split(ytr, 0.25, seed=1)
    grid = list(DEFAULT_C_GRID)
    eng = ProbeEngine(tol=1e-6)
    sel = select_C(eng, Xtr, ytr, np.arange(80), grid=grid, split=split, metrics=("accuracy",))
    c_ref, curve_ref, ev_ref = sklearn_selection(Xtr, ytr, Xev, yev, grid, split)
    np.testing.assert_allclose(sel.val_scores, curve_ref, atol=2 / len(split[1]))
    assert c_ref == sel.C
    assert sel.C < 1.0  # the planted problem is one where C=1 is not the best
    assert sel.chosen_on == "full"
    ours = eng.fit_score(Xtr, ytr, Xev, yev, np.arange(80)[None, :], C=sel.C)["accuracy"][0]
    assert abs(ours - ev_ref) * 100 <= 0.5


def test_select_C_ridge_matches_sklearn_selection():
    Xtr, _, Xev, _ = _small_wide(seed=2)
    rng = np.random.default_rng(3)
    w = np.zeros(80)
    w[:5] = rng.normal(size=5)
    X64 = np.concatenate([Xtr, Xev]).astype(np.float64)
    yall = (X64 - X64.mean(0)) / X64.std(0) @ w + 2.0 * rng.normal(size=len(X64))
    ytr, yev = yall[: len(Xtr)], yall[len(Xtr) :]
    split = train_val_split(ytr, 0.25, seed=0)
    grid = list(DEFAULT_C_GRID)
    eng = ProbeEngine(regression=True)
    sel = select_C(eng, Xtr, ytr, np.arange(80), grid=grid, split=split, metrics=("pearson",))
    c_ref, curve_ref, ev_ref = sklearn_selection(Xtr, ytr, Xev, yev, grid, split, True)
    np.testing.assert_allclose(sel.val_scores, curve_ref, atol=1e-6)
    assert c_ref == sel.C
    ours = eng.fit_score(Xtr, ytr, Xev, yev, np.arange(80)[None, :], ("pearson",), C=sel.C)
    assert abs(ours["pearson"][0] - ev_ref) * 100 <= 0.5


def test_sample_of_probes_is_averaged_and_recorded():
    Xtr, ytr, _, _ = _small_wide()
    eng = ProbeEngine()
    d = np.array([[0, 1, 2], [3, 4, 5], [10, 11, 12]])
    sel = select_C(eng, Xtr, ytr, d, grid=[0.01, 1.0], seed=0)
    per = [select_C(eng, Xtr, ytr, row, grid=[0.01, 1.0], seed=0) for row in d]
    np.testing.assert_allclose(sel.val_scores, np.mean([p.val_scores for p in per], 0))
    rec = sel.record()
    assert rec["mode"] == "auto" and rec["chosen_on"] == "sample" and rec["n_probes"] == 3
    assert rec["grid"] == [0.01, 1.0] and len(rec["val_curve"]) == 2


def test_ties_go_to_lower_validation_loss():
    """Separable classes: every C of the grid scores accuracy 1 on validation, and the
    validation loss decides (the largest C), not the first grid value."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 100)
    X = (y * 6.0 + rng.normal(size=200))[:, None]
    sel = select_C(ProbeEngine(), X, y, [0], grid=[1.0, 10.0, 100.0], seed=0)
    assert (sel.val_scores == 1.0).all()
    assert np.all(np.diff(sel.val_loss) < 0) and sel.C == 100.0


def test_evaluate_probe_auto_records_the_choice_and_refits():
    Xtr, ytr, Xev, yev = _small_wide()
    rec = evaluate_probe(Xtr, ytr, Xev, yev, "all", metrics=["accuracy"], n_random=0)
    assert rec["C"]["mode"] == "auto" and rec["C"]["chosen_on"] == "full"
    assert rec["probe"]["C"] == rec["C"]["chosen"] and rec["config"]["C"] == "auto"
    fixed = evaluate_probe(
        Xtr, ytr, Xev, yev, "all", metrics=["accuracy"], n_random=0, C=rec["C"]["chosen"]
    )
    assert fixed["C"] == {"mode": "fixed", "chosen": rec["C"]["chosen"]}
    assert fixed["metrics"] == rec["metrics"]  # the refit on all of train at the chosen C
    i = rec["C"]["grid"].index(rec["C"]["chosen"])
    assert rec["val_metrics"]["accuracy"] == pytest.approx(rec["C"]["val_curve"][i])


def test_parse_C():
    assert parse_C("auto") == "auto" and parse_C("AUTO") == "auto"
    assert parse_C("0.5") == 0.5 and parse_C(2) == 2.0
    for bad in ("often", -1.0, 0, float("nan"), True, None):
        with pytest.raises(ConfigError, match="C must be 'auto' or a positive"):
            parse_C(bad)
    with pytest.raises(ConfigError, match="C grid"):
        select_C(ProbeEngine(), np.zeros((4, 2)), [0, 1, 0, 1], [0], grid=[-1.0])
