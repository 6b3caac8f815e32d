"""Linear probes: a scikit-learn estimator and a batched PyTorch engine.

One objective per probe kind, the same in every code path:

* **classification**: L2-regularised logistic regression exactly as scikit-learn's
  ``LogisticRegression(C=C)``: ``C * sum_i logloss_i + 0.5 * ||W||^2``, intercept not
  penalised; a single weight vector (sigmoid) for two classes, multinomial (softmax, one
  weight vector per class, all penalised) for more;
* **regression**: ridge, ``sum_i (y_i - f_i)^2 + alpha * ||w||^2`` with ``alpha = 1 / C``
  (the squared-loss analogue of the logistic objective above; ``Ridge(alpha=1/C)``),
  intercept not penalised.

Features are standardised with the mean and (population) standard deviation of the
training data only, as ``sklearn.preprocessing.StandardScaler`` does; a constant feature
keeps scale 1.

:class:`ProbeEngine` fits ``B`` probes at once, each on its own subset of columns
(``dims [B, k]``), and scores them on evaluation data in the same pass:

* binary logistic: Newton (IRLS) with batched ``(k+1) x (k+1)`` solves, started from linear
  discriminant analysis (closed form from class means and the pooled covariance, shared by
  all probes) and safeguarded by step halving on the gradient norm. Each pass over the
  training data computes, per probe, the gradient and Hessian sums; for ``k <= 4`` these
  are explicit sums that ``torch.compile`` fuses into one loop per probe (no ``[B, n]``
  array is ever materialised), for larger ``k`` batched matrix products. Typically 1-2
  passes per probe. Compilation is used when the batch is large enough to repay it (see
  ``compile``) and falls back to the same functions run eagerly;
* multinomial logistic (more than two classes): the same Newton scheme with batched
  matrix products;
* ridge: closed form from sub-blocks of one shared Gram matrix; Pearson correlation and
  MSE on eval follow exactly from eval moments, without forming predictions.

It works chunk by chunk over ``B`` so that no more than ``memory_budget`` bytes are in
flight, on any torch device (CPU tested; CUDA written for), and is deterministic (no
randomness inside; the same inputs and settings give the same outputs). Inputs may be
float16 (as the cache stores them): they are upcast chunk by chunk and never modified.

:class:`LinearProbe` is a scikit-learn estimator (``fit`` / ``predict`` / ``score`` /
``get_params``) whose ``backend="sklearn"`` uses scikit-learn and ``backend="torch"`` uses
the engine, on the same objective.

Baselines: :func:`majority_baseline`, :func:`random_dims_baseline`, and control tasks in the
sense of Hewitt & Liang (2019): :func:`control_task_labels`, :func:`input_types`,
:func:`control_task_baseline`, :func:`selectivity`. Honest splits: :func:`train_val_split`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .errors import ConfigError, DataError
from .metrics import batch_metrics, compute_metrics, confusion_metrics, is_regression_metrics

logger = logging.getLogger(__name__)

__all__ = [
    "LinearProbe",
    "ProbeEngine",
    "ProbeFit",
    "control_task_baseline",
    "control_task_labels",
    "evaluate_probe",
    "input_types",
    "majority_baseline",
    "parse_dims",
    "random_dims_baseline",
    "selectivity",
    "standardization_stats",
    "train_val_split",
]

_F32 = torch.float32
_F64 = torch.float64


# ----------------------------------------------------------------------------- helpers


def _as_2d_features(X, name: str) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(f"{name}: expected a 2-d array [n_examples, n_dims], got shape {X.shape}")
    if X.shape[0] == 0:
        raise DataError(f"{name}: no examples")
    if not np.issubdtype(X.dtype, np.floating) and not np.issubdtype(X.dtype, np.integer):
        raise DataError(f"{name}: expected a numeric array, got dtype {X.dtype}")
    return X


def standardization_stats(X, *, rows_per_chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale ``[D]`` (float64) of ``X [n, D]``, as ``StandardScaler`` computes them
    (population standard deviation; scale 1 for a constant column). Reads ``X`` in row
    chunks, upcasting each to float64, so a float16 cache never needs a full float64 copy."""
    X = _as_2d_features(X, "X")
    n, D = X.shape
    s1 = np.zeros(D)
    for i in range(0, n, rows_per_chunk):
        s1 += X[i : i + rows_per_chunk].sum(axis=0, dtype=np.float64)
    mean = s1 / n
    s2 = np.zeros(D)
    for i in range(0, n, rows_per_chunk):
        d = X[i : i + rows_per_chunk].astype(np.float64) - mean
        s2 += np.einsum("ij,ij->j", d, d)
    var = s2 / n
    scale = np.sqrt(var)
    # as sklearn's _handle_zeros_in_scale: (near-)constant columns are left unscaled
    tiny = 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mean))
    scale[scale < tiny] = 1.0
    if not np.isfinite(mean).all() or not np.isfinite(scale).all():
        raise DataError("X: features contain NaN or infinite values")
    return mean, scale


def _standardized_T(
    X: np.ndarray,
    cols: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    device: torch.device,
    rows_per_chunk: int = 8192,
) -> torch.Tensor:
    """``((X[:, cols] - mean) / scale).T`` as a contiguous float32 tensor ``[len(cols), n]`` on
    ``device``, built from float64 row chunks (never mutates ``X``)."""
    n = X.shape[0]
    out = torch.empty((len(cols), n), dtype=_F32, device=device)
    m = mean[cols]
    s = scale[cols]
    for i in range(0, n, rows_per_chunk):
        block = (X[i : i + rows_per_chunk][:, cols].astype(np.float64) - m) / s
        out[:, i : i + block.shape[0]] = torch.from_numpy(
            np.ascontiguousarray(block.T, dtype=np.float32)
        ).to(device)
    return out


def parse_dims(spec: str | Sequence[int] | None, n_dims: int) -> np.ndarray:
    """Parse a dimension selection: ``"all"``/None (every dimension), ``"12,200"``, or a
    sequence of ints; negative indices count from the end. Returns ``[k]`` int64."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return np.arange(n_dims, dtype=np.int64)
    if isinstance(spec, str):
        try:
            vals = [int(t) for t in spec.replace(" ", "").split(",") if t != ""]
        except ValueError:
            raise ConfigError(
                f"--dims: expected 'all' or comma-separated integers like '12,200', got {spec!r}"
            ) from None
    else:
        vals = [int(v) for v in spec]
    if not vals:
        raise ConfigError(f"dims: empty selection {spec!r}")
    arr = np.asarray(vals, dtype=np.int64)
    bad = arr[(arr < -n_dims) | (arr >= n_dims)]
    if bad.size:
        raise ConfigError(f"dims: {bad.tolist()} out of range for {n_dims} dimensions")
    arr = np.where(arr < 0, arr + n_dims, arr)
    if len(np.unique(arr)) != len(arr):
        raise ConfigError(f"dims: repeated dimensions in {spec!r}")
    return arr


# ----------------------------------------------------------------------------- kernels
#
# One Newton pass of a binary logistic probe needs, per probe, the objective, the gradient
# and the Hessian at the current parameters: ~10 sums over the n training examples for k = 2.
# For small k they are written as explicit sums so that torch.compile fuses the whole pass
# (gather of the k columns, sigmoid, log-loss, all sums) into one loop over the examples,
# with no [B, n] intermediate in memory. The same functions run eagerly when compilation is
# off or unavailable; larger k uses batched matrix products instead.

SMALL_K = 4  # largest k handled by the fused explicit-sum kernels


def _binary_pass_sums(
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


def _binary_pass_bmm(
    Xt: torch.Tensor, d: torch.Tensor, theta: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """As :func:`_binary_pass_sums`, with batched matrix products (any k; eager)."""
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
    for a in range(k):  # pack like _binary_pass_sums: row a holds H[a, a..k-1] then H[a, k]
        cols += [Hww[:, a, a:], hwb[:, a : a + 1]]
    cols.append(s.sum(1)[:, None])
    return torch.cat(cols, 1)


def _binary_eval(
    Xe: torch.Tensor, d: torch.Tensor, theta: torch.Tensor, ye: torch.Tensor
) -> torch.Tensor:
    """Evaluation of ``B`` binary probes: ``[B, 3]`` = (summed log-loss, true positives,
    predicted positives), class 1 being positive and ``z > 0`` predicting it."""
    k = d.shape[1]
    z = theta[:, k : k + 1]
    for a in range(k):
        z = z + theta[:, a : a + 1] * Xe[d[:, a]]
    return _binary_eval_tail(z, ye)


def _binary_eval_tail(z: torch.Tensor, ye: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(z)
    q = torch.where(ye > 0.5, p, 1 - p).clamp_min(1e-30)
    pred = (z > 0).to(z.dtype)
    return torch.stack([-torch.log(q).sum(1), (pred * ye).sum(1), pred.sum(1)], 1)


def _binary_eval_bmm(
    Xe: torch.Tensor, d: torch.Tensor, theta: torch.Tensor, ye: torch.Tensor
) -> torch.Tensor:
    """As :func:`_binary_eval` with a batched matrix product (any k; eager)."""
    k = d.shape[1]
    z = torch.bmm(theta[:, None, :k], Xe[d])[:, 0] + theta[:, k : k + 1]
    return _binary_eval_tail(z, ye)


# Greedy forward selection fits batches in which every probe shares the same k-1 columns
# (the selected ones) and differs in one candidate column. For those, the linear predictor,
# gradient and Hessian are GEMMs against the shared columns (and their pairwise products)
# plus a few row-wise sums over the candidate column: no [B, k, n] gather, no bmm.


def _shared_pass(
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
    z = torch.addcmul(A @ S1, theta[:, s : s + 1], Xc)
    p = torch.sigmoid(z)
    r = p - y
    w = p.mul_(1 - p)  # in place: p is not needed any more
    g_s = r @ S1.T
    g_c = (r * Xc).sum(1)
    H_q = w @ Q.T
    wx = w.mul_(Xc)
    H_cs = wx @ S1.T
    H_cc = (wx * Xc).sum(1)
    return g_s, g_c, H_q, H_cs, H_cc


def _shared_unpack(out, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Gradient ``[B, p]`` and Hessian ``[B, p, p]`` (float64 NumPy, ``p = s + 2``, parameter
    order: shared weights, own weight, intercept) from :func:`_shared_pass`'s output."""
    g_s, g_c, H_q, H_cs, H_cc = (t.to(_F64).cpu().numpy() for t in out)
    B, p = g_s.shape[0], s + 2
    pos = list(range(s)) + [s + 1]  # parameter index of S1's rows (intercept last)
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


