"""The native truncated Newton of wide probes (:func:`probekit.probes.native.newton_logistic`,
the C of :mod:`probekit.probes.native_newton`) against the torch loop of
:mod:`probekit.probes.newton_cg` it stands in for, binary and multinomial: the same Newton
steps, CG iterations and stopping, the same objective to the tolerance and coefficients to
float32 rounding; the same bits whatever the thread count; the torch loop where the kernels
are unavailable or an input is not finite."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from probe_data import planted
from scipy.special import logsumexp
from sklearn.preprocessing import StandardScaler

import probekit.probes.native as N
from probekit.probes import DEFAULT_C_GRID, newton_cg
from probekit.probes.newton_cg import fit_c_grid

pytestmark = pytest.mark.skipif(not N.available(), reason="no C compiler for the native kernels")

GRID = np.asarray(DEFAULT_C_GRID)


def _features(n, D, K=2, seed=2, separable=False):
    Xtr, ytr, _, _ = planted(n=n, D=D, K=K, seed=seed)
    A = StandardScaler().fit_transform(Xtr.astype(np.float64))
    if separable:
        ytr = (A[:, 0] + 0.5 * A[:, 1] > 0).astype(np.int64)
    return torch.as_tensor(A, dtype=torch.float32), ytr


def _both(monkeypatch, X, y, K=2, **kw):
    """``(native, torch)`` fits of the same problem."""
    C = kw.pop("C", GRID)
    nat = fit_c_grid(X, y, K, C, **kw)
    monkeypatch.setattr(newton_cg, "_NATIVE_CG", False)
    ref = fit_c_grid(X, y, K, C, **kw)
    monkeypatch.undo()
    return nat, ref


def _objective(X, y, fit, g, C):
    """The objective in float64 at the fit's penalty ``g``."""
    W, b = fit.coef[g], fit.intercept[g]
    Z = X.double().numpy() @ W.T + b
    if Z.shape[1] == 1:
        Z = np.c_[np.zeros(len(Z)), Z]
    return (logsumexp(Z, 1) - Z[np.arange(len(y)), y]).sum() + 0.5 / C[g] * (W**2).sum()


def _close(nat, ref, rtol=1e-4):
    for g in range(len(ref.coef)):
        scale = max(1.0, np.abs(ref.coef[g]).max())
        np.testing.assert_allclose(nat.coef[g], ref.coef[g], atol=rtol * scale, err_msg=str(g))
        if ref.coef.shape[1] == 1:  # (multinomial intercepts: defined up to a common shift)
            np.testing.assert_allclose(nat.intercept[g], ref.intercept[g], atol=rtol * scale)


@pytest.mark.parametrize(
    ("n", "D", "K", "separable"),
    # n < D (the basis of X X^T, r < k); sizes off every block (CHUNK 256, NBLK 1,024, rows
    # 8 and 4 at a time, U rows 2 at a time); a separable layer (large C: many Newton steps,
    # saturated logits); three and five classes
    [
        (240, 80, 2, False),
        (150, 200, 2, False),
        (1037, 77, 2, False),
        (2100, 13, 2, False),
        (600, 70, 2, True),
        (240, 80, 3, False),
        (150, 200, 3, False),
        (1037, 77, 5, False),
    ],
)
def test_native_newton_equals_the_torch_loop(n, D, K, separable, monkeypatch):
    X, y = _features(n, D, K=K, separable=separable)
    nat, ref = _both(monkeypatch, X, y, K=K, tol=1e-6)
    np.testing.assert_array_equal(nat.n_newton, ref.n_newton)
    np.testing.assert_array_equal(nat.converged, ref.converged)
    # (rounding moves a CG stop by an iteration here and there)
    assert abs(nat.n_cg - ref.n_cg) <= 2 + ref.n_cg // 20, (nat.n_cg, ref.n_cg)
    for g in range(len(GRID)):  # both within the tolerance (1e-6 per example) of the optimum
        assert abs(_objective(X, y, nat, g, GRID) - _objective(X, y, ref, g, GRID)) < 1e-6 * n
    # where the objective is flat (n < D, weak penalties; three classes at large C), the two
    # loops stop at points of the tolerance apart along it
    _close(nat, ref, rtol=1e-4 if n > D and K == 2 else 5e-3)


