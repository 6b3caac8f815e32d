"""probekit.probes.native: the C pair kernels equal the torch kernels; unavailable is harmless."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from probe_data import planted

import probekit.probes.kernels as P
import probekit.probes.native as N
from probekit.probes import ProbeEngine

pytestmark = pytest.mark.skipif(not N.available(), reason="no C compiler for the native kernels")


def _toy(B=37, n=2500, seed=0):
    """n not a multiple of the 1,024-example block; logits large enough to saturate."""
    g = torch.Generator().manual_seed(seed)
    Xt = 3 * torch.randn((9, n), generator=g)
    d = torch.stack([torch.randperm(9, generator=g)[:2] for _ in range(B)])
    theta = 2.0 * torch.randn((B, 3), generator=g)
    y = (torch.rand(n, generator=g) < 0.4).to(torch.float32)
    return Xt, d, theta, y


def test_native_pass_and_eval_equal_the_torch_kernels():
    Xt, d, theta, y = _toy()
    ref = P.binary_pass_sums(Xt, d, theta, y).double()
    got = N.pass2(Xt, d, theta, y).double()
    np.testing.assert_allclose(got, ref, rtol=2e-4, atol=2e-3)
    ref_e = P.binary_eval(Xt, d, theta, y).double()
    got_e = N.eval2(Xt, d, theta, y).double()
    np.testing.assert_allclose(got_e[:, 0], ref_e[:, 0], rtol=1e-4)  # summed log-loss
    np.testing.assert_array_equal(got_e[:, 1:], ref_e[:, 1:])  # counts are exact


def test_logits_beyond_the_float32_exp_range_stay_finite():
    """A separable pair at large C drives |z| past 88, where expf overflows: the sums must
    stay finite and equal torch's (before the clamp, -ffast-math made them NaN)."""
    Xt, d, _, y = _toy(B=8, n=1500, seed=3)
    y = (Xt[0] > 0).to(torch.float32)
    for scale in (30.0, 300.0, 3000.0):
        theta = torch.tensor([[scale, 0.5, 0.1]] * len(d))
        got = N.pass2(Xt, d, theta, y).double()
        assert torch.isfinite(got).all(), scale
        np.testing.assert_allclose(got, P.binary_pass_sums(Xt, d, theta, y).double(), atol=1e-3)
        got_e = N.eval2(Xt, d, theta, y).double()
        assert torch.isfinite(got_e).all(), scale
        ref_e = P.binary_eval(Xt, d, theta, y).double()
        np.testing.assert_allclose(got_e[:, 0], ref_e[:, 0], rtol=1e-4, atol=1e-3)


def test_non_finite_parameters_give_nan_sums_as_in_torch():
    """The logit clamp must not turn a NaN or infinite parameter into finite sums."""
    Xt, d, theta, y = _toy(B=6)
    theta[1, 2] = float("nan")
    theta[4, 0] = float("inf")
    got, got_e = N.pass2(Xt, d, theta, y), N.eval2(Xt, d, theta, y)
    for out in (got, got_e):
        assert torch.isnan(out[[1, 4]]).all() and torch.isfinite(out[[0, 2, 3, 5]]).all()


def test_loading_the_kernels_keeps_subnormal_numbers():
    """Linked without -ffast-math: loading the library does not turn on flush-to-zero for the
    process (GCC's crtfastmath.o would), so numpy's subnormals stay."""
    import subprocess
    import sys

    code = (
        "import numpy as np; from probekit.probes import native; assert native.available(); "
        "print(float(np.float32(1e-39) * np.float32(1)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) > 0


def test_engine_on_native_kernels_gives_the_eager_answers(monkeypatch):
    Xtr, ytr, Xev, yev = planted(n=3000, K=2, seed=12)
    dims = np.stack(np.triu_indices(24, 1), 1)
    a = ProbeEngine(compile=False).fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy",))
    used, orig = [], N.pass2

    def spy(*args):
        used.append(len(args[1]))
        return orig(*args)

    monkeypatch.setattr(N, "pass2", spy)
    b = ProbeEngine(compile=True).fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy",))
    assert b.stats.compiled and not b.stats.compile_fallback
    assert sum(used) >= len(dims)  # every probe's Newton pass ran natively
    assert np.abs(a["accuracy"] - b["accuracy"]).max() <= 1.5 / len(yev)
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-4)


def test_only_cpu_float32_pairs_go_native():
    Xt, d, _, _ = _toy()
    assert N.native_for("binary_pass_sums", Xt, d) is N.pass2
    assert N.native_for("binary_eval", Xt, d) is N.eval2
    assert N.native_for("binary_pass_sums", Xt, torch.zeros((3, 3), dtype=torch.int64)) is None
    assert N.native_for("binary_pass_sums", Xt.double(), d) is None
    assert N.native_for("shared_pass", Xt, d) is None


def test_without_a_compiler_the_engine_keeps_torch_compile(monkeypatch, tmp_path):
    monkeypatch.setattr(N, "_LIB", None)
    monkeypatch.setattr(N, "_TRIED", False)
    monkeypatch.setenv("CC", "no-such-compiler-xyz")
    monkeypatch.setattr(N.shutil, "which", lambda name: None)
    assert N.load() is None and not N.available()
    Xt, d, _, _ = _toy()
    assert N.native_for("binary_pass_sums", Xt, d) is None


def test_a_failed_build_is_logged_and_harmless(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(N, "_LIB", None)
    monkeypatch.setattr(N, "_TRIED", False)
    monkeypatch.setenv("PROBEKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(N, "SOURCE", "this is not C")
    with caplog.at_level("WARNING", logger="probekit"):
        assert N.load() is None
    assert "native kernels unavailable" in caplog.text
    assert not list((tmp_path / "kernels").glob("*.so"))  # nothing half-built left behind