def _shared_eval(
    Se1: torch.Tensor, Xce: torch.Tensor, theta: torch.Tensor, ye: torch.Tensor
) -> torch.Tensor:
    """As :func:`_binary_eval` for probes sharing columns (``Se1 [s+1, m]`` shared eval
    columns then ones, ``Xce [B, m]`` own columns)."""
    s = Se1.shape[0] - 1
    A = torch.cat([theta[:, :s], theta[:, s + 1 :]], 1)
    return _binary_eval_tail(torch.addcmul(A @ Se1, theta[:, s : s + 1], Xce), ye)


_COMPILED: dict = {}
_COMPILE_FAILED: set = set()


def _compiled(fn, device: torch.device):
    """``torch.compile(fn, dynamic=True)``, made once per process and device type; None when
    compilation is unavailable here (it then stays off for this process)."""
    key = (fn.__name__, device.type)
    if key in _COMPILE_FAILED:
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


def _call_kernel(fn, use_compile: bool, *args):
    """Run ``fn(*args)``, compiled when asked and possible; falls back to eager on any
    compilation error (logged once)."""
    if use_compile:
        cf = _compiled(fn, args[0].device)
        if cf is not None:
            try:
                return cf(*args)
            except torch.cuda.OutOfMemoryError:  # torch.OutOfMemoryError in torch >= 2.5
                raise  # not a compiler problem; the eager kernel would need even more memory
            except Exception as e:  # compiler missing, unsupported backend, ...
                logger.warning(
                    "torch.compile failed for %s (%s: %s); falling back to eager kernels",
                    fn.__name__,
                    type(e).__name__,
                    str(e).splitlines()[0] if str(e) else "",
                )
                _COMPILE_FAILED.add((fn.__name__, args[0].device.type))
    return fn(*args)


def _unpack_binary(st: np.ndarray, k: int):
    """Gradient ``[B, k+1]`` and symmetric Hessian ``[B, k+1, k+1]`` (float64 NumPy) from a
    packed kernel output ``st``."""
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


