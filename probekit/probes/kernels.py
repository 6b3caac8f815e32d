"""The sums over training and evaluation examples, and the ``torch.compile`` wrapper.

One Newton pass of a binary logistic probe needs, per probe, the gradient and the Hessian at
the current parameters: ~10 sums over the n training examples for k = 2. For small k
(``k <= SMALL_K``) they are written as explicit sums so that ``torch.compile`` fuses the whole
pass (gather of the k columns, sigmoid, all sums) into one loop over the examples, with no
``[B, n]`` intermediate in memory (for pairs on the CPU, :mod:`.native` runs the same two
loops in C). Without compilation (:func:`eager_pass`, :func:`eager_eval`), pairs on the CPU
run :mod:`.pair_kernels`' grouped kernels, and anything else the batched matrix products
(``*_bmm``), tile by tile on the CPU (:mod:`.tiling`). Without a C++ compiler for inductor
(:func:`cxx_found`), ``torch.compile`` is not tried on the CPU.

Greedy forward selection fits batches in which every probe shares the same k-1 columns (the
selected ones) and differs in one candidate column. For those (``shared_*``), the linear
predictor, gradient and Hessian are GEMMs against the shared columns (and their pairwise
products) plus a few row-wise sums over the candidate column: no ``[B, k, n]`` gather, no bmm.

Every kernel takes standardised features one row per column (``Xt [Du, n]``, float32) and
returns float32 sums; the engine's solvers unpack them into float64 NumPy.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
from collections.abc import Callable

import numpy as np
import torch

from .native import native_for
from .pair_kernels import pair_eval, pair_pass
from .tiling import tiled

__all__ = [
    "SMALL_K",
    "binary_eval",
    "binary_eval_bmm",
    "binary_pass_bmm",
    "binary_pass_sums",
    "call_kernel",
    "compile_failed",
    "cxx_found",
    "eager_eval",
    "eager_pass",
    "shared_eval",
    "shared_pass",
    "shared_unpack",
    "tiled",
    "unpack_binary",
]

logger = logging.getLogger(__name__)

SMALL_K = 4  # largest k handled by the fused explicit-sum kernels


def binary_pass_sums(
    Xt: torch.Tensor, d: torch.Tensor, theta: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Gradient and packed Hessian of the summed log-loss of ``B`` binary logistic probes.

    Args:
        Xt: ``[Du, n]`` standardised training features (float32), one row per column.
        d: ``[B, k]`` row indices into ``Xt``.
        theta: ``[B, k + 1]`` float32 parameters (weights, then intercept).
        y: ``[n]`` float32 labels in {0, 1}.

    Returns:
        ``[B, (k + 1) + (k + 1)(k + 2)/2]``: the gradient, then the upper triangle of the
        Hessian row by row (intercept last). The objective itself is not computed: the
        Newton safeguard uses the gradient norm, and a logarithm per example would double
        the cost of the pass.
    """
    k = d.shape[1]
    xs = [Xt[d[:, a]] for a in range(k)]
    z = theta[:, k : k + 1]
    for a in range(k):
        z = z + theta[:, a : a + 1] * xs[a]
    p = torch.sigmoid(z)
    r = p - y
    s = p * (1 - p)
    out = []
    for a in range(k):
        out.append((r * xs[a]).sum(1))
    out.append(r.sum(1))
    for a in range(k):
        sx = s * xs[a]
        for b in range(a, k):
            out.append((sx * xs[b]).sum(1))
        out.append(sx.sum(1))
    out.append(s.sum(1))
    return torch.stack(out, 1)


