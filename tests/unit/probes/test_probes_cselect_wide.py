"""C="auto" on wide probes: the matrix-free Newton-CG of :mod:`probekit.probes.newton_cg`
against scikit-learn per C, and :func:`select_C`'s fast path against its exact engine path
(the same choice, validation losses within a small tolerance); binary and multinomial, on
planted data and on real MiniLM features."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from probe_data import planted
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from probekit.probes import (
    DEFAULT_C_GRID,
    ProbeEngine,
    cselect,
    native,
    newton_cg,
    select_C,
    train_val_split,
)
from probekit.probes.newton_cg import fit_c_grid

GRID = np.asarray(DEFAULT_C_GRID)


def _exact_and_fast(X, y, dims, metric="accuracy", split=None, monkeypatch=None):
    """``(fast, exact)`` selections of ``select_C`` on the same split: the exact one with
    the wide path switched off (every probe on the engine's dense Newton)."""
    split = split if split is not None else train_val_split(y, 0.2, seed=0)
    eng = ProbeEngine()
    fast = select_C(eng, X, y, dims, split=split, metrics=(metric,))
    monkeypatch.setattr(cselect, "WIDE_K", 10**9)
    exact = select_C(eng, X, y, dims, split=split, metrics=(metric,))
    monkeypatch.undo()
    return fast, exact


def _same_choice(fast, exact):
    """The same C, or one whose exact validation score ties the exact best."""
    tol = max(cselect.TIE_TOL, 1.0 / exact.n_val)
    assert fast.C == exact.C or (exact.val_scores[fast.index] >= exact.val_scores.max() - tol), (
        fast.record(),
        exact.record(),
    )


@pytest.mark.parametrize("loop", ["native", "one_copy", "two_copies"])
@pytest.mark.parametrize(
    ("K", "n", "D"), [(2, 240, 80), (2, 150, 200), (3, 240, 80), (3, 1500, 100)]
)
def test_newton_cg_equals_sklearn_per_C(K, n, D, loop, monkeypatch):
    """A tight tolerance (down to the float32 floor): the coefficients of every C equal
    scikit-learn's (n < D takes the basis of X X^T), on the C loop where it is built, and on
    the torch loop with the basis kept as one copy (``A`` a view of
    ``AT``, what small bases use) and as two (what large ones use; CUDA's path)."""
    if loop == "native" and not native.available():
        pytest.skip("no C compiler for the native kernels")
    one_copy = loop != "two_copies"
    monkeypatch.setattr(newton_cg, "_NATIVE_CG", loop == "native")
    monkeypatch.setattr(newton_cg, "ONE_COPY_ELEMS", 2**62 if one_copy else 0)
    Xtr, ytr, _, _ = planted(n=n, D=D, K=K, seed=2)
    A = StandardScaler().fit_transform(Xtr.astype(np.float64))
    b = newton_cg._basis(torch.as_tensor(A, dtype=torch.float32))
    assert (b.A.data_ptr() == b.AT.data_ptr()) == one_copy
    fit = fit_c_grid(torch.as_tensor(A, dtype=torch.float32), ytr, K, GRID[:7], tol=1e-12)
    assert fit.converged.all() and fit.rank == min(n - 1, D)
    for g, C in enumerate(GRID[:7]):
        ref = LogisticRegression(C=C, tol=1e-10, max_iter=10000).fit(A, ytr)
        ours, want = fit.coef[g], ref.coef_
        if K > 2:  # the multinomial intercepts are defined up to a common shift
            ours_b, want_b = fit.intercept[g] - fit.intercept[g].mean(), ref.intercept_
            want_b = want_b - want_b.mean()
        else:
            ours_b, want_b = fit.intercept[g], ref.intercept_
        scale = max(1.0, np.abs(want).max())
        np.testing.assert_allclose(ours, want, atol=2e-3 * scale)
        np.testing.assert_allclose(ours_b, want_b, atol=2e-3 * scale)


@pytest.mark.parametrize("K", [2, 3])
def test_directions_of_tiny_variance_are_fitted_at_weak_penalties(K):
    """Features dominated by 3 directions, the label in one of 61 others with 2.5e-7 of
    their variance (as a random BERT-768 layer's, 500 of whose 768 eigenvalues lie below
    1e-6 of the largest): at a weak penalty the optimum puts large weights there, so the
    basis must keep every direction. It dropped those below 1e-6 of the largest eigenvalue
    and sat near chance (0.55 against scikit-learn's 0.83 for K = 2)."""
    rng = np.random.default_rng(5)
    n, k, small = 700, 64, 5e-4
    B = rng.normal(size=(n, k)) * np.r_[np.ones(3), np.full(k - 3, small)]
    Q, _ = np.linalg.qr(rng.normal(size=(k, k)))
    lab = B[:, 10] / small + 0.3 * rng.logistic(size=n)
    y = np.digitize(lab, np.quantile(lab, np.linspace(0, 1, K + 1)[1:-1]))
    A = StandardScaler().fit_transform(B @ Q)
    fit = fit_c_grid(torch.as_tensor(A, dtype=torch.float32), y, K, np.array([1e3]), tol=1e-12)
    assert fit.rank < 10 and fit.converged.all()  # (the numerical rank: informational)
    ref = LogisticRegression(C=1e3, tol=1e-10, max_iter=20000).fit(A, y)
    z = A @ fit.coef[0].T + fit.intercept[0]
    ours = (z[:, 0] > 0).astype(int) if K == 2 else z.argmax(1)
    assert ref.score(A, y) > 0.7 and (ours == ref.predict(A)).mean() > 0.99


@pytest.mark.parametrize(
    ("K", "n", "D"), [(2, 240, 80), (2, 150, 200), (3, 240, 80), (3, 150, 200)]
)
def test_fast_path_chooses_as_the_exact_path_planted(K, n, D, monkeypatch):
    Xtr, ytr, _, _ = planted(n=n, D=D, K=K, seed=1)
    fast, exact = _exact_and_fast(Xtr, ytr, np.arange(D), monkeypatch=monkeypatch)
    _same_choice(fast, exact)
    np.testing.assert_allclose(fast.val_scores, exact.val_scores, atol=1.0 / exact.n_val)
    np.testing.assert_allclose(fast.val_loss, exact.val_loss, rtol=2e-3)
    assert fast.record().keys() == exact.record().keys() and fast.chosen_on == "full"


def test_fast_path_on_a_sample_of_wide_probes_is_averaged(monkeypatch):
    Xtr, ytr, _, _ = planted(n=300, D=160, seed=3)
    d = np.stack([np.arange(80), np.arange(80, 160)])
    sel = select_C(ProbeEngine(), Xtr, ytr, d, grid=[0.01, 1.0], seed=0)
    per = [select_C(ProbeEngine(), Xtr, ytr, row, grid=[0.01, 1.0], seed=0) for row in d]
    np.testing.assert_allclose(sel.val_loss, np.mean([p.val_loss for p in per], 0))
    assert sel.chosen_on == "sample" and per[0].chosen_on == "dims"
    fast, exact = _exact_and_fast(Xtr, ytr, d, monkeypatch=monkeypatch)
    _same_choice(fast, exact)
    upto = int(np.searchsorted(GRID, 1.0)) + 1  # see the MiniLM test for larger C
    np.testing.assert_allclose(fast.val_loss[:upto], exact.val_loss[:upto], rtol=2e-3)


def test_narrow_probes_and_ridge_keep_the_engine_path(monkeypatch):
    """Below WIDE_K (and for ridge) the result is the engine's, bit for bit."""
    Xtr, ytr, _, _ = planted(n=300, D=80, seed=4)
    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        raise AssertionError("the wide path was taken")

    monkeypatch.setattr(cselect, "fit_c_grid", spy)
    select_C(ProbeEngine(), Xtr, ytr, np.arange(cselect.WIDE_K - 1), seed=0)
    y = Xtr[:, :3].astype(np.float64).sum(1)
    select_C(ProbeEngine(regression=True), Xtr, y, np.arange(80), seed=0, metrics=("pearson",))
    assert calls == []


@pytest.mark.integration
def test_fast_path_chooses_as_the_exact_path_on_minilm(minilm_cache, monkeypatch):
    """Real features: CoLA (1,000 training examples, the 384 last-layer CLS dims; MCC), and
    a three-way task on real sentences (CoLA unacceptable / CoLA acceptable / SST-2).

    Validation losses are compared up to C = 1: above it, confident wrong predictions have
    logits beyond 17, where the engine's float32 probabilities round 1 - p to 0 and its
    log-loss saturates at -log(1e-30) (the matrix-free path takes ``softplus``, exact there)."""
    from probekit.cache import ActivationCache

    with (
        ActivationCache(minilm_cache("cola", "train", limit=1000)) as tr,
        ActivationCache(minilm_cache("sst2", "dev")) as sst,
    ):
        X, y = tr.features(-1, "cls"), tr.labels
        Xs = sst.features(-1, "cls")
    upto = int(np.searchsorted(GRID, 1.0)) + 1
    X3 = np.concatenate([X, Xs])
    y3 = np.concatenate([y, np.full(len(Xs), 2)])
    for Xa, ya, metric in ((X, y, "mcc"), (X3, y3, "accuracy")):
        fast, exact = _exact_and_fast(
            Xa, ya, np.arange(384), metric=metric, monkeypatch=monkeypatch
        )
        _same_choice(fast, exact)
        np.testing.assert_allclose(fast.val_scores, exact.val_scores, atol=2.0 / exact.n_val)
        np.testing.assert_allclose(fast.val_loss[:upto], exact.val_loss[:upto], rtol=1e-3)


@pytest.mark.parametrize("K", [2, 3])
def test_constant_features_fit_the_intercept_only(K, monkeypatch):
    """A layer whose vector is the same for every example (BERT's embedding-layer [CLS]) has
    rank 0 after standardisation: both paths give every C the prior, so the choice is tied."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, K, size=120)
    X = np.tile(rng.normal(size=(1, 80)), (120, 1)).astype(np.float32)
    fit = fit_c_grid(torch.zeros((120, 80)), y, K, np.asarray(DEFAULT_C_GRID))
    assert fit.rank == 0 and np.all(fit.coef == 0)
    fast, exact = _exact_and_fast(X, y, np.arange(80), monkeypatch=monkeypatch)
    _same_choice(fast, exact)
    np.testing.assert_allclose(fast.val_scores, exact.val_scores)


def test_a_given_rotation_gives_the_diagonal_of_its_gram_matrix():
    """With ``V`` given (a refit reusing the basis), ``eig`` is the diagonal of ``Z^T Z``
    (``Z = X V``), taken as squared row norms of ``AT`` without a temporary of squares."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 12)) * rng.uniform(0.5, 3, 12)
    X -= X.mean(0)
    V, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    b = newton_cg._basis(torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(V))
    Z = X @ V
    np.testing.assert_allclose(b.eig.numpy(), (Z * Z).sum(0), rtol=1e-5)
    np.testing.assert_allclose(b.AT[:-1].numpy(), Z.T, rtol=1e-4, atol=1e-4)
    assert (b.AT[-1] == 1).all() and b.rank == 12