def _spd_solve(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Solve ``H x = g`` for a batch of small symmetric positive-definite ``H [B, p, p]``,
    ``g [B, p]`` (float64 NumPy). For p <= 8 an unrolled, vectorised Cholesky (LAPACK's
    batched loop costs microseconds per tiny matrix); otherwise ``np.linalg.solve``.

    The Newton bookkeeping runs in NumPy on purpose: it is single-threaded, whereas torch
    parallelises some element-wise ops on a few thousand elements and then pays a thread
    wake-up per op, which dominates on a busy CPU."""
    B, p, _ = H.shape
    if p > 8:  # torch's LAPACK shares torch's thread pool (NumPy's BLAS threads fight it)
        return torch.linalg.solve(torch.from_numpy(H), torch.from_numpy(g)[:, :, None])[
            :, :, 0
        ].numpy()
    L = [[None] * p for _ in range(p)]
    for j in range(p):
        sjj = H[:, j, j].copy()
        for t in range(j):
            sjj -= L[j][t] * L[j][t]
        ljj = np.sqrt(np.maximum(sjj, 1e-300))
        L[j][j] = ljj
        for i in range(j + 1, p):
            sij = H[:, i, j].copy()
            for t in range(j):
                sij -= L[i][t] * L[j][t]
            L[i][j] = sij / ljj
    yv = [None] * p
    for i in range(p):
        v = g[:, i].copy()
        for t in range(i):
            v -= L[i][t] * yv[t]
        yv[i] = v / L[i][i]
    x = [None] * p
    for i in reversed(range(p)):
        v = yv[i].copy()
        for t in range(i + 1, p):
            v -= L[t][i] * x[t]
        x[i] = v / L[i][i]
    return np.stack(x, 1)


def _gram(Xt: torch.Tensor, cols_per_block: int = 8192) -> torch.Tensor:
    """``Xt @ Xt.T`` in float64, ``[Du, Du]``, accumulated over blocks of examples."""
    Du, n = Xt.shape
    G = torch.zeros((Du, Du), dtype=_F64, device=Xt.device)
    for i in range(0, n, cols_per_block):
        blk = Xt[:, i : i + cols_per_block].to(_F64)
        G += blk @ blk.T
    return G


def _lda_stats(Xt: torch.Tensor, yi: torch.Tensor, covariance: bool | str = True) -> dict:
    """Class means ``[Du]`` and pooled within-class covariance ``[Du, Du]`` (float64) of the
    standardised training features, for the LDA starting point of binary probes (the
    covariance, a ``Du x Du`` Gram matrix, only when ``covariance``; ``"diag"``: only its
    diagonal, enough for single-column probes)."""
    n = Xt.shape[1]
    w1 = (yi == 1).to(_F64)
    n1 = float(w1.sum())
    n0 = n - n1
    s1 = torch.cat([Xt[j : j + 256].to(_F64) @ w1 for j in range(0, Xt.shape[0], 256)])
    s_all = (
        Xt.to(_F64).sum(1)
        if Xt.numel() <= 2**26
        else torch.cat([Xt[j : j + 256].to(_F64).sum(1) for j in range(0, Xt.shape[0], 256)])
    )
    mu1 = s1 / n1
    mu0 = (s_all - s1) / n0
    if not covariance:
        return dict(lda_mu0=mu0.cpu().numpy(), lda_mu1=mu1.cpu().numpy())
    if covariance == "diag":  # single-column probes need only the variances
        sq = torch.cat([(Xt[j : j + 256].to(_F64) ** 2).sum(1) for j in range(0, Xt.shape[0], 256)])
        S = torch.diag(sq - n1 * mu1 * mu1 - n0 * mu0 * mu0)
        return dict(
            lda_mu0=mu0.cpu().numpy(), lda_mu1=mu1.cpu().numpy(), lda_S=(S / n).cpu().numpy()
        )
    S = _gram(Xt) - n1 * torch.outer(mu1, mu1) - n0 * torch.outer(mu0, mu0)
    return dict(lda_mu0=mu0.cpu().numpy(), lda_mu1=mu1.cpu().numpy(), lda_S=(S / n).cpu().numpy())


def _lda_init(ctx: dict, d: np.ndarray, b0: float) -> np.ndarray:
    """LDA parameters ``[B, k+1]`` (float64) for the column subsets ``d [B, k]``:
    ``w = S^-1 (mu1 - mu0)``, ``b = -w . (mu0 + mu1) / 2 + log(n1 / n0)``."""
    S, mu0, mu1 = ctx["lda_S"], ctx["lda_mu0"], ctx["lda_mu1"]
    k = d.shape[1]
    Ss = S[d[:, :, None], d[:, None, :]] + 1e-3 * np.eye(k)
    w = _spd_solve(Ss, mu1[d] - mu0[d])
    b = -(w * (mu0[d] + mu1[d])).sum(1) * 0.5 + b0
    return np.concatenate([w, b[:, None]], 1)


# ----------------------------------------------------------------------------- engine


@dataclass
class ProbeFit:
    """``B`` fitted probes (see :meth:`ProbeEngine.fit`).

    Attributes:
        dims: ``[B, k]`` column indices of each probe.
        coef: ``[B, K, k]`` weights on standardised features; ``K = 1`` for binary and
            regression probes, ``K = n_classes`` for multinomial ones.
        intercept: ``[B, K]``.
        mean, scale: ``[D]`` standardisation statistics of the training data (float64).
        classes: ``[n_classes]`` class labels (None for regression).
        regression: whether these are ridge probes.
        n_iter: ``[B]`` Newton iterations used (0 for ridge).
        converged: ``[B]`` bool.
    """

    dims: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    classes: np.ndarray | None
    regression: bool
    n_iter: np.ndarray
    converged: np.ndarray

    def decision_function(self, X, *, device="cpu") -> np.ndarray:
        """Scores ``[B, m]`` (binary / regression) or ``[B, m, K]`` (multinomial) on ``X [m, D]``."""
        X = _as_2d_features(X, "X")
        dev = torch.device(device)
        cols, inv = np.unique(self.dims, return_inverse=True)
        Xt = _standardized_T(X, cols, self.mean, self.scale, dev)
        d = torch.as_tensor(inv.reshape(self.dims.shape), device=dev)
        W = torch.as_tensor(self.coef, dtype=_F32, device=dev)
        b = torch.as_tensor(self.intercept, dtype=_F32, device=dev)
        outs = []
        for i in range(0, len(d), 1024):
            Z = (
                torch.einsum("bck,bkn->bnc", W[i : i + 1024], Xt[d[i : i + 1024]])
                + b[i : i + 1024, None, :]
            )
            outs.append(Z.cpu().numpy())
        Z = np.concatenate(outs, axis=0)
        return Z[..., 0] if Z.shape[-1] == 1 else Z

    def predict(self, X, *, device="cpu") -> np.ndarray:
        """Predicted labels (or values) ``[B, m]`` on ``X [m, D]``."""
        Z = self.decision_function(X, device=device)
        if self.regression:
            return Z
        if Z.ndim == 2:
            return self.classes[(Z > 0).astype(np.int64)]
        return self.classes[Z.argmax(axis=-1)]


class ProbeEngine:
    """Fit many small linear probes at once.

    Args:
        regression: ridge probes (True) or logistic-regression probes (False).
        C: inverse regularisation strength, as scikit-learn's ``LogisticRegression(C=C)``;
            ridge uses ``alpha = 1 / C``.
        device: torch device for the computation (explicit; never chosen for you).
        memory_budget: bytes the engine may hold in flight for one chunk of probes
            (default 2 GiB); the number of probes per chunk is derived from it.
        max_iter: maximum Newton iterations per probe.
        tol: Newton stops once a step is below ``tol`` (max absolute change of any
            parameter, in standardised units, relative to the largest parameter when that
            exceeds 1). That last step is still applied, and Newton converges
            quadratically, so the parameters end far closer than ``tol`` to the optimum:
            with the default 1e-3, within ~3e-7 of a ``tol=1e-7`` solution on all pairs of
            MiniLM SST-2 features (most probes then need a single pass from the LDA start).
        chunk_size: probes per chunk (default: derived from ``memory_budget``; on CPU also
            capped at 8192 probes, or a 256 MiB working set without compilation).
        compile: fuse the small-k logistic kernels with ``torch.compile``: True, False, or
            None (default) = only when the batch is big enough to repay compilation
            (``B * n >= compile_threshold``). Falls back to eager kernels, with a logged
            warning, where compilation is unavailable.
        compile_threshold: the ``B * n`` above which ``compile=None`` compiles (default 5e8,
            e.g. 50,000 probes on 10,000 examples: compiling costs tens of seconds the first
            time on a cold cache, seconds after that).
        progress: show a tqdm progress bar over chunks.

    Precision: the sums over examples run in float32 (compensated by cascade summation);
    parameters, Hessians and solves are float64. Newton stops when the step is below
    ``tol`` or stops shrinking quadratically at the float32 floor (about 1e-6 relative).
    """

    def __init__(
        self,
        *,
        regression: bool = False,
        C: float = 1.0,
        device: str | torch.device = "cpu",
        memory_budget: int = 2 * 2**30,
        max_iter: int = 100,
        tol: float = 1e-3,
        chunk_size: int | None = None,
        compile: bool | None = None,
        compile_threshold: float = 5e8,
        progress: bool = False,
    ):
        if not (isinstance(C, (int, float)) and C > 0 and math.isfinite(C)):
            raise ConfigError(f"C must be a positive finite number, got {C!r}")
        if memory_budget <= 0:
            raise ConfigError(f"memory_budget must be positive, got {memory_budget!r}")
        if max_iter < 1:
            raise ConfigError(f"max_iter must be >= 1, got {max_iter!r}")
        if not tol > 0:
            raise ConfigError(f"tol must be positive, got {tol!r}")
        self.regression = bool(regression)
        self.C = float(C)
        self.device = torch.device(device)
        if self.device.type == "mps":
            raise ConfigError(
                "device mps: the probe engine solves in float64, which MPS lacks; "
                "probe on cpu (or cuda) and keep mps for extraction and fine-tuning"
            )
        self.memory_budget = int(memory_budget)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.chunk_size = chunk_size
        self.compile = compile
        self.compile_threshold = float(compile_threshold)
        self.progress = progress
        self.last_stats_: dict[str, Any] = {}

    def __repr__(self) -> str:
        return (
            f"ProbeEngine(regression={self.regression}, C={self.C}, device={str(self.device)!r}, "
            f"memory_budget={self.memory_budget}, max_iter={self.max_iter}, tol={self.tol})"
        )

    # ------------------------------------------------------------------ input checking
    def _check_dims(self, dims, D: int) -> np.ndarray:
        try:
            dims = np.asarray(dims)
        except ValueError:
            raise ConfigError(
                "dims: expected a rectangular int array [B, k] (all probes of one batch have the same k)"
            ) from None
        if dims.ndim == 1:
            dims = dims[None, :]
        if dims.ndim != 2 or dims.shape[1] == 0 or dims.shape[0] == 0:
            raise ConfigError(
                f"dims: expected an int array [B, k] with B, k >= 1, got shape {dims.shape}"
            )
        if not np.issubdtype(dims.dtype, np.integer):
            raise ConfigError(f"dims: expected integers, got dtype {dims.dtype}")
        if dims.min() < 0 or dims.max() >= D:
            raise ConfigError(
                f"dims: indices must lie in [0, {D}), got range [{dims.min()}, {dims.max()}]"
            )
        return dims.astype(np.int64)

    def _check_targets(self, y, n: int, name: str) -> np.ndarray:
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != n:
            raise DataError(f"{name}: expected shape [{n}], got {y.shape}")
        if self.regression:
            y = y.astype(np.float64)
            if not np.isfinite(y).all():
                raise DataError(f"{name}: regression targets contain NaN or infinite values")
        return y

    def _chunk(
        self, B: int, k: int, n: int, m: int, K: int, fixed: int, fused: bool, shared: bool = False
    ) -> int:
        if self.chunk_size:
            return max(1, min(B, int(self.chunk_size)))
        # bytes per probe in flight, counting every intermediate an eager pass materialises
        # (a fused pass materialises none of them, so this is an upper bound there)
        if self.regression:
            per = 4 * (2 * k * m + 3 * m) + 8 * (3 * k * k)
        elif shared:  # own column, predictor, probabilities, residuals, products; eval likewise
            per = 4 * (6 * n + 4 * m) + 8 * 4 * (k + 1) ** 2
        elif K <= 2:
            per = 4 * (2 * k * n + 8 * n + k * m + 4 * m) + 8 * 4 * (k + 1) ** 2
        else:
            p = k + 1
            per = 4 * (2 * p * n + (5 * K + 2) * n + (k + K + 2) * m + K * m) + 8 * 4 * (K * p) ** 2
        avail = self.memory_budget - fixed
        if avail < per:
            raise ConfigError(
                f"memory_budget={self.memory_budget} bytes is too small: the data take {fixed} bytes and one "
                f"probe of {k} dims needs {per} more"
            )
        chunk = min(B, avail // per)
        if self.device.type == "cpu":
            if fused:
                chunk = min(chunk, 8192)
            else:  # eager: a few hundred MiB per chunk (smaller chunks pay per-op overhead, measured)
                chunk = min(chunk, max(8, (256 * 2**20) // per))
        return int(max(1, chunk))

    # ------------------------------------------------------------------ public API
    def fit(self, X_train, y_train, dims) -> ProbeFit:
        """Fit ``B`` probes on ``X_train [n, D]`` (float16/32/64; never modified), each on its
        columns ``dims [B, k]``. Returns a :class:`ProbeFit`."""
        return self._run(X_train, y_train, None, None, dims, metrics=(), keep_fit=True)[1]

    def fit_score(
        self, X_train, y_train, X_eval, y_eval, dims, metrics: Sequence[str] = ("accuracy",)
    ) -> dict[str, np.ndarray]:
        """Fit ``B`` probes on train and score each on eval in the same pass.

        Args:
            X_train: ``[n, D]`` features (float16/32/64; never modified).
            y_train: ``[n]`` class labels (classification) or targets (regression).
            X_eval: ``[m, D]``.
            y_eval: ``[m]``.
            dims: ``[B, k]`` int column indices; probe ``b`` uses ``X[:, dims[b]]``.
            metrics: metric names (see :mod:`probekit.metrics`).

        Returns:
            ``{metric: [B] float64}`` for each requested metric, plus ``"loss"``: the mean
            evaluation log-loss (classification) or mean squared error (regression) of
            each probe, a smooth tie-breaker for selection.
        """
        return self._run(X_train, y_train, X_eval, y_eval, dims, metrics=metrics, keep_fit=False)[0]

    # ------------------------------------------------------------------ driver
    def _run(self, X_train, y_train, X_eval, y_eval, dims, *, metrics, keep_fit):
        t0 = time.perf_counter()
        X_train = _as_2d_features(X_train, "X_train")
        n, D = X_train.shape
        dims = self._check_dims(dims, D)
        B, k = dims.shape
        y_train = self._check_targets(y_train, n, "y_train")
        scoring = X_eval is not None
        metrics = tuple(metrics) if not isinstance(metrics, str) else (metrics,)
        if scoring:
            X_eval = _as_2d_features(X_eval, "X_eval")
            if X_eval.shape[1] != D:
                raise DataError(f"X_eval has {X_eval.shape[1]} dims but X_train has {D}")
            y_eval = self._check_targets(y_eval, X_eval.shape[0], "y_eval")
            if metrics and is_regression_metrics(metrics) != self.regression:
                raise ConfigError(
                    f"metrics {metrics} do not fit a {'regression' if self.regression else 'classification'} probe"
                )
        m = X_eval.shape[0] if scoring else 0
        dev = self.device

        # classes
        if self.regression:
            classes = None
            K = 1
        else:
            classes, yi = np.unique(y_train, return_inverse=True)
            K = len(classes)
            if K < 2:
                raise DataError(
                    f"y_train: need at least 2 classes to fit a classifier, got {K} ({classes.tolist()})"
                )

        # standardise the used columns once, on the device: Xt [Du, n], Xe [Du, m]
        cols, inv = np.unique(dims, return_inverse=True)
        dims_u = inv.reshape(B, k)
        mean, scale = standardization_stats(X_train[:, cols] if len(cols) < D else X_train)
        if len(cols) < D:
            mean_full = np.zeros(D)
            scale_full = np.ones(D)
            mean_full[cols] = mean
            scale_full[cols] = scale
            mean, scale = mean_full, scale_full
        Xt = _standardized_T(X_train, cols, mean, scale, dev)
        Xe = _standardized_T(X_eval, cols, mean, scale, dev) if scoring else None
        # resident for the whole run: the standardised columns, and D_u x D_u float64 moments
        # (ridge: train Gram + eval covariance; binary logistic: LDA covariance + its Gram)
        n_mom = (1 + int(scoring)) if self.regression else (2 if K == 2 else 0)
        fixed = Xt.numel() * 4 + (Xe.numel() * 4 if scoring else 0) + n_mom * len(cols) ** 2 * 8

        binary = not self.regression and K == 2
        # binary probes that all share their first k-1 columns (a greedy forward step): GEMMs
        # against the shared columns, warm-started from the fit on the shared columns alone
        shared = (
            binary and k >= 2 and B >= 2 and bool((dims_u[:, : k - 1] == dims_u[0, : k - 1]).all())
        )
        fused = binary and k <= SMALL_K and not shared
        if self.compile is None:
            use_compile = fused and B * n >= self.compile_threshold
        else:
            use_compile = bool(self.compile) and fused
        chunk = self._chunk(B, k, n, m, K, fixed, fused=use_compile, shared=shared)
        dims_t = torch.as_tensor(dims_u, device=dev)
        lam = 1.0 / self.C

        # the per-kind state shared by all chunks
        if self.regression:
            ybar = float(y_train.mean())
            yt = torch.as_tensor(y_train - ybar, dtype=_F64, device=dev)
            # Gram matrix and X^T y of the standardised training columns, float64
            G = _gram(Xt).cpu().numpy()
            c = (
                torch.cat([Xt[j : j + 256].to(_F64) @ yt for j in range(0, len(cols), 256)])
                .cpu()
                .numpy()
            )
            ctx = dict(G=G, c=c, ybar=ybar, lam=lam)
            if scoring:
                # eval moments: pearson and MSE of a linear prediction follow from them exactly,
                # without forming the [B, m] predictions (needed only for spearman)
                ye64 = torch.as_tensor(y_eval, dtype=_F64, device=dev)
                mu_e = torch.cat(
                    [Xe[j : j + 256].to(_F64).mean(1) for j in range(0, len(cols), 256)]
                )
                yc = ye64 - ye64.mean()
                ce = (
                    torch.cat([Xe[j : j + 256].to(_F64) @ yc for j in range(0, len(cols), 256)]) / m
                )
                Ce = _gram(Xe) / m - torch.outer(mu_e, mu_e)
                ctx.update(
                    mu_e=mu_e.cpu().numpy(),
                    ce=ce.cpu().numpy(),
                    Ce=Ce.cpu().numpy(),
                    ye_mean=float(ye64.mean()),
                    ye_var=float((yc * yc).mean()),
                )
        else:
            ctx = dict(
                yi=torch.as_tensor(yi, device=dev),
                K=K,
                lam=lam,
                n=n,
                prior=np.bincount(yi, minlength=K) / n,
                use_compile=use_compile,
                fused=fused,
            )
            if binary:
                ctx["y"] = ctx["yi"].to(_F32)
                ctx.update(
                    _lda_stats(
                        Xt, ctx["yi"], covariance=False if shared else ("diag" if k == 1 else True)
                    )
                )
            if shared:
                ctx["shared"] = self._shared_setup(Xt, Xe, dims_u[0, : k - 1], ctx)

        if scoring and not self.regression:
            ye_idx = np.searchsorted(classes, y_eval)
            known = (ye_idx < K) & (classes[np.minimum(ye_idx, K - 1)] == y_eval)
            n_known = int(known.sum())
            ye_t = torch.as_tensor(np.where(known, ye_idx, 0), device=dev)
            if binary and known.all():
                # confusion counts straight from (tp, predicted positives): no [B, m] leaves the device
                ye_f = ye_t.to(_F32)
                n_pos = int(ye_idx.sum())
        out_scores: dict[str, list] = {mname: [] for mname in metrics}
        out_loss: list = []
        coefs, icepts, iters, convs = [], [], [], []

        from tqdm.auto import tqdm

        bar = tqdm(total=B, disable=not self.progress, desc="probes", unit="probe")
        for s in range(0, B, chunk):
            d = dims_t[s : s + chunk]
            if self.regression:
                W, b, it, conv = self._fit_ridge(d, ctx)
            elif binary:
                W, b, it, conv = self._fit_binary(Xt, d, ctx, shared=ctx.get("shared"))
            else:
                W, b, it, conv = self._fit_multinomial(Xt, d, ctx)
            if keep_fit:
                coefs.append(W.cpu().numpy())
                icepts.append(b.cpu().numpy())
            iters.append(it)
            convs.append(conv)
            if not scoring:
                bar.update(len(d))
                continue
            if binary and known.all():
                theta = torch.cat([W[:, 0], b], 1).to(_F32)
                if shared:
                    ev = _shared_eval(ctx["shared"]["Se1"], Xe[d[:, -1]], theta, ye_f)
                elif use_compile and len(d) >= 64:
                    ev = _call_kernel(_binary_eval, True, Xe, d, theta, ye_f)
                else:
                    ev = _binary_eval_bmm(Xe, d, theta, ye_f)
                ev = ev.to(_F64).cpu().numpy()
                tp, pp = np.rint(ev[:, 1]), np.rint(ev[:, 2])
                cm = np.stack(
                    [np.stack([m - n_pos - (pp - tp), pp - tp], 1), np.stack([n_pos - tp, tp], 1)],
                    1,
                )
                out_loss.append(ev[:, 0] / m)
                if metrics:
                    for mname, v in confusion_metrics(metrics, cm, classes).items():
                        out_scores[mname].append(v)
                bar.update(len(d))
                continue
            if self.regression:
                wn = W[:, 0].cpu().numpy()
                dn = d.cpu().numpy()
                var_p = np.einsum("bi,bij,bj->b", wn, ctx["Ce"][dn[:, :, None], dn[:, None, :]], wn)
                cov = (wn * ctx["ce"][dn]).sum(1)
                mean_p = (wn * ctx["mu_e"][dn]).sum(1) + ctx["ybar"]
                out_loss.append(
                    np.maximum(var_p + ctx["ye_var"] - 2 * cov, 0) + (mean_p - ctx["ye_mean"]) ** 2
                )
                with np.errstate(invalid="ignore", divide="ignore"):
                    r = cov / np.sqrt(var_p * ctx["ye_var"])
                # constant predictions (all weights 0) or truth: undefined, as scipy
                if ctx["ye_var"] > 0:
                    r[~(var_p > 1e-24 * ctx["ye_var"])] = np.nan
                else:
                    r[:] = np.nan
                r = np.clip(r, -1.0, 1.0)
                need_pred = [mn for mn in metrics if mn != "pearson"]
                if "pearson" in metrics:
                    out_scores["pearson"].append(r)
                if need_pred:
                    Z = torch.einsum("bk,bkn->bn", W[:, 0].to(_F32), Xe[d]) + b.to(_F32)
                    pred_np = Z.to(_F64).cpu().numpy()
                    for mname, v in batch_metrics(need_pred, y_eval, pred_np).items():
                        out_scores[mname].append(v)
                bar.update(len(d))
                continue
            Z = (
                torch.einsum("bck,bkn->bcn", W.to(_F32), Xe[d]) + b.to(_F32)[:, :, None]
            )  # [Bc, K', m]
            if True:
                if K == 2:
                    z = Z[:, 0]
                    ll = torch.nn.functional.softplus(z) - z * ye_t.to(_F32)
                    pi = (z > 0).long()
                else:
                    ll = (
                        torch.logsumexp(Z, dim=1)
                        - Z.gather(1, ye_t.expand(Z.shape[0], -1)[:, None, :])[:, 0]
                    )
                    pi = Z.argmax(dim=1)
                kn = torch.as_tensor(known, device=dev)
                out_loss.append((ll[:, kn].sum(1).to(_F64) / max(n_known, 1)).cpu().numpy())
                pred_np = classes[pi.cpu().numpy()]
            for mname, v in batch_metrics(metrics, y_eval, pred_np).items() if metrics else ():
                out_scores[mname].append(v)
            bar.update(len(d))
        bar.close()

        n_iter = np.concatenate(iters)
        converged = np.concatenate(convs)
        if not converged.all():
            logger.warning(
                "%d of %d probes did not converge in max_iter=%d Newton iterations",
                int((~converged).sum()),
                B,
                self.max_iter,
            )
        self.last_stats_ = dict(
            n_probes=B,
            k=k,
            chunk_size=chunk,
            n_chunks=-(-B // chunk),
            compiled=use_compile,
            n_iter=n_iter,
            converged=converged,
            seconds=time.perf_counter() - t0,
        )
        logger.debug(
            "fitted %d probes of %d dims in %.2fs (chunk %d)",
            B,
            k,
            self.last_stats_["seconds"],
            chunk,
        )
        scores = None
        if scoring:
            scores = {
                mname: np.concatenate(v).astype(np.float64) for mname, v in out_scores.items()
            }
            scores["loss"] = np.concatenate(out_loss).astype(np.float64)
        fit = None
        if keep_fit:
            fit = ProbeFit(
                dims=dims,
                coef=np.concatenate(coefs),
                intercept=np.concatenate(icepts),
                mean=mean,
                scale=scale,
                classes=classes,
                regression=self.regression,
                n_iter=n_iter,
                converged=converged,
            )
        return scores, fit

    # ------------------------------------------------------------------ solvers
    def _converged(self, step, size, snorm, idx):
        """Newton convergence test: the step is below ``tol`` (relative to the parameter
        size, at least 1), or it is already small (< 1e-4) and no longer shrinking
        quadratically, which means float32 rounding of the sums over examples is the
        floor (about 1e-6 relative); further steps would be noise. Works on NumPy arrays and
        on torch tensors alike."""
        scale = size.clip(min=1.0)
        stalled = (step <= 1e-4 * scale) & (step >= 0.25 * snorm[idx])
        snorm[idx] = step
        return (step <= self.tol * scale) | stalled

    def _fit_ridge(self, d: torch.Tensor, ctx):
        """Closed form from sub-blocks of the shared Gram matrix: ``w = (G_SS + alpha I)^-1 c_S``."""
        G, c, lam = ctx["G"], ctx["c"], ctx["lam"]
        dn = d.cpu().numpy()
        Bc, k = dn.shape
        Gs = G[dn[:, :, None], dn[:, None, :]] + lam * np.eye(k)  # [Bc, k, k]
        w = torch.as_tensor(_spd_solve(Gs, c[dn]), device=d.device)  # [Bc, k]
        b = torch.full((Bc, 1), ctx["ybar"], dtype=_F64, device=d.device)
        zeros = np.zeros(Bc, dtype=np.int64)
        return w[:, None, :], b, zeros, np.ones(Bc, dtype=bool)

    def _shared_setup(
        self, Xt: torch.Tensor, Xe: torch.Tensor | None, cols: np.ndarray, ctx: dict
    ) -> dict:
        """State for probes sharing the columns ``cols [s]`` (rows of ``Xt``): the shared rows
        with a row of ones, their pairwise products, and the start ``[s + 2]`` (float64): the
        probe fitted on the shared columns alone, with weight 0 on the probe's own column (the
        optimum of a nested model: Newton from there needs fewer passes than from LDA)."""
        s = len(cols)
        idx = torch.as_tensor(cols, device=Xt.device)
        ones = torch.ones((1, Xt.shape[1]), dtype=_F32, device=Xt.device)
        S1 = torch.cat([Xt[idx], ones])
        a, b = np.triu_indices(s + 1)
        Q = S1[torch.as_tensor(a, device=Xt.device)] * S1[torch.as_tensor(b, device=Xt.device)]
        XtS = S1[:s].contiguous()
        sub = dict(ctx, **_lda_stats(XtS, ctx["yi"]))
        sub.pop("shared", None)
        W, b0, _, _ = self._fit_binary(XtS, torch.arange(s, device=Xt.device)[None, :], sub)
        start = np.zeros(s + 2)
        start[:s] = W[0, 0].cpu().numpy()
        start[s + 1] = float(b0[0, 0])
        out = dict(S1=S1, Q=Q, start=start)
        if Xe is not None:
            out["Se1"] = torch.cat(
                [Xe[idx], torch.ones((1, Xe.shape[1]), dtype=_F32, device=Xe.device)]
            )
        return out

    def _fit_binary(self, Xt: torch.Tensor, d: torch.Tensor, ctx, shared: dict | None = None):
        """Damped Newton for ``sum logloss + lam/2 ||w||^2`` on ``Bc`` probes at once.

        Starts from linear discriminant analysis (closed form from shared class means and
        the pooled covariance; usually close to the logistic optimum). Safeguard: Newton is
        applied to the equation ``grad = 0`` with the merit function ``||grad||^2`` (for which
        the Newton direction is always a descent direction, and whose only minimiser is the
        optimum of this strictly convex objective); a step that does not lower the merit
        is halved. The first step is checked against the intercept-only model, whose
        gradient is known in closed form. The sums over examples run in torch on the
        engine's device; the per-probe bookkeeping (a few numbers per probe) in float64
        NumPy."""
        dev = Xt.device
        dn = d.cpu().numpy()
        Bc, k = dn.shape
        p = k + 1
        lam = ctx["lam"]
        y = ctx["y"]
        p1 = float(ctx["prior"][1])
        b0 = math.log(p1 / (1 - p1))
        n = ctx["n"]
        floor = (1e-6 * n) ** 2  # merit below which float32 sums are noise (param. error ~1e-5)
        prev = np.zeros((Bc, p))
        prev[:, k] = b0
        # gradient at (w=0, b=b0) on standardised features: -n1 * mu1, and 0 for b
        m_prev = ((n * p1 * ctx["lda_mu1"][dn]) ** 2).sum(1)
        if shared is not None:  # probes sharing their first k-1 columns (see _shared_setup)
            theta = np.tile(shared["start"], (Bc, 1))
            Xc_all = Xt[d[:, -1]]  # [Bc, n] each probe's own column
        else:
            theta = _lda_init(ctx, dn, b0)
        step = theta - prev
        n_iter = np.zeros(Bc, dtype=np.int64)
        done = np.zeros(Bc, dtype=bool)
        pen = np.full(p, lam)
        pen[k] = 1e-10 * n  # intercept unpenalised; a whisper keeps H invertible when s -> 0
        pen = np.diag(pen)
        snorm = np.full(Bc, np.inf)  # last accepted Newton step size
        act = np.arange(Bc)  # indices of active probes into the chunk
        use_compile = ctx["use_compile"]
        for _ in range(self.max_iter):
            th = theta[act]
            da = d if len(act) == Bc else d[torch.as_tensor(act, device=dev)]
            th_t = torch.as_tensor(th, dtype=_F32).to(dev)
            if shared is not None:
                Xc = Xc_all if len(act) == Bc else Xc_all[torch.as_tensor(act, device=dev)]
                g, H = _shared_unpack(_shared_pass(shared["S1"], shared["Q"], Xc, th_t, y), k - 1)
            else:
                if (
                    use_compile and len(act) >= 64
                ):  # fused kernel (small batches are not worth a recompile)
                    stats = _call_kernel(_binary_pass_sums, True, Xt, da, th_t, y)
                else:
                    stats = _binary_pass_bmm(Xt, da, th_t, y)
                g, H = _unpack_binary(stats.cpu().numpy().astype(np.float64), k)
            g[:, :k] += lam * th[:, :k]
            merit = (g * g).sum(1)
            n_iter[act] += 1
            worse = (merit > m_prev[act]) & (merit > floor)
            if worse.any():  # rejected points: halve the step from the last accepted point
                ia = act[worse]
                step[ia] *= 0.5
                theta[ia] = prev[ia] + step[ia]
                tiny = np.abs(step[ia]).max(1) < self.tol * 1e-3
                if tiny.any():  # line search exhausted: keep the last accepted point
                    theta[ia[tiny]] = prev[ia[tiny]]
                    done[ia[tiny]] = True
            good = ~worse
            if good.any():
                ig = act[good]
                thg = th[good]
                st = -_spd_solve(H[good] + pen, g[good])
                prev[ig] = thg
                m_prev[ig] = merit[good]
                step[ig] = st
                theta[ig] = thg + st
                conv = self._converged(np.abs(st).max(1), np.abs(thg).max(1), snorm, ig)
                done[ig[conv]] = True
            act = act[~done[act]]
            if len(act) == 0:
                break
        th = torch.as_tensor(theta, device=dev)
        return th[:, None, :k], th[:, k : k + 1], n_iter, done

    def _fit_multinomial(self, Xt: torch.Tensor, d: torch.Tensor, ctx):
        """Damped Newton for the multinomial objective; the last class's intercept is fixed at
        0 (the likelihood is invariant to a common intercept shift and intercepts are not
        penalised, so this loses nothing)."""
        dev = Xt.device
        Bc, k = d.shape
        K, lam = ctx["K"], ctx["lam"]
        p_ = k + 1
        yi = ctx["yi"]
        n = Xt.shape[1]
        Y = torch.nn.functional.one_hot(yi, K).T.to(_F32)  # [K, n]
        Xg = Xt[d]  # [Bc, k, n]
        ones = torch.ones((1, 1, n), dtype=_F32, device=dev)
        P = K * p_  # full parameter count; index c*p_ + j (j = k is the intercept)
        free = [i for i in range(P) if i != (K - 1) * p_ + k]
        free_t = torch.as_tensor(free, device=dev)
        pen = torch.zeros(P, dtype=_F64, device=dev)
        for c in range(K):
            pen[c * p_ : c * p_ + k] = lam
        pen_f = torch.diag(pen[free_t])
        jitter = torch.diag((pen[free_t] == 0).to(_F64)) * 1e-10 * n
        theta = torch.zeros((Bc, K, p_), dtype=_F64, device=dev)
        logp = np.log(np.maximum(ctx["prior"], 1e-12))
        theta[:, :, k] = torch.as_tensor(logp - logp[-1], device=dev)
        prev = theta.clone()
        step = torch.zeros_like(theta)
        f_prev = torch.full((Bc,), math.inf, dtype=_F64, device=dev)
        n_iter = torch.zeros(Bc, dtype=torch.long, device=dev)
        done = torch.zeros(Bc, dtype=torch.bool, device=dev)
        snorm = torch.full((Bc,), math.inf, dtype=_F64, device=dev)
        act = torch.arange(Bc, device=dev)
        Xa = torch.cat([Xg, ones.expand(Bc, 1, n)], dim=1)  # [Bc, p, n]
        for it in range(self.max_iter):
            th = theta[act]
            Z = torch.bmm(th.to(_F32), Xa)  # [Ba, K, n]
            lse = torch.logsumexp(Z, dim=1)
            f = (lse - (Z * Y).sum(1)).sum(1, dtype=_F64) + 0.5 * lam * (th[:, :, :k] ** 2).sum(
                (1, 2)
            )
            n_iter[act] += 1
            worse = f > f_prev[act] + 1e-9 * f_prev[act].abs().clamp_min(1.0)
            if worse.any():
                ia = act[worse]
                step[ia] *= 0.5
                theta[ia] = prev[ia] + step[ia]
                tiny = step[ia].abs().amax((1, 2)) < self.tol * 1e-3
                if tiny.any():
                    theta[ia[tiny]] = prev[ia[tiny]]
                    done[ia[tiny]] = True
            good = ~worse
            if good.any():
                ig = act[good]
                allg = bool(good.all())
                Xb = Xa if allg else Xa[good]
                Pr = (
                    torch.exp(Z - lse[:, None, :])
                    if allg
                    else torch.exp(Z[good] - lse[good][:, None, :])
                )
                R = Pr - Y  # [Bg, K, n]
                thg = theta[ig]
                g = torch.bmm(R, Xb.transpose(1, 2)).to(_F64)  # [Bg, K, p]
                g[:, :, :k] += lam * thg[:, :, :k]
                Bg = len(ig)
                H = torch.empty((Bg, K, p_, K, p_), dtype=_F64, device=dev)
                for c in range(K):
                    for e in range(c, K):
                        a = Pr[:, c] * ((1.0 if c == e else 0.0) - Pr[:, e])  # [Bg, n]
                        blk = torch.bmm(Xb * a[:, None, :], Xb.transpose(1, 2)).to(_F64)
                        H[:, c, :, e, :] = blk
                        if e != c:
                            H[:, e, :, c, :] = blk.transpose(1, 2)
                H = H.reshape(Bg, P, P)[:, free_t][:, :, free_t] + pen_f + jitter
                gf = g.reshape(Bg, P)[:, free_t]
                st_f = -torch.linalg.solve(H, gf[:, :, None])[:, :, 0]
                st = torch.zeros((Bg, P), dtype=_F64, device=dev)
                st[:, free_t] = st_f
                st = st.reshape(Bg, K, p_)
                prev[ig] = thg
                f_prev[ig] = f[good]
                step[ig] = st
                theta[ig] = thg + st
                conv = self._converged(st.abs().amax((1, 2)), thg.abs().amax((1, 2)), snorm, ig)
                done[ig[conv]] = True
            keep = ~done[act]
            if not bool(keep.any()):
                break
            if not bool(keep.all()):
                act = act[keep]
                Xa = Xa[keep]
        return theta[:, :, :k], theta[:, :, k], n_iter.cpu().numpy(), done.cpu().numpy()


# ----------------------------------------------------------------------------- splits & baselines


def train_val_split(
    y, val_fraction: float = 0.2, seed: int = 0, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of ``range(len(y))`` into (train, validation) index arrays, both sorted.

    Classification labels are stratified by class; regression targets (float ``y``) are
    stratified by quintile bins. Use the validation part for selection and report on dev.

    Args:
        y: ``[n]`` labels or targets.
        val_fraction: fraction of examples in the validation part, in (0, 1).
        seed: random seed (the split depends on nothing else).
        stratify: keep class (or quintile) proportions equal in both parts.

    Returns:
        ``(idx_train [n - n_val], idx_val [n_val])`` int64.
    """
    from sklearn.model_selection import train_test_split

    y = np.asarray(y)
    if y.ndim != 1 or len(y) < 2:
        raise DataError(f"train_val_split: need y of shape [n] with n >= 2, got {y.shape}")
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must lie in (0, 1), got {val_fraction!r}")
    idx = np.arange(len(y))
    strata = None
    if stratify:
        if np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y, 1) == 0):
            edges = np.quantile(y, [0.2, 0.4, 0.6, 0.8])
            strata = np.searchsorted(edges, y, side="right")
        else:
            strata = y
        _, counts = np.unique(strata, return_counts=True)
        n_val = math.ceil(val_fraction * len(y))
        if counts.min() < 2 or n_val < len(counts) or len(y) - n_val < len(counts):
            logger.warning(
                "train_val_split: too few examples per stratum to stratify; splitting at random"
            )
            strata = None
    tr, va = train_test_split(
        idx, test_size=val_fraction, random_state=seed, shuffle=True, stratify=strata
    )
    return np.sort(tr).astype(np.int64), np.sort(va).astype(np.int64)