def binary_pass_bmm(
    Xt: torch.Tensor, d: torch.Tensor, theta: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """As :func:`binary_pass_sums`, with batched matrix products (any k; eager)."""
    k = d.shape[1]
    Xg = Xt[d]  # [B, k, n]
    p = torch.sigmoid(torch.bmm(theta[:, None, :k], Xg)[:, 0] + theta[:, k : k + 1])
    r = p - y
    s = p * (1 - p)
    del p
    g = torch.bmm(Xg, r[:, :, None])[:, :, 0]
    Xs = Xg * s[:, None, :]
    Hww = torch.bmm(Xs, Xg.transpose(1, 2))
    hwb = Xs.sum(2)
    del Xs
    cols = [g, r.sum(1)[:, None]]
    for a in range(k):  # pack like binary_pass_sums: row a holds H[a, a..k-1] then H[a, k]
        cols += [Hww[:, a, a:], hwb[:, a : a + 1]]
    cols.append(s.sum(1)[:, None])
    return torch.cat(cols, 1)


def unpack_binary(st: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Gradient ``[B, k+1]`` and symmetric Hessian ``[B, k+1, k+1]`` (float64 NumPy) from a
    packed kernel output ``st [B, ...]`` of :func:`binary_pass_sums` / :func:`binary_pass_bmm`."""
    p = k + 1
    g = st[:, :p].copy()
    H = np.empty((st.shape[0], p, p))
    j = p
    for a in range(p):
        cnt = p - a
        H[:, a, a:] = st[:, j : j + cnt]
        H[:, a:, a] = st[:, j : j + cnt]
        j += cnt
    return g, H


def binary_eval(
    Xe: torch.Tensor, d: torch.Tensor, theta: torch.Tensor, ye: torch.Tensor
) -> torch.Tensor:
    """Evaluation of ``B`` binary probes on ``Xe [Du, m]``: ``[B, 3]`` = (summed log-loss,
    true positives, predicted positives), class 1 being positive and ``z > 0`` predicting it."""
    k = d.shape[1]
    z = theta[:, k : k + 1]
    for a in range(k):
        z = z + theta[:, a : a + 1] * Xe[d[:, a]]
    return _binary_eval_tail(z, ye)


def _binary_eval_tail(z: torch.Tensor, ye: torch.Tensor) -> torch.Tensor:
    # -log sigmoid(+-z) as softplus(z) - z * y: exact for confident wrong predictions, where
    # 1 - sigmoid(z) rounds to 0 in float32 (|z| > ~17) and a clamped log capped the loss
    loss = torch.nn.functional.softplus(z) - z * ye
    pred = (z > 0).to(z.dtype)
    return torch.stack([loss.sum(1), (pred * ye).sum(1), pred.sum(1)], 1)


def binary_eval_bmm(
    Xe: torch.Tensor, d: torch.Tensor, theta: torch.Tensor, ye: torch.Tensor
) -> torch.Tensor:
    """As :func:`binary_eval` with a batched matrix product (any k; eager)."""
    k = d.shape[1]
    z = torch.bmm(theta[:, None, :k], Xe[d])[:, 0] + theta[:, k : k + 1]
    return _binary_eval_tail(z, ye)


def shared_pass(
    S1: torch.Tensor, Q: torch.Tensor, Xc: torch.Tensor, theta: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """Sums of one Newton pass for ``B`` binary probes sharing columns.

    Args:
        S1: ``[s + 1, n]`` float32: the ``s`` shared standardised columns, then a row of ones.
        Q: ``[(s + 1)(s + 2)/2, n]`` float32: products ``S1[a] * S1[b]`` for ``a <= b``.
        Xc: ``[B, n]`` float32: each probe's own column.
        theta: ``[B, s + 2]`` float32 parameters (shared weights, own weight, intercept).
        y: ``[n]`` float32 labels in {0, 1}.

    Returns:
        ``(g_S1 [B, s+1], g_c [B], H_Q [B, q], H_cS1 [B, s+1], H_cc [B])`` in S1's order
        (shared weights then intercept; the own column separately).
    """
    s = S1.shape[0] - 1
    A = torch.cat([theta[:, :s], theta[:, s + 1 :]], 1)  # [B, s+1] matching S1's rows
    # at most three [B, n] tensors live besides Xc (the chunk planner counts six): every
    # step after the first is in place, and the row dots are batched products
    p = torch.addcmul(A @ S1, theta[:, s : s + 1], Xc).sigmoid_()
    r = p - y
    g_s = r @ S1.T
    g_c = _row_dots(r, Xc)
    del r
    w = p.addcmul_(p, p, value=-1.0)  # p (1 - p), in place
    H_q = w @ Q.T
    wx = w.mul_(Xc)
    H_cs = wx @ S1.T
    H_cc = _row_dots(wx, Xc)
    return g_s, g_c, H_q, H_cs, H_cc


def _row_dots(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(a * b).sum(1)`` for ``a, b [B, n]`` as a batched product: no ``[B, n]`` temporary."""
    return torch.bmm(a[:, None, :], b[:, :, None])[:, 0, 0]


def shared_unpack(out: tuple[torch.Tensor, ...], s: int) -> tuple[np.ndarray, np.ndarray]:
    """Gradient ``[B, p]`` and Hessian ``[B, p, p]`` (float64 NumPy, ``p = s + 2``, parameter
    order: shared weights, own weight, intercept) from :func:`shared_pass`'s output."""
    g_s, g_c, H_q, H_cs, H_cc = (t.to(torch.float64).cpu().numpy() for t in out)
    B, p = g_s.shape[0], s + 2
    pos = [*range(s), s + 1]  # parameter index of S1's rows (intercept last)
    g = np.empty((B, p))
    g[:, pos] = g_s
    g[:, s] = g_c
    H = np.empty((B, p, p))
    j = 0
    for a in range(s + 1):
        for b in range(a, s + 1):
            H[:, pos[a], pos[b]] = H_q[:, j]
            H[:, pos[b], pos[a]] = H_q[:, j]
            j += 1
    H[:, pos, s] = H_cs
    H[:, s, pos] = H_cs
    H[:, s, s] = H_cc
    return g, H


def shared_eval(
    Se1: torch.Tensor, Xce: torch.Tensor, theta: torch.Tensor, ye: torch.Tensor
) -> torch.Tensor:
    """As :func:`binary_eval` for probes sharing columns (``Se1 [s+1, m]`` shared eval
    columns then ones, ``Xce [B, m]`` own columns)."""
    s = Se1.shape[0] - 1
    A = torch.cat([theta[:, :s], theta[:, s + 1 :]], 1)
    return _binary_eval_tail(torch.addcmul(A @ Se1, theta[:, s : s + 1], Xce), ye)


# ----------------------------------------------------------------------------- eager


def eager_pass(
    Xt: torch.Tensor, d: torch.Tensor, theta: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """:func:`binary_pass_sums`' output computed without compiling: pairs on the CPU by
    :func:`.pair_kernels.pair_pass`, anything else by :func:`binary_pass_bmm` (tile by tile
    on the CPU). Against the batched products on a chunk of 508 pairs of 10,000 examples:
    1.1-1.4x for probes that share a first column, as a scan's do, 0.8-0.9x for pooled ones
    (the evaluation 1.4-2.2x either way); all pairs of 384 through the engine 1.4x
    (``benchmarks/README.md``)."""
    if d.shape[1] == 2 and Xt.device.type == "cpu":
        return pair_pass(Xt, d, theta, y)
    return tiled(binary_pass_bmm, Xt, d, theta, y)


def eager_eval(
    Xe: torch.Tensor, d: torch.Tensor, theta: torch.Tensor, ye: torch.Tensor
) -> torch.Tensor:
    """:func:`binary_eval`'s output computed without compiling (as :func:`eager_pass`)."""
    if d.shape[1] == 2 and Xe.device.type == "cpu":
        return pair_eval(Xe, d, theta, ye)
    return tiled(binary_eval_bmm, Xe, d, theta, ye)


_EAGER = {"binary_pass_sums": eager_pass, "binary_eval": eager_eval}


# ----------------------------------------------------------------------------- compilation

_COMPILED: dict = {}
_COMPILE_FAILED: set = set()


def _compiled(fn: Callable, device: torch.device) -> Callable | None:
    """``torch.compile(fn, dynamic=True)``, made once per process and device type; None when
    compilation is unavailable here (it then stays off for this process)."""
    key = (fn.__name__, device.type)
    if key in _COMPILE_FAILED:
        return None
    if key not in _COMPILED and device.type == "cpu" and not cxx_found():
        if not any(dev == "cpu" for _, dev in _COMPILE_FAILED):  # once per process
            logger.warning(
                "torch.compile found no C++ compiler (inductor's cpp.cxx, else $CXX or g++): "
                "the CPU kernels run eagerly (install one, or a C compiler for probekit's "
                "native pair kernels, for speed)"
            )
        _COMPILE_FAILED.add(key)
        return None
    if key not in _COMPILED:
        try:
            _COMPILED[key] = torch.compile(fn, dynamic=True)
        except Exception as e:  # pragma: no cover - depends on the platform
            logger.warning(
                "torch.compile unavailable (%s: %s); using eager kernels", type(e).__name__, e
            )
            _COMPILE_FAILED.add(key)
            return None
    return _COMPILED[key]


@functools.cache
def cxx_found() -> bool:
    """Whether ``torch.compile``'s CPU backend (inductor) will find its C++ compiler, looked
    for as inductor does (``torch._inductor.cpp_builder.cpp_compiler_search``): the
    candidates of ``torch._inductor.config.cpp.cxx`` where a caller has imported (and perhaps
    set) that config, else of its default, ``$CXX`` or ``g++`` (``clang++`` on macOS), each on
    the PATH; ``None`` among them (conda's g++) counts only on Linux with
    ``TORCH_INDUCTOR_INSTALL_GXX`` set. On Windows inductor looks elsewhere: True, and
    inductor decides. Without a compiler a compile attempt costs seconds of tracing before it
    fails (4 s on this VM) and gains nothing; the config is not imported here (~1.3 s)."""
    if sys.platform == "win32":
        return True
    cfg = sys.modules.get("torch._inductor.config")
    if cfg is not None:
        cxx = cfg.cpp.cxx
        search = tuple(cxx) if isinstance(cxx, (list, tuple)) else (cxx,)
    else:
        search = (None, os.environ.get("CXX", "clang++" if sys.platform == "darwin" else "g++"))
    for cand in search:
        if cand is None:
            if sys.platform == "linux" and os.environ.get("TORCH_INDUCTOR_INSTALL_GXX"):
                return True
        elif shutil.which(cand) is not None:
            return True
    return False


def compile_failed(fn: Callable, device: torch.device) -> bool:
    """Whether compiling (or running the compiled) ``fn`` failed on ``device``'s type in this
    process, so that :func:`call_kernel` runs it eagerly from now on."""
    return (fn.__name__, device.type) in _COMPILE_FAILED


def fused_worth(fn: Callable, X: torch.Tensor, d: torch.Tensor) -> bool:
    """Whether a batch of probes on ``d [B, k]`` should take the fused kernel ``fn`` (when
    the plan compiles): always when the native kernels serve it (nothing to compile), else
    from 64 probes (a smaller batch is not worth a ``torch.compile`` recompile)."""
    return len(d) >= 64 or native_for(fn.__name__, X, d) is not None


def call_kernel(fn: Callable, use_compile: bool, *args: torch.Tensor):
    """Run ``fn(*args)`` (``args = (X, d, theta, y)``, as every kernel of this module that
    sums over examples takes them), compiled when asked and possible (pairs on the CPU: the
    native kernels of :mod:`.native`, built once per machine, when a C compiler is there;
    else ``torch.compile``), else eagerly (:func:`eager_pass` / :func:`eager_eval` for the two
    fused kernels, :func:`tiled` for any other). Falls back to eager on any
    compilation error, at compile time or when the compiled kernel first runs (logged once;
    compilation of ``fn`` then stays off for this process and device type). Out of memory is
    raised, not treated as a compiler problem: the eager kernel would need even more."""
    if use_compile:
        nat = native_for(fn.__name__, args[0], args[1])
        if nat is not None:  # k = 2 on the CPU: built once per machine, no compile tax
            return nat(*args)
        cf = _compiled(fn, args[0].device)
        if cf is not None:
            try:
                return cf(*args)
            except torch.cuda.OutOfMemoryError:  # torch.OutOfMemoryError in torch >= 2.5
                raise
            except Exception as e:  # compiler missing, unsupported backend, ...
                logger.warning(
                    "torch.compile failed for %s (%s: %s); falling back to eager kernels",
                    fn.__name__,
                    type(e).__name__,
                    str(e).splitlines()[0] if str(e) else "",
                )
                _COMPILE_FAILED.add((fn.__name__, args[0].device.type))
    eager = _EAGER.get(fn.__name__)
    return eager(*args) if eager is not None else tiled(fn, *args)
