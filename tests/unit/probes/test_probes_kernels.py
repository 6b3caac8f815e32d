"""probekit.probes.kernels: fused and batched sums agree; compilation and its fallback."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
import torch
from probe_data import planted, random_dims

import probekit.probes.kernels as P
import probekit.probes.native as N
import probekit.probes.pair_kernels as PK
import probekit.probes.tiling as T
from probekit.probes import ProbeEngine


@pytest.fixture
def no_native(monkeypatch):
    """The torch.compile path itself (pairs on the CPU otherwise run the native kernels)."""
    monkeypatch.setattr(N, "_LIB", None)
    monkeypatch.setattr(N, "_TRIED", True)


def _toy(B=6, k=3, n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    Xt = torch.randn((8, n), generator=g)
    d = torch.stack([torch.randperm(8, generator=g)[:k] for _ in range(B)])
    theta = 0.3 * torch.randn((B, k + 1), generator=g)
    y = (torch.rand(n, generator=g) < 0.4).to(torch.float32)
    return Xt, d, theta, y


def test_fused_sums_equal_batched_and_the_explicit_gradient_and_hessian():
    Xt, d, theta, y = _toy()
    k = d.shape[1]
    fused = P.binary_pass_sums(Xt, d, theta, y).double().numpy()
    bmm = P.binary_pass_bmm(Xt, d, theta, y).double().numpy()
    np.testing.assert_allclose(fused, bmm, rtol=1e-5, atol=1e-4)
    g, H = P.unpack_binary(fused, k)
    X = Xt.double().numpy()
    for b in range(len(d)):
        A = np.vstack([X[d[b].numpy()], np.ones(X.shape[1])])  # [k+1, n]
        p = 1 / (1 + np.exp(-(theta[b].double().numpy() @ A)))
        np.testing.assert_allclose(g[b], A @ (p - y.double().numpy()), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(H[b], (A * (p * (1 - p))) @ A.T, rtol=1e-4, atol=1e-4)


def test_eval_kernels_agree():
    Xt, d, theta, y = _toy(seed=1)
    a = P.binary_eval(Xt, d, theta, y)
    b = P.binary_eval_bmm(Xt, d, theta, y)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5)
    z = (theta[:, :-1, None] * Xt[d]).sum(1) + theta[:, -1:]
    assert torch.equal(a[:, 2], (z > 0).float().sum(1))  # predicted positives


def test_shared_pass_equals_generic_pass():
    """Probes sharing their first s columns: the shared-column sums are the generic ones."""
    Xt, _, _, y = _toy(seed=2)
    s = 2
    own = torch.tensor([3, 5, 6, 7])
    d = torch.cat([torch.tensor([[0, 1]]).expand(len(own), s), own[:, None]], 1)
    theta = 0.2 * torch.randn((len(own), s + 2), generator=torch.Generator().manual_seed(3))
    S1 = torch.cat([Xt[:s], torch.ones((1, Xt.shape[1]))])
    a, b = np.triu_indices(s + 1)
    Q = S1[torch.as_tensor(a)] * S1[torch.as_tensor(b)]
    g, H = P.shared_unpack(P.shared_pass(S1, Q, Xt[own], theta, y), s)
    g0, H0 = P.unpack_binary(P.binary_pass_bmm(Xt, d, theta, y).double().numpy(), s + 1)
    np.testing.assert_allclose(g, g0, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(H, H0, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_compiled_kernels_match_eager(no_native):
    """The torch.compile path gives the eager path's answers (marked slow: compiling costs
    seconds to a minute on a cold cache)."""
    Xtr, ytr, Xev, yev = planted(n=3000, K=2, seed=12)
    dims = np.stack(np.triu_indices(24, 1), 1)  # all 276 pairs
    a = ProbeEngine(compile=False).fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy", "f1"))
    b = ProbeEngine(compile=True).fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy", "f1"))
    assert b.stats.compiled and not b.stats.compile_fallback
    assert np.abs(a["accuracy"] - b["accuracy"]).max() <= 1.5 / len(yev)
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-4)


def test_compile_failure_falls_back(monkeypatch, no_native):
    def broken(*a, **k):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(P.torch, "compile", broken)
    monkeypatch.setattr(P, "_COMPILED", {})
    monkeypatch.setattr(P, "_COMPILE_FAILED", set())
    Xtr, ytr, Xev, yev = planted(K=2, seed=13)
    dims = random_dims(24, 2, 100, seed=0)
    a = ProbeEngine(compile=True).fit_score(Xtr, ytr, Xev, yev, dims)
    b = ProbeEngine(compile=False).fit_score(Xtr, ytr, Xev, yev, dims)
    np.testing.assert_array_equal(a["accuracy"], b["accuracy"])
    assert a.stats.compiled and a.stats.compile_fallback


def test_compile_failure_at_run_time_falls_back_to_eager(monkeypatch, caplog, no_native):
    """torch.compile succeeds but the compiled kernel raises when called: the engine logs it,
    runs the same kernels eagerly (identical answers), records the fallback, and does not
    retry the broken kernel."""
    calls = []

    def fake_compile(fn, **kw):
        def broken(*a, **k):
            calls.append(fn.__name__)
            raise RuntimeError("inductor exploded")

        return broken

    monkeypatch.setattr(P.torch, "compile", fake_compile)
    monkeypatch.setattr(P, "_COMPILED", {})
    monkeypatch.setattr(P, "_COMPILE_FAILED", set())
    Xtr, ytr, Xev, yev = planted(K=2, seed=13)
    dims = random_dims(24, 2, 100, seed=0)
    with caplog.at_level(logging.WARNING, logger="probekit"):
        a = ProbeEngine(compile=True).fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy",))
        a2 = ProbeEngine(compile=True).fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy",))
    b = ProbeEngine(compile=False).fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy",))
    assert calls and len(calls) == len(set(calls))  # each broken kernel was tried once only
    assert "falling back to eager" in caplog.text
    for s in (a, a2):
        np.testing.assert_array_equal(s["accuracy"], b["accuracy"])
        np.testing.assert_allclose(s["loss"], b["loss"], rtol=1e-5)  # fused sums, run eagerly
        assert s.stats.compile_fallback
    assert not b.stats.compile_fallback


def test_eval_log_loss_is_exact_for_confident_wrong_predictions():
    """The summed log-loss equals float64 log-loss even where 1 - sigmoid(z) rounds to 0 in
    float32 (|z| = 40: the loss of that example is 40, not a clamped 69 or an overflow)."""
    Xt = torch.tensor([[40.0, -40.0, 1.0, -2.0]])
    d = torch.tensor([[0]])
    theta = torch.tensor([[1.0, 0.0]])
    y = torch.tensor([0.0, 1.0, 1.0, 0.0])
    z = np.array([40.0, -40.0, 1.0, -2.0])
    yn = y.numpy()
    want = np.logaddexp(0, z) - z * yn  # float64 log-loss: softplus(z) - z y
    assert np.allclose(want[:2], 40.0)
    for kernel in (P.binary_eval, P.binary_eval_bmm):
        np.testing.assert_allclose(kernel(Xt, d, theta, y)[0, 0].item(), want.sum(), rtol=1e-5)


@pytest.mark.parametrize(
    "fn", [P.binary_pass_sums, P.binary_pass_bmm, P.binary_eval, P.binary_eval_bmm]
)
def test_tiled_eager_kernels_equal_one_call(fn, monkeypatch):
    """Tiles of 3 probes x 64 examples (ragged at both ends) add up to the one-call sums."""
    monkeypatch.setattr(T, "TILE_N", 64)
    monkeypatch.setattr(T, "TILE_ELEMS", 3 * 64)
    Xt, d, theta, y = _toy(B=10, k=2, n=300, seed=3)
    calls = []
    orig = fn

    def spy(*a):
        calls.append(a[0].shape[1])
        return orig(*a)

    out = P.tiled(spy, Xt, d, theta, y)
    np.testing.assert_allclose(out.numpy(), fn(Xt, d, theta, y).numpy(), rtol=1e-5, atol=1e-4)
    assert len(calls) == 4 * 5 and max(calls) == 64 and min(calls) == 300 - 4 * 64
    calls.clear()
    P.tiled(spy, Xt[:, :10], d[:2], theta[:2], y[:10])  # small: one call, untiled
    assert calls == [10]


def test_eager_engine_tiles_the_batched_kernels_beyond_pairs(monkeypatch):
    """Probes of 3 columns run the batched products tile by tile, with the one-call answers
    (pairs take :mod:`.pair_kernels`, tested there)."""
    import probekit.probes.scoring as SC
    import probekit.probes.solvers as SO

    Xtr, ytr, Xev, yev = planted(n=500, m=300, D=10, seed=4)
    triples = random_dims(10, 3, 40, seed=1)
    whole = ProbeEngine(compile=False).fit_score(Xtr, ytr, Xev, yev, triples)
    monkeypatch.setattr(T, "TILE_N", 128)
    monkeypatch.setattr(T, "TILE_ELEMS", 4 * 128)
    widths = []

    def spy(fn):
        def run(X, d, *a):
            widths.append((X.shape[1], len(d)))
            return fn(X, d, *a)

        return run

    monkeypatch.setattr(P, "binary_pass_bmm", spy(P.binary_pass_bmm))
    monkeypatch.setattr(P, "binary_eval_bmm", spy(P.binary_eval_bmm))
    assert SO.eager_pass is P.eager_pass and SC.eager_eval is P.eager_eval
    tiles = ProbeEngine(compile=False).fit_score(Xtr, ytr, Xev, yev, triples)
    # the pass and the evaluation ran tile by tile, except a call small enough for one tile
    # (the last probes left in a Newton round: at most 4 * 128 probe-examples)
    assert any(w == 128 for w, _ in widths)
    assert all(w <= 128 or w * b <= 4 * 128 for w, b in widths), widths
    np.testing.assert_allclose(tiles["loss"], whole["loss"], rtol=1e-5)
    np.testing.assert_allclose(tiles["accuracy"], whole["accuracy"], atol=1.01 / len(yev))


@pytest.fixture
def fresh_cxx():
    P.cxx_found.cache_clear()
    yield
    P.cxx_found.cache_clear()


def _fake_cxx(tmp_path):
    exe = tmp_path / "fake-g++"
    exe.write_text("#!/bin/sh\necho fake-g++ 1.0\n")
    exe.chmod(0o755)
    return str(exe)


def test_cxx_found_reads_cxx_and_the_install_switch(monkeypatch, fresh_cxx, tmp_path):
    monkeypatch.delenv("TORCH_INDUCTOR_INSTALL_GXX", raising=False)
    monkeypatch.delitem(sys.modules, "torch._inductor.config", raising=False)
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-cxx"))
    assert not P.cxx_found()
    P.cxx_found.cache_clear()
    monkeypatch.setenv("CXX", _fake_cxx(tmp_path))
    assert P.cxx_found()
    P.cxx_found.cache_clear()
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-cxx"))
    monkeypatch.setenv("TORCH_INDUCTOR_INSTALL_GXX", "1")  # inductor would install one
    assert P.cxx_found() == (sys.platform == "linux")


@pytest.mark.skipif(sys.platform == "win32", reason="inductor looks for cl there")
def test_cxx_found_agrees_with_inductors_own_search(monkeypatch, fresh_cxx, tmp_path):
    """With inductor's config imported, its ``cpp.cxx`` (which code may set) decides, not
    ``$CXX``: the answer is inductor's own ``get_cpp_compiler`` finding one or not."""
    import torch._inductor.config as cfg
    from torch._inductor import cpp_builder

    monkeypatch.delenv("TORCH_INDUCTOR_INSTALL_GXX", raising=False)
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-cxx"))
    for cxx in ((None, _fake_cxx(tmp_path)), (None, str(tmp_path / "none")), _fake_cxx(tmp_path)):
        monkeypatch.setattr(cfg.cpp, "cxx", cxx)
        P.cxx_found.cache_clear()
        try:
            cpp_builder.get_cpp_compiler()
            inductor = True
        except Exception:
            inductor = False
        assert P.cxx_found() == inductor, cxx