def majority_baseline(
    y_train, y_eval, metrics: Sequence[str] = ("accuracy",), regression: bool = False
) -> dict[str, float]:
    """Scores of a constant predictor on ``y_eval [m]``: the most frequent training label
    (ties: the smallest), or the training mean for regression (whose correlations are
    undefined: NaN)."""
    y_train = np.asarray(y_train)
    y_eval = np.asarray(y_eval)
    if regression:
        pred = np.full(len(y_eval), float(np.mean(y_train)))
    else:
        vals, counts = np.unique(y_train, return_counts=True)
        pred = np.full(
            len(y_eval), vals[np.argmax(counts)], dtype=y_eval.dtype if y_eval.size else vals.dtype
        )
    return compute_metrics(metrics, y_eval, pred)


def random_dims_baseline(
    engine: ProbeEngine,
    X_train,
    y_train,
    X_eval,
    y_eval,
    k: int,
    n_draws: int = 20,
    seed: int = 0,
    metrics: Sequence[str] = ("accuracy",),
) -> dict[str, Any]:
    """Scores of probes on ``n_draws`` random dimension sets of size ``k`` (a distribution,
    not one draw). Each set is ``k`` distinct dimensions drawn uniformly with
    ``np.random.default_rng(seed)``.

    Returns:
        ``{"k", "n_draws", "seed", "dims": [n_draws][k], "mean": {metric: float},
        "std": {metric: float}, "median": {...}, "scores": {metric: [n_draws] list}}``.
    """
    D = np.asarray(X_train).shape[1]
    if not 1 <= k <= D:
        raise ConfigError(f"random_dims_baseline: k must lie in [1, {D}], got {k}")
    if n_draws < 1:
        raise ConfigError(f"random_dims_baseline: n_draws must be >= 1, got {n_draws}")
    rng = np.random.default_rng(seed)
    dims = np.stack([np.sort(rng.choice(D, size=k, replace=False)) for _ in range(n_draws)])
    sc = engine.fit_score(X_train, y_train, X_eval, y_eval, dims, metrics=metrics)
    names = list(metrics) if not isinstance(metrics, str) else [metrics]
    return {
        "k": int(k),
        "n_draws": int(n_draws),
        "seed": int(seed),
        "dims": dims.tolist(),
        "mean": {mn: float(np.nanmean(sc[mn])) for mn in names},
        "std": {mn: float(np.nanstd(sc[mn])) for mn in names},
        "median": {mn: float(np.nanmedian(sc[mn])) for mn in names},
        "scores": {mn: sc[mn].tolist() for mn in names},
    }


