"""Native CPU kernels: pair probes and wide probes without torch's per-call costs.

The all-pairs scan spends its time in two fused loops per probe, the Newton pass of
:func:`.kernels.binary_pass_sums` and the evaluation of :func:`.kernels.binary_eval`, for
``k = 2``. ``torch.compile`` fuses them well but costs ~5 s in every new process even with its
cache warm (importing dynamo and inductor, tracing), several times the scan itself. Here the
same two loops for ``k = 2`` are a few lines of C; and the truncated Newton of a wide logistic
probe over a grid of ``C`` (:func:`newton_logistic`, the C in :mod:`.native_newton`), whose
~220 sequential CG iterations were mostly the overhead of ~18 small torch operations each.
They are built once per machine with the system's C compiler (``$CC``, else ``cc``; OpenMP,
an inline vectorised ``exp``) into ``$PROBEKIT_CACHE_DIR/kernels/`` (default
``~/.cache/probekit/kernels/``), keyed by a hash of the source, flags and compiler, and
loaded with :mod:`ctypes` (~1 ms) in every later process. Sums run in float32 blocks of
1,024 examples accumulated in float64, so they agree with the torch kernels to float32
rounding.

Nothing is required: without a compiler, or when the build or load fails (logged once), or
with ``PROBEKIT_NATIVE_KERNELS=0``, :func:`native_for` and :func:`newton_logistic` give None and
the engine uses ``torch.compile``, the wide fits their torch loop, as before. CPU tensors
only; the caller's threads count (``torch.get_num_threads()``) is passed on, so the kernels
use what torch would.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .native_newton import SOURCE as NEWTON_SOURCE

__all__ = ["available", "eval2", "kernel_dir", "load", "native_for", "newton_logistic", "pass2"]

logger = logging.getLogger(__name__)

SOURCE = (
    r"""
#include <math.h>
#include <stdint.h>
#define BLK 1024
#define SUB 64
/* exp(x) for x in [-87, 88], inline, so that the vectorised loops keep their accumulators in
   registers: a call to libmvec's expf spills eleven of them around every 16 examples (the
   vector ABI preserves no zmm register), and inlining made the pass 1.3x faster. Cephes'
   expf: Cody-Waite reduction by ln 2, a degree-6 polynomial, 2^n from the exponent bits;
   relative error at most 3e-7 (expf's float32 rounding: 6e-8). No range check: the
   callers clamp x to [-87, 80]. */
static inline float pk_exp(float x) {
    const float n = rintf(x * 1.44269504088896341f);
    const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { float f; int32_t i; } s;
    s.i = ((int32_t)n + 127) << 23;
    return p * s.f;
}
/* Gradient and packed Hessian (binary_pass_sums' layout) of B logistic probes on 2 columns. */
void pk_pass2(const float *Xt, int64_t n, const int64_t *d, int64_t B, const float *th,
              const float *y, float *out, int nt) {
    #pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t b = 0; b < B; b++) {
        const float *x0 = Xt + d[2 * b] * n, *x1 = Xt + d[2 * b + 1] * n;
        const float w0 = th[3 * b], w1 = th[3 * b + 1], c = th[3 * b + 2];
        double A[9] = {0};
        for (int64_t i0 = 0; i0 < n; i0 += BLK) {
            const int64_t i1 = i0 + BLK < n ? i0 + BLK : n;
            float g0 = 0, g1 = 0, gc = 0, h00 = 0, h01 = 0, h0c = 0, h11 = 0, h1c = 0, hcc = 0;
            #pragma omp simd reduction(+:g0,g1,gc,h00,h01,h0c,h11,h1c,hcc)
            for (int64_t i = i0; i < i1; i++) {
                const float a0 = x0[i], a1 = x1[i];
                /* |z| <= 80: exp cannot overflow (-ffast-math assumes no inf: an inf
                   here made NaN sums); sigmoid(80) already rounds to 1 in float32 */
                const float z = fminf(fmaxf(c + w0 * a0 + w1 * a1, -80.0f), 80.0f);
                const float p = 1.0f / (1.0f + pk_exp(-z));
                const float r = p - y[i], v = p * (1.0f - p), v0 = v * a0, v1 = v * a1;
                g0 += r * a0; g1 += r * a1; gc += r;
                h00 += v0 * a0; h01 += v0 * a1; h0c += v0; h11 += v1 * a1; h1c += v1; hcc += v;
            }
            A[0] += g0; A[1] += g1; A[2] += gc; A[3] += h00; A[4] += h01; A[5] += h0c;
            A[6] += h11; A[7] += h1c; A[8] += hcc;
        }
        for (int j = 0; j < 9; j++) out[9 * b + j] = (float)A[j];
    }
}
/* Summed log-loss, true positives and predicted positives (binary_eval's layout). The loss
   softplus(z) - z y = max(z, 0) - z y + log(1 + exp(-|z|)) takes one logarithm per SUB
   examples, of the product of their factors (each in (1, 2], so a product stays below
   2^SUB), instead of log1pf per example: 1.8x faster, the sums equal within 3e-7. */