def test_native_newton_to_the_float32_floor_and_from_a_start(monkeypatch):
    """The refit's settings: tolerance 1e-10 (the float32 floor stops it) and a start near
    the optimum (forcing terms relative to the closed-form start's gradient)."""
    X, y = _features(900, 60, seed=4)
    first = fit_c_grid(X[:700], y[:700], 2, GRID[[2, 9]], tol=1e-6)
    start = (first.coef, first.intercept)
    nat, ref = _both(monkeypatch, X, y, C=GRID[[2, 9]], tol=1e-10, start=start)
    np.testing.assert_array_equal(nat.converged, ref.converged)
    assert np.abs(nat.n_newton - ref.n_newton).max() <= 1
    _close(nat, ref, rtol=2e-4)


@pytest.mark.parametrize("K", [2, 3])
def test_native_newton_is_the_same_bits_on_one_thread_and_two(K):
    """Threads split the examples of ``A v`` and the rows of ``A^T u``: every sum is taken
    in the same order, so the thread count changes no bit."""
    X, y = _features(1300, 90, K=K, seed=5)
    b = newton_cg._basis(X)
    Kf = 1 if K == 2 else K
    lam = torch.as_tensor(1.0 / GRID, dtype=torch.float32)
    T = torch.zeros((len(GRID), Kf, b.AT.shape[0]))
    Y = torch.nn.functional.one_hot(torch.as_tensor(y), K).T.float()[1:] if K == 2 else None
    Y = torch.nn.functional.one_hot(torch.as_tensor(y), K).T.float() if Y is None else Y
    before = torch.get_num_threads()
    try:
        fits = []
        for nt in (1, 2):
            torch.set_num_threads(nt)
            fits.append(N.newton_logistic(b.AT, Y, lam, T, 1e-6, 50, 100))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(fits[0][0], fits[1][0]) and fits[0][3] == fits[1][3]
    np.testing.assert_array_equal(fits[0][1], fits[1][1])


def test_the_torch_loop_runs_where_the_kernel_cannot(monkeypatch):
    """Unavailable kernels or an input that is not finite: the fit is the torch loop's, bit
    for bit; where the kernels are built, a fit of any size runs in C."""
    X, y = _features(300, 70, seed=6)
    AT = torch.cat([X, torch.ones((len(X), 1))], 1).T.contiguous()
    lam = torch.ones(2)
    T = torch.zeros((2, 1, AT.shape[0]))
    T[1, 0, 3] = float("nan")
    Y = torch.as_tensor(y, dtype=torch.float32)[None]
    assert N.newton_logistic(AT, Y, lam, T, 1e-6, 50, 100) is None
    assert N.newton_logistic(AT, Y, lam, T[:1], 1e-6, 50, 100) is not None
    monkeypatch.setattr(newton_cg, "_NATIVE_CG", False)
    ref = fit_c_grid(X, y, 2, GRID[:4], tol=1e-6)
    monkeypatch.undo()
    nat = fit_c_grid(X, y, 2, GRID[:4], tol=1e-6)
    assert not np.array_equal(nat.coef, ref.coef)  # (the two loops round differently)
    monkeypatch.setattr(N, "load", lambda: None)
    np.testing.assert_array_equal(fit_c_grid(X, y, 2, GRID[:4], tol=1e-6).coef, ref.coef)
    monkeypatch.undo()
    assert not newton_cg._native_loop(torch.device("meta"))


def test_a_fit_of_any_size_runs_in_c(monkeypatch):
    """Above the 2^23 multiply-adds per CG product where the torch loop used to take over
    (2,000 x 421 x 10 penalties: 8.4M), the fit runs in C and returns its result."""
    calls = []
    real = N.newton_logistic

    def spy(*a, **k):
        out = real(*a, **k)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(N, "newton_logistic", spy)
    X, y = _features(2000, 420, seed=7)
    fit = fit_c_grid(X, y, 2, np.logspace(-4, 2, 10), tol=1e-6)
    assert calls == [True] and fit.converged.all()