def test_no_cpp_compiler_skips_torch_compile(monkeypatch, caplog, no_native):
    """Without a C++ compiler, compile=True does not try torch.compile (seconds of tracing
    before inductor fails): the eager kernels run at once, the fallback is recorded."""

    def never(*a, **k):
        raise AssertionError("torch.compile must not be tried without a compiler")

    pass_tile = PK._pass_tile

    monkeypatch.setattr(P.torch, "compile", never)
    monkeypatch.setattr(P, "_COMPILED", {})
    monkeypatch.setattr(P, "_COMPILE_FAILED", set())
    monkeypatch.setattr(P, "cxx_found", lambda: False)
    tiles = []
    monkeypatch.setattr(PK, "_pass_tile", lambda *a: tiles.append(1) or pass_tile(*a))
    Xtr, ytr, Xev, yev = planted(K=2, seed=13)
    dims = random_dims(24, 2, 100, seed=0)
    with caplog.at_level(logging.WARNING, logger="probekit"):
        a = ProbeEngine(compile=True).fit_score(Xtr, ytr, Xev, yev, dims)
    b = ProbeEngine(compile=False).fit_score(Xtr, ytr, Xev, yev, dims)
    assert caplog.text.count("found no C++ compiler") == 1  # once, for both kernels
    assert tiles, "the pairs ran on the eager pair kernels"
    assert a.stats.compiled and a.stats.compile_fallback
    np.testing.assert_array_equal(a["accuracy"], b["accuracy"])
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5)
