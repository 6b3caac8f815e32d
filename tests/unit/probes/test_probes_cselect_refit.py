"""``cselect.refit_wide``: the refit at the chosen C of a wide logistic probe by the
matrix-free Newton-CG equals the engine's refit (eval scores and loss) and scikit-learn's
coefficients, with and without the selection's eigenbasis; narrow probes and ridge are the
engine's, bit for bit; on MiniLM CoLA at every C of the grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from probe_data import planted
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from probekit.probes import DEFAULT_C_GRID, ProbeEngine, cselect, select_C, train_val_split
from probekit.probes.cselect import refit_wide
from probekit.probes.newton_cg import fit_c_grid

METRICS = ("accuracy", "mcc")


def _both(X, y, Xe, ye, dims, C, sel=None, metrics=METRICS):
    eng = ProbeEngine(tol=1e-6)
    ours = refit_wide(eng, X, y, Xe, ye, dims, C, metrics=metrics, selection=sel)
    ref = eng.fit_score(X, y, Xe, ye, np.asarray(dims)[None, :], metrics=metrics, C=C)
    return ours, ref


def _same_scores(ours, ref, n_eval, rtol=1e-4):
    for m in ours:
        if m == "loss":
            np.testing.assert_allclose(ours[m], ref[m], rtol=rtol)
        else:  # at most one borderline eval example apart
            np.testing.assert_allclose(
                ours[m], ref[m], atol=1.01 / n_eval * (2 if m == "mcc" else 1)
            )
    assert ours.stats.converged.all() and ours.keys() == ref.keys()


@pytest.mark.parametrize(("K", "n", "D"), [(2, 600, 100), (3, 600, 100), (2, 150, 200)])
@pytest.mark.parametrize("C", [0.001, 0.1, 10.0])
def test_refit_wide_equals_the_engine(K, n, D, C):
    """Fresh eigenbasis, and the selection's (fit part of n >= D only: else None)."""
    Xtr, ytr, Xev, yev = planted(n=n, m=400, D=D, K=K, seed=3)
    metrics = METRICS if K == 2 else ("accuracy",)
    sel = select_C(ProbeEngine(), Xtr, ytr, np.arange(D), grid=[C, 1.0], seed=0)
    assert (sel.warm.V is None) == (0.8 * n < D)
    for s in (None, sel):
        ours, ref = _both(Xtr, ytr, Xev, yev, np.arange(D), C, s, metrics)
        _same_scores(ours, ref, len(yev))


@pytest.mark.parametrize("K", [2, 3])
@pytest.mark.parametrize(("n", "C", "reused"), [(1100, 10.0, True), (600, 10.0, False)])
def test_refit_reuses_the_basis_at_any_C_with_rows_to_spare(K, n, C, reused, monkeypatch):
    """Above REUSE_BASIS_C the selection's basis is reused when the fitting part had
    REUSE_ROWS_PER_DIM examples per column (880 >= 8 x 100), else a fresh one is built; the
    scores are the engine's either way."""
    Xtr, ytr, Xev, yev = planted(n=n, m=400, D=100, K=K, seed=3)
    sel = select_C(ProbeEngine(), Xtr, ytr, np.arange(100), grid=[0.1, C], seed=0)
    bases = []
    fit = cselect.fit_c_grid

    def spy(*args, **kwargs):
        bases.append(kwargs.get("basis"))
        return fit(*args, **kwargs)

    monkeypatch.setattr(cselect, "fit_c_grid", spy)
    metrics = METRICS if K == 2 else ("accuracy",)
    ours, ref = _both(Xtr, ytr, Xev, yev, np.arange(100), C, sel, metrics)
    assert C > cselect.REUSE_BASIS_C and (bases[-1] is not None) == reused
    _same_scores(ours, ref, len(yev))


@pytest.mark.parametrize("K", [2, 3])
def test_newton_cg_in_the_fit_parts_basis_equals_sklearn(K):
    """The optimum on all of train does not depend on the rotation: in the eigenbasis of the
    validation split's fitting part, the coefficients are scikit-learn's."""
    Xtr, ytr, _, _ = planted(n=500, D=80, K=K, seed=4)
    fit_idx, _ = train_val_split(ytr, 0.2, seed=0)
    A = StandardScaler().fit_transform(Xtr.astype(np.float64))
    Af = StandardScaler().fit_transform(Xtr[fit_idx].astype(np.float64))
    grid = np.asarray([1e-3, 0.1, 1.0])
    V = fit_c_grid(torch.as_tensor(Af, dtype=torch.float32), ytr[fit_idx], K, grid).basis
    assert V.shape == (80, 80)
    fit = fit_c_grid(torch.as_tensor(A, dtype=torch.float32), ytr, K, grid, tol=1e-12, basis=V)
    assert fit.converged.all()
    for g, C in enumerate(grid):
        ref = LogisticRegression(C=C, tol=1e-10, max_iter=10000).fit(A, ytr)
        np.testing.assert_allclose(
            fit.coef[g], ref.coef_, atol=2e-3 * max(1, np.abs(ref.coef_).max())
        )