def input_types(
    input_ids: np.ndarray,
    offsets: np.ndarray,
    special_mask: np.ndarray | None = None,
    *,
    mode: str = "first_content",
) -> list[Hashable]:
    """The "input type" of each example, for control tasks on sentence-level probes.

    Hewitt & Liang give each *word type* a random label, so a control probe must memorise
    the type from the representation. A sentence-level probe has no single word; probekit
    defines the type of an example as:

    * ``"first_content"`` (default): the token id of its first non-special token. Types
      recur across train and dev (as word types do in H&L), so a probe that reads lexical
      identity from the selected dimensions can score above chance on the control task;
    * ``"sequence"``: its whole token-id sequence (special tokens excluded). Only exact
      duplicates share a type, so on dev the control task is near chance by construction.

    Args:
        input_ids: ``[n_tokens]`` token ids of all examples, concatenated.
        offsets: ``[n_examples + 1]`` example boundaries in ``input_ids``.
        special_mask: ``[n_tokens]`` 1 for special tokens ([CLS], [SEP], padding), or None.
        mode: ``"first_content"`` or ``"sequence"``.

    Returns:
        ``[n_examples]`` hashable types.
    """
    ids = np.asarray(input_ids)
    off = np.asarray(offsets)
    sm = (
        np.zeros(len(ids), dtype=bool)
        if special_mask is None
        else np.asarray(special_mask).astype(bool)
    )
    if mode not in ("first_content", "sequence"):
        raise ConfigError(f"input_types: mode must be 'first_content' or 'sequence', got {mode!r}")
    types: list[Hashable] = []
    for i in range(len(off) - 1):
        seg = ids[off[i] : off[i + 1]][~sm[off[i] : off[i + 1]]]
        if mode == "first_content":
            types.append(int(seg[0]) if len(seg) else -1)
        else:
            types.append(tuple(int(t) for t in seg))
    return types