void pk_eval2(const float *Xe, int64_t m, const int64_t *d, int64_t B, const float *th,
              const float *y, float *out, int nt) {
    #pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t b = 0; b < B; b++) {
        const float *x0 = Xe + d[2 * b] * m, *x1 = Xe + d[2 * b + 1] * m;
        const float w0 = th[3 * b], w1 = th[3 * b + 1], c = th[3 * b + 2];
        double A[3] = {0};
        for (int64_t i0 = 0; i0 < m; i0 += BLK) {
            const int64_t i1 = i0 + BLK < m ? i0 + BLK : m;
            float loss = 0, tp = 0, pp = 0;
            for (int64_t j0 = i0; j0 < i1; j0 += SUB) {
                const int64_t j1 = j0 + SUB < i1 ? j0 + SUB : i1;
                float prod = 1.0f;
                #pragma omp simd reduction(+:loss,tp,pp) reduction(*:prod)
                for (int64_t i = j0; i < j1; i++) {
                    const float z = c + w0 * x0[i] + w1 * x1[i];
                    const float pos = z > 0.0f ? 1.0f : 0.0f;
                    loss += fmaxf(z, 0.0f) - z * y[i];
                    prod *= 1.0f + pk_exp(fmaxf(-fabsf(z), -87.0f));
                    tp += pos * y[i]; pp += pos;
                }
                loss += logf(prod);
            }
            A[0] += loss; A[1] += tp; A[2] += pp;
        }
        for (int j = 0; j < 3; j++) out[3 * b + j] = (float)A[j];
    }
}
"""
    + NEWTON_SOURCE
)

FLAGS = ("-O3", "-march=native", "-ffast-math", "-fopenmp", "-fPIC")  # compiling
#: linking: without -ffast-math, which would link GCC's crtfastmath.o, whose constructor turns
#: on flush-to-zero for the whole process when the library loads (numpy's and torch's
#: subnormals would silently become 0)
LINK_FLAGS = ("-shared", "-fopenmp")

_LIB: ctypes.CDLL | None = None
_TRIED = False


def kernel_dir() -> Path:
    """Where built kernels are kept: ``$PROBEKIT_CACHE_DIR/kernels`` or
    ``~/.cache/probekit/kernels``."""
    root = os.environ.get("PROBEKIT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "probekit"
    )
    return Path(root) / "kernels"


def _cpu_id() -> str:
    """The CPU the kernels are built for (``-march=native``): model and instruction-set flags
    from ``/proc/cpuinfo`` where there is one, so that a cache directory shared by machines
    of other CPUs (a cluster's home) never hands one a library it cannot run."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    keep = [ln for ln in lines if ln.split(":")[0].strip() in ("model name", "flags")]
    return "\n".join(dict.fromkeys(keep))


def _build(cc: str, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        src, obj, so = Path(tmp) / "pk.c", Path(tmp) / "pk.o", Path(tmp) / out.name
        src.write_text(SOURCE)
        for cmd in ([cc, *FLAGS, "-c", str(src), "-o", str(obj)],
                    [cc, *LINK_FLAGS, str(obj), "-o", str(so), "-lm"]):  # fmt: skip
            subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)
        os.replace(so, out)  # atomic: a concurrent build or a reader never sees half a file


def load() -> ctypes.CDLL | None:
    """The kernel library, built on first use on this machine; None when unavailable here
    (then logged once, and the engine keeps ``torch.compile``)."""
    global _LIB, _TRIED
    if _TRIED:
        return _LIB
    _TRIED = True
    if os.environ.get("PROBEKIT_NATIVE_KERNELS", "1") == "0":
        return None
    cc = shutil.which(os.environ.get("CC") or "cc") or shutil.which("gcc")
    if cc is None:
        logger.info(
            "no C compiler: pair probes use torch.compile (or, without a C++ compiler, the "
            "eager pair kernels), wide probes their torch loop"
        )
        return None
    key = hashlib.sha256(
        "\0".join([SOURCE, *FLAGS, *LINK_FLAGS, cc, platform.machine(), _cpu_id()]).encode()
    ).hexdigest()[:16]
    path = kernel_dir() / f"probekit-kernels-{key}.so"
    try:
        if not path.exists():
            logger.info("building probekit's native kernels once, into %s", path)
            _build(cc, path)
        lib = ctypes.CDLL(str(path))
        for name in ("pk_pass2", "pk_eval2"):
            fn = getattr(lib, name)
            fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64]
            fn.argtypes += [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
            fn.restype = None
        c_p, c_i64, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
        lib.pk_newton.argtypes = [c_p, c_i64, c_i64, c_i64, c_i64, c_p, c_p, c_p]
        lib.pk_newton.argtypes += [ctypes.c_double, c_int, c_int, c_p, c_p, c_p, c_int]
        lib.pk_newton.restype = c_i64
        _LIB = lib
    except (OSError, subprocess.SubprocessError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        logger.warning(
            "native kernels unavailable (%s): pair probes use torch.compile, wide probes "
            "their torch loop",
            detail[:300],
        )
    return _LIB


def _call(name: str, X: torch.Tensor, d: torch.Tensor, th: torch.Tensor, y, width: int):
    X, d = X.contiguous(), d.contiguous()
    th = th.to(torch.float32).contiguous()
    y = y.to(torch.float32).contiguous()
    out = torch.empty((d.shape[0], width), dtype=torch.float32)
    fn = getattr(_LIB, name)
    fn(X.data_ptr(), X.shape[1], d.data_ptr(), d.shape[0], th.data_ptr(), y.data_ptr(),
       out.data_ptr(), torch.get_num_threads())  # fmt: skip
    # -ffast-math assumes finite values and the logit clamp would turn a NaN or infinite
    # parameter into finite sums: such probes get NaN sums, as the torch kernels give them
    bad = ~torch.isfinite(th).all(1)
    if bad.any():
        out[bad] = float("nan")
    return out


def pass2(Xt: torch.Tensor, d: torch.Tensor, theta: torch.Tensor, y: torch.Tensor):
    """:func:`.kernels.binary_pass_sums` for ``d [B, 2]``: ``[B, 9]``."""
    return _call("pk_pass2", Xt, d, theta, y, 9)


def eval2(Xe: torch.Tensor, d: torch.Tensor, theta: torch.Tensor, ye: torch.Tensor):
    """:func:`.kernels.binary_eval` for ``d [B, 2]``: ``[B, 3]``."""
    return _call("pk_eval2", Xe, d, theta, ye, 3)


def newton_logistic(
    AT: torch.Tensor,
    Y: torch.Tensor,
    lam: torch.Tensor,
    T: torch.Tensor,
    tol: float,
    max_newton: int,
    max_cg: int,
    g0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray, int] | None:
    """:func:`.newton_cg._newton` for ``G`` logistic probes in the C of :mod:`.native_newton`.

    Args:
        AT: ``[r+1, n]`` float32 the basis ``A``'s transpose (last row: the intercept's ones).
        Y: ``[K', n]`` the free classes' indicators: ``K' = 1`` binary (the labels, 0 or 1),
            else multinomial (one-hot over all ``K'`` classes).
        lam: ``[G]`` penalties.
        T: ``[G, K', r+1]`` the start (not modified).
        tol, max_newton, max_cg: as :func:`.newton_cg.fit_c_grid`'s.
        g0: ``[G]`` the gradient norms the forcing terms are relative to (default: those
            at ``T``).

    Returns:
        ``(T [G, K', r+1], n_newton [G], converged [G], CG iterations)`` as ``_newton``'s, or
        None when the kernel is unavailable or an input is not finite (the caller then runs
        the torch loop).
    """
    if load() is None or AT.device.type != "cpu":
        return None
    f32 = torch.float32
    AT, Y = AT.to(f32).contiguous(), Y.to(f32).contiguous()
    lam, T = lam.to(f32).contiguous(), T.to(f32).clone(memory_format=torch.contiguous_format)
    g0 = None if g0 is None else g0.to(f32).contiguous()
    given = (AT, lam, T) if g0 is None else (AT, lam, T, g0)
    # (a finite sum: every entry finite, in one pass; an overflow only declines. float32:
    # sum(dtype=float64) would first copy AT to float64, twice its size)
    if not all(math.isfinite(float(t.sum())) for t in given):
        return None
    (G, K, r1), n = T.shape, AT.shape[1]
    if Y.shape != (K, n) or AT.shape[0] != r1:
        raise ValueError(f"native Newton: Y {tuple(Y.shape)}, AT {tuple(AT.shape)}, T {(G, K, r1)}")
    n_newton = np.zeros(G, dtype=np.int64)
    converged = np.zeros(G, dtype=np.uint8)
    n_cg = _LIB.pk_newton(
        AT.data_ptr(), r1, n, G, K, Y.data_ptr(), lam.data_ptr(), T.data_ptr(), float(tol),
        int(max_newton), int(max_cg), None if g0 is None else g0.data_ptr(),
        n_newton.ctypes.data, converged.ctypes.data, torch.get_num_threads(),
    )  # fmt: skip
    if n_cg < 0:
        raise MemoryError(f"native Newton: no memory for {G} probes of {K} x {r1} x {n}")
    return T, n_newton, converged.astype(bool), int(n_cg)


def available() -> bool:
    """Whether the native kernels can run in this process (builds them on first use)."""
    return load() is not None


def native_for(name: str, X: torch.Tensor, d: torch.Tensor) -> Callable | None:
    """The native kernel standing in for the torch kernel ``name`` on these arguments (CPU
    float32 features, 2 columns), or None."""
    if X.device.type != "cpu" or X.dtype != torch.float32 or d.dtype != torch.int64:
        return None
    if d.ndim != 2 or d.shape[1] != 2:
        return None
    if name not in ("binary_pass_sums", "binary_eval") or not available():
        return None
    return pass2 if name == "binary_pass_sums" else eval2