def test_narrow_probes_and_ridge_are_the_engines(monkeypatch):
    Xtr, ytr, Xev, yev = planted(n=300, m=100, D=80, seed=5)

    def spy(*args, **kwargs):
        raise AssertionError("the wide path was taken")

    monkeypatch.setattr(cselect, "fit_c_grid", spy)
    d = np.arange(cselect.WIDE_K - 1)
    ours, ref = _both(Xtr, ytr, Xev, yev, d, 0.1)
    assert all(np.array_equal(ours[m], ref[m]) for m in ref)
    yr = Xtr[:, :3].astype(np.float64).sum(1)
    eng = ProbeEngine(regression=True)
    got = refit_wide(eng, Xtr, yr, Xev, yr[:100], np.arange(80), 0.1, metrics=("pearson",))
    want = eng.fit_score(Xtr, yr, Xev, yr[:100], np.arange(80)[None, :], ("pearson",), C=0.1)
    assert np.array_equal(got["pearson"], want["pearson"])


@pytest.mark.integration
def test_refit_wide_equals_the_engine_on_minilm(minilm_cache):
    """CoLA, 1,000 training examples, the 384 last-layer CLS dims, at every C of the grid
    (with the selection's basis up to REUSE_BASIS_C, a fresh one above)."""
    from probekit.cache import ActivationCache

    with (
        ActivationCache(minilm_cache("cola", "train", limit=1000)) as tr,
        ActivationCache(minilm_cache("cola", "dev")) as dv,
    ):
        X, y, Xe, ye = tr.features(-1, "cls"), tr.labels, dv.features(-1, "cls"), dv.labels
    sel = select_C(ProbeEngine(), X, y, np.arange(384), metrics=("mcc",))
    for C in DEFAULT_C_GRID:
        ours, ref = _both(X, y, Xe, ye, np.arange(384), C, sel)
        _same_scores(ours, ref, len(ye), rtol=2e-5)


def test_inputs_are_never_modified():
    """float64 (and read-only) features: the wide path standardises a copy."""
    Xtr, ytr, Xev, yev = (a.astype(np.float64) for a in planted(n=300, m=100, D=70, seed=6))
    keep = Xtr.copy(), Xev.copy()
    Xev.flags.writeable = False
    sel = select_C(ProbeEngine(), Xtr, ytr, np.arange(70), grid=[0.01, 1.0], seed=0)
    refit_wide(ProbeEngine(), Xtr, ytr, Xev, yev, np.arange(70), sel.C, selection=sel)
    assert np.array_equal(Xtr, keep[0]) and np.array_equal(Xev, keep[1])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("K", [2, 3])
def test_refit_starts_from_the_selections_solution(K, threads, monkeypatch):
    """The selection's solution at the chosen C, converted to all of train's standardisation,
    gives the same logits on raw features; the refit from it reaches the same optimum in
    fewer Newton steps than from the closed-form start (labels from a noiseless linear rule:
    far from the prior-only model; 6 against 8 steps, 9 against 15 for K = 3). On two
    threads (another eigenbasis, to rounding), K = 3 once stalled at the float32 floor: the
    gradient's float32 noise along the classes' common shift, left in the CG's residual,
    made its ``res . z`` negative and the CG diverge (now projected out)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _refit_from_the_selection(K, monkeypatch)
    finally:
        torch.set_num_threads(before)


def _refit_from_the_selection(K, monkeypatch):
    Xtr, _, Xev, _ = planted(n=800, m=300, D=90, K=K, seed=7)
    W = np.random.default_rng(1).normal(size=(90, K))
    z, ze = Xtr.astype(np.float64) @ W, Xev.astype(np.float64) @ W
    cut = np.median(z[:, 0])
    ytr = z.argmax(1) if K > 2 else (z[:, 0] > cut).astype(int)
    yev = ze.argmax(1) if K > 2 else (ze[:, 0] > cut).astype(int)
    C = 10.0
    sel = select_C(ProbeEngine(), Xtr, ytr, np.arange(90), grid=[0.1, C], seed=0)
    w = sel.warm
    mean, scale = cselect.standardization_stats(Xtr)
    coef, b = w.start_at(C, mean, scale, 1 if K == 2 else K)
    X64 = Xtr.astype(np.float64)
    g = w.grid.index(C)
    z_fit = ((X64 - w.mean) / w.scale) @ w.coef[g].T + w.intercept[g]
    z_all = ((X64 - mean) / scale) @ coef[0].T + b[0]
    np.testing.assert_allclose(z_all, z_fit, rtol=1e-9, atol=1e-9)
    assert w.start_at(0.5, mean, scale, coef.shape[1]) is None  # not on the grid
    warm = refit_wide(ProbeEngine(), Xtr, ytr, Xev, yev, np.arange(90), C, selection=sel)
    monkeypatch.setattr(cselect.WideStart, "start_at", lambda *a, **k: None)
    cold = refit_wide(ProbeEngine(), Xtr, ytr, Xev, yev, np.arange(90), C, selection=sel)
    _same_scores(warm, cold, len(yev))  # (both at the float32 floor: 1e-5 apart)
    assert warm.stats.converged.all() and cold.stats.converged.all()
    assert warm.stats.n_iter[0] < cold.stats.n_iter[0]