def control_task_labels(
    types_train: Sequence[Hashable],
    y_train,
    types_eval: Sequence[Hashable] | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Hewitt & Liang control-task labels: every distinct input type gets one label drawn at
    random from the empirical training label distribution (for regression, one target value
    drawn from the training targets); each example then takes its type's label.

    Types are visited in sorted order of their string form so the result depends only on
    ``seed``, not on example order.

    Args:
        types_train: ``[n]`` hashable types (see :func:`input_types`).
        y_train: ``[n]`` real labels (only their distribution is used).
        types_eval: ``[m]`` types of the evaluation examples (optional); types unseen in
            train draw labels too.
        seed: random seed.

    Returns:
        ``(y_control_train [n], y_control_eval [m] or None)``.
    """
    y_train = np.asarray(y_train)
    if len(types_train) != len(y_train):
        raise DataError(f"control_task_labels: {len(types_train)} types but {len(y_train)} labels")
    all_types = list(types_train) + (list(types_eval) if types_eval is not None else [])
    uniq = sorted(set(all_types), key=lambda t: (str(type(t)), str(t)))
    rng = np.random.default_rng(seed)
    draw = rng.choice(y_train, size=len(uniq), replace=True)
    table = dict(zip(uniq, draw))
    yc_train = np.asarray([table[t] for t in types_train], dtype=y_train.dtype)
    yc_eval = (
        None
        if types_eval is None
        else np.asarray([table[t] for t in types_eval], dtype=y_train.dtype)
    )
    return yc_train, yc_eval


def selectivity(task_scores: dict[str, Any], control_scores: dict[str, Any]) -> dict[str, Any]:
    """Selectivity (Hewitt & Liang): task score minus control-task score, per metric
    (arrays element-wise)."""
    return {
        mn: np.asarray(task_scores[mn]) - np.asarray(control_scores[mn])
        for mn in task_scores
        if mn in control_scores and mn != "loss"
    }


def control_task_baseline(
    engine: ProbeEngine,
    X_train,
    y_train,
    X_eval,
    y_eval,
    dims,
    types_train,
    types_eval,
    *,
    seed: int = 0,
    metrics: Sequence[str] = ("accuracy",),
) -> dict[str, Any]:
    """Fit the same probes on the task and on its control task; return both scores and the
    selectivity. ``dims [B, k]``; returns ``{"task": {metric: [B]}, "control": {...},
    "selectivity": {...}}`` (arrays)."""
    task = engine.fit_score(X_train, y_train, X_eval, y_eval, dims, metrics=metrics)
    yc_tr, yc_ev = control_task_labels(types_train, y_train, types_eval, seed=seed)
    if not engine.regression and len(np.unique(yc_tr)) < 2:
        raise DataError(
            "control task: every type drew the same label; use more examples or another seed"
        )
    ctrl = engine.fit_score(X_train, yc_tr, X_eval, yc_ev, dims, metrics=metrics)
    return {"task": task, "control": ctrl, "selectivity": selectivity(task, ctrl)}


def evaluate_probe(
    X_train,
    y_train,
    X_eval,
    y_eval,
    dims,
    *,
    metrics: Sequence[str],
    regression: bool = False,
    C: float = 1.0,
    device: str | torch.device = "cpu",
    seed: int = 0,
    n_random: int = 20,
    val_fraction: float = 0.2,
    types_train: Sequence[Hashable] | None = None,
    types_eval: Sequence[Hashable] | None = None,
    memory_budget: int = 2 * 2**30,
    progress: bool = False,
) -> dict[str, Any]:
    """One probe on fixed dimensions, with its baselines: what ``probekit probe`` reports.

    The probe is fitted on all of ``X_train [n, D]`` and scored on ``X_eval [m, D]`` (the
    reported ``metrics``); ``val_metrics`` comes from a probe fitted on a seeded, stratified
    ``1 - val_fraction`` part of train and scored on the rest (what a selection would see).
    Baselines: the majority class, probes on ``n_random`` random dimension sets of the same
    size (a distribution; omitted when ``dims`` is the full width, where every draw is the
    full probe), and, when ``types_train``/``types_eval`` are given, a Hewitt & Liang
    control task with its selectivity.

    Args:
        dims: ``[k]`` column indices.
        metrics: metric names, primary first.

    Returns:
        A JSON-ready dict (``None`` for undefined values): ``metrics``, ``loss``,
        ``val_metrics``, ``dims``, ``k``, ``n_train``, ``n_eval``, ``majority_baseline``,
        ``random_baseline``, optionally ``control``, plus ``converged`` and ``n_iter``.
    """
    X_train = _as_2d_features(X_train, "X_train")
    D = X_train.shape[1]
    dims = parse_dims(dims, D)
    names = list(metrics)
    eng = ProbeEngine(
        regression=regression, C=C, device=device, memory_budget=memory_budget, progress=progress
    )
    sc = eng.fit_score(X_train, y_train, X_eval, y_eval, dims[None, :], metrics=names)
    conv, n_iter = bool(eng.last_stats_["converged"][0]), int(eng.last_stats_["n_iter"][0])
    y_train = np.asarray(y_train)
    itr, iva = train_val_split(y_train, val_fraction=val_fraction, seed=seed)
    vs = eng.fit_score(
        X_train[itr], y_train[itr], X_train[iva], y_train[iva], dims[None, :], metrics=names
    )
    out: dict[str, Any] = {
        "metrics": {mn: _num(sc[mn][0]) for mn in names},
        "loss": _num(sc["loss"][0]),
        "val_metrics": {mn: _num(vs[mn][0]) for mn in names},
        "val_fraction": val_fraction,
        "dims": dims.tolist(),
        "k": len(dims),
        "n_train": int(X_train.shape[0]),
        "n_eval": int(np.asarray(X_eval).shape[0]),
        "converged": conv,
        "n_iter": n_iter,
        "majority_baseline": {
            mn: _num(v) for mn, v in majority_baseline(y_train, y_eval, names, regression).items()
        },
    }
    if len(dims) < D and n_random > 0:
        rb = random_dims_baseline(
            eng,
            X_train,
            y_train,
            X_eval,
            y_eval,
            len(dims),
            n_draws=n_random,
            seed=seed,
            metrics=names,
        )
        rb["mean"] = {mn: _num(v) for mn, v in rb["mean"].items()}
        rb["std"] = {mn: _num(v) for mn, v in rb["std"].items()}
        rb["median"] = {mn: _num(v) for mn, v in rb["median"].items()}
        rb["scores"] = {mn: [_num(v) for v in vals] for mn, vals in rb["scores"].items()}
        out["random_baseline"] = rb
    else:
        out["random_baseline"] = {
            "k": len(dims),
            "n_draws": 0,
            "seed": seed,
            "note": "dims is the full width: every random draw is the full probe",
            "mean": dict(out["metrics"]),
            "std": {mn: 0.0 for mn in names},
        }
    if types_train is not None and types_eval is not None:
        cb = control_task_baseline(
            eng,
            X_train,
            y_train,
            X_eval,
            y_eval,
            dims[None, :],
            types_train,
            types_eval,
            seed=seed,
            metrics=names,
        )
        out["control"] = {
            "input_type": "first content token id (see probekit.probes.input_types)",
            "metrics": {mn: _num(cb["control"][mn][0]) for mn in names},
            "selectivity": {mn: _num(cb["selectivity"][mn][0]) for mn in names},
        }
    return out


def _num(v) -> float | None:
    """A JSON-safe float: None for NaN/inf."""
    v = float(v)
    return v if math.isfinite(v) else None


# ----------------------------------------------------------------------------- estimator

from sklearn.base import BaseEstimator  # noqa: E402
from sklearn.utils.metaestimators import available_if  # noqa: E402


class LinearProbe(BaseEstimator):
    """A linear probe as a scikit-learn estimator.

    L2-regularised logistic regression (``regression=False``; binary or multinomial) or
    ridge (``regression=True``, ``alpha = 1 / C``) on features standardised with the
    training mean and standard deviation. ``backend="sklearn"`` fits with scikit-learn
    (``LogisticRegression(C=C)`` / ``Ridge(alpha=1/C)``), ``backend="torch"`` with
    :class:`ProbeEngine`, on the same objective.

    Args:
        C: inverse regularisation strength.
        regression: ridge instead of logistic regression.
        backend: ``"sklearn"`` or ``"torch"``.
        max_iter: iteration cap (lbfgs iterations for sklearn, Newton steps for torch).
        tol: convergence tolerance of the backend.
        device: torch device for ``backend="torch"``.

    Attributes (after ``fit``):
        classes_: ``[n_classes]`` (classification).
        coef_: ``[n_features]`` (binary / regression) or ``[n_classes, n_features]``, on
            standardised features.
        intercept_: float or ``[n_classes]``.
        mean_, scale_: ``[n_features]`` standardisation statistics.
        n_features_in_: number of features seen in ``fit``.
        n_iter_: iterations used (``[1]`` for ridge, solved in closed form).
    """

    def __init__(
        self,
        C: float = 1.0,
        regression: bool = False,
        backend: str = "sklearn",
        max_iter: int = 1000,
        tol: float = 1e-4,
        device: str = "cpu",
    ):
        self.C = C
        self.regression = regression
        self.backend = backend
        self.max_iter = max_iter
        self.tol = tol
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.regression:
            from sklearn.utils import RegressorTags

            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
            tags.target_tags.required = True
        else:
            from sklearn.utils import ClassifierTags

            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags()
            tags.target_tags.required = True
        return tags

    @property
    def _estimator_type(self):  # older scikit-learn and is_classifier()
        return "regressor" if self.regression else "classifier"

    def fit(self, X, y):
        """Fit on ``X [n, n_features]`` and ``y [n]``; returns self."""
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import check_X_y

        if self.backend not in ("sklearn", "torch"):
            raise ValueError(f"backend must be 'sklearn' or 'torch', got {self.backend!r}")
        if not (isinstance(self.C, (int, float)) and self.C > 0):
            raise ValueError(f"C must be a positive number, got {self.C!r}")
        X, y = check_X_y(
            X, y, dtype=[np.float64, np.float32, np.float16], y_numeric=self.regression
        )
        self.n_features_in_ = X.shape[1]
        if not self.regression:
            check_classification_targets(y)
            self.classes_ = np.unique(y)
            if len(self.classes_) < 2:
                raise ValueError(
                    f"LinearProbe needs samples of at least 2 classes; got only one class: {self.classes_[0]!r}"
                )
        else:
            y = y.astype(np.float64)
        self.mean_, self.scale_ = standardization_stats(X)
        if self.backend == "sklearn":
            Xs = (X.astype(np.float64) - self.mean_) / self.scale_
            if self.regression:
                from sklearn.linear_model import Ridge

                est = Ridge(alpha=1.0 / self.C).fit(Xs, y)
                self.coef_ = est.coef_.astype(np.float64)
                self.intercept_ = float(est.intercept_)
                self.n_iter_ = np.array([1])  # closed form: one solve
            else:
                from sklearn.linear_model import LogisticRegression

                est = LogisticRegression(C=self.C, max_iter=self.max_iter, tol=self.tol).fit(Xs, y)
                self.coef_ = est.coef_[0] if len(self.classes_) == 2 else est.coef_
                self.intercept_ = (
                    float(est.intercept_[0]) if len(self.classes_) == 2 else est.intercept_
                )
                self.n_iter_ = est.n_iter_
        else:
            eng = ProbeEngine(
                regression=self.regression,
                C=self.C,
                device=self.device,
                max_iter=self.max_iter,
                tol=self.tol,
            )
            fit = eng.fit(X, y, np.arange(X.shape[1])[None, :])
            coef, icpt = fit.coef[0], fit.intercept[0]
            if self.regression or len(self.classes_) == 2:
                self.coef_, self.intercept_ = coef[0], float(icpt[0])
            else:
                self.coef_, self.intercept_ = coef, icpt
            self.n_iter_ = fit.n_iter if not self.regression else np.array([1])
        return self

    @available_if(lambda self: not self.regression)
    def decision_function(self, X) -> np.ndarray:
        """Scores ``[m]`` (binary) or ``[m, n_classes]`` (classification only)."""
        return self._decision(X)

    def _decision(self, X) -> np.ndarray:
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32, np.float16])
        Xs = (X.astype(np.float64) - self.mean_) / self.scale_
        return Xs @ np.asarray(self.coef_).T + self.intercept_

    def predict(self, X) -> np.ndarray:
        """Labels (or values) ``[m]``."""
        z = self._decision(X)
        if self.regression:
            return z
        if z.ndim == 1:
            return self.classes_[(z > 0).astype(np.int64)]
        return self.classes_[z.argmax(axis=1)]

    @available_if(lambda self: not self.regression)
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``[m, n_classes]`` (classification only)."""
        from scipy.special import expit, softmax

        z = self._decision(X)
        if z.ndim == 1:
            p = expit(z)
            return np.stack([1 - p, p], axis=1)
        return softmax(z, axis=1)

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy (classification) or R^2 (regression), as scikit-learn's mixins."""
        from sklearn.metrics import accuracy_score, r2_score

        if self.regression:
            return float(r2_score(y, self.predict(X), sample_weight=sample_weight))
        return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))
