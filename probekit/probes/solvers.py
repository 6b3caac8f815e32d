"""Solvers for batches of probes: binary and multinomial logistic Newton, and ridge.

Objectives (the same as scikit-learn's, see :mod:`probekit.probes`):

* binary logistic: ``C * sum logloss + 0.5 ||w||^2`` (written ``sum logloss + lam/2 ||w||^2``
  with ``lam = 1/C``), intercept unpenalised. Damped Newton (:mod:`.newton`) on the equation
  ``grad = 0`` with the merit ``||grad||^2`` (for which the Newton direction is always a
  descent direction, and whose only minimiser is the optimum of this strictly convex
  objective), started from linear discriminant analysis (closed form from class means and
  the pooled covariance, shared by all probes; usually close to the logistic optimum). The
  first step is checked against the intercept-only model, whose gradient is known in closed
  form;
* multinomial logistic: the same scaffold with the objective itself as the merit;
* ridge: closed form from sub-blocks of one shared Gram matrix.

The sums over examples run in torch on the engine's device (:mod:`.kernels`); the per-probe
bookkeeping in float64 NumPy. Per-run state (what every chunk of probes shares) is built
once by :func:`logistic_setup` / :func:`ridge_setup`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .kernels import (
    binary_pass_sums,
    call_kernel,
    eager_pass,
    fused_worth,
    shared_pass,
    shared_unpack,
    unpack_binary,
)
from .newton import NewtonState, damped_newton
from .standardize import row_blocks

__all__ = [
    "ChunkFit",
    "LdaStats",
    "LogisticSetup",
    "RidgeSetup",
    "SharedColumns",
    "fit_chunk",
    "gram",
    "logistic_setup",
    "ridge_setup",
    "spd_solve",
]

from .linalg import solve_batched, spd_solve

_F32 = torch.float32
_F64 = torch.float64


def gram(
    Xt: torch.Tensor, cols_per_block: int | None = None, *, float32_blocks: bool = False
) -> torch.Tensor:
    """``Xt @ Xt.T`` in float64, ``[Du, Du]``, accumulated over blocks of examples (of
    ``cols_per_block``, default :func:`.standardize.row_blocks`' ~2 MiB float64 blocks);
    with ``float32_blocks``, each block's product in float32 (what a starting point needs:
    relative error ~1e-7 per block, at twice the speed and without a float64 copy)."""
    Du, n = Xt.shape
    G = torch.zeros((Du, Du), dtype=_F64, device=Xt.device)
    for i, j in row_blocks(n, Du, cols_per_block):
        if float32_blocks:
            blk = Xt[:, i:j].to(_F32)
            G += (blk @ blk.T).to(_F64)
        else:
            blk = Xt[:, i:j].to(_F64)
            G += blk @ blk.T
    return G


def row_sums(Xt: torch.Tensor) -> torch.Tensor:
    """``Xt.sum(1)`` in float64, ``[Du]``, in ~2 MiB row blocks (``sum(dtype=float64)`` on the
    CPU would first copy all of ``Xt [Du, n]`` to float64)."""
    return torch.cat([Xt[i:j].sum(1, dtype=_F64) for i, j in row_blocks(*Xt.shape)])


def row_dot(Xt: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``Xt @ v`` in float64, ``[Du]``, for ``Xt [Du, n]`` and ``v [n]`` float64."""
    return torch.cat([Xt[i:j].to(_F64) @ v for i, j in row_blocks(Xt.shape[0], Xt.shape[1])])


# ----------------------------------------------------------------------------- per-run state


@dataclass
class LdaStats:
    """Class means ``mu0, mu1 [Du]`` and pooled within-class covariance ``S [Du, Du]`` (None
    when not needed; diagonal only for single-column probes) of the standardised training
    columns, float64: the LDA starting point of binary probes."""

    mu0: np.ndarray
    mu1: np.ndarray
    S: np.ndarray | None = None

    def start(self, d: np.ndarray, b0: float, ridge: float | np.ndarray = 1e-3) -> np.ndarray:
        """LDA parameters ``[B, k+1]`` for the column subsets ``d [B, k]``:
        ``w = (S + ridge I)^-1 (mu1 - mu0)``, ``b = -w . (mu0 + mu1) / 2 + b0`` (``ridge``: a
        number or ``[B]``; the penalty's counterpart shrinks the start as the penalty shrinks
        the optimum: near ``w = 0`` the logistic Hessian is ``n p0 p1 S``)."""
        k = d.shape[1]
        r = np.broadcast_to(np.asarray(ridge, dtype=np.float64), len(d))
        Ss = self.S[d[:, :, None], d[:, None, :]] + r[:, None, None] * np.eye(k)
        w = spd_solve(Ss, self.mu1[d] - self.mu0[d])
        b = -(w * (self.mu0[d] + self.mu1[d])).sum(1) * 0.5 + b0
        return np.concatenate([w, b[:, None]], 1)


def lda_stats(Xt: torch.Tensor, yi: torch.Tensor, covariance: bool | str = True) -> LdaStats:
    """:class:`LdaStats` of ``Xt [Du, n]`` with class indices ``yi [n]`` in {0, 1}; the
    covariance only when ``covariance`` (``"diag"``: only its diagonal)."""
    n = Xt.shape[1]
    w1 = (yi == 1).to(_F64)
    n1 = float(w1.sum())
    n0 = n - n1
    s1 = row_dot(Xt, w1)
    s_all = row_sums(Xt)
    mu1 = s1 / n1
    mu0 = (s_all - s1) / n0
    out = LdaStats(mu0=mu0.cpu().numpy(), mu1=mu1.cpu().numpy())
    if not covariance:
        return out
    if covariance == "diag":  # single-column probes need only the variances
        blocks = row_blocks(Xt.shape[0], Xt.shape[1])
        sq = torch.cat([(Xt[i:j].to(_F64) ** 2).sum(1) for i, j in blocks])
        S = torch.diag(sq - n1 * mu1 * mu1 - n0 * mu0 * mu0)
    else:
        # (a starting point: float32 products, which Newton's first pass corrects anyway)
        S = gram(Xt, float32_blocks=True) - n1 * torch.outer(mu1, mu1) - n0 * torch.outer(mu0, mu0)
    out.S = (S / n).cpu().numpy()
    return out


@dataclass
class SharedColumns:
    """Binary probes that all share their first ``s`` columns (a greedy forward step).

    Attributes:
        S1: ``[s + 1, n]`` float32 shared training columns, then a row of ones.
        Q: ``[(s + 1)(s + 2)/2, n]`` float32 pairwise products of ``S1``'s rows (``a <= b``).
        start: ``[s + 2]`` float64: the probe fitted on the shared columns alone, with weight
            0 on the own column (the optimum of a nested model: Newton from there needs fewer
            passes than from LDA).
        Se1: ``[s + 1, m]`` the same for the eval columns (None when not scoring).
    """

    S1: torch.Tensor
    Q: torch.Tensor
    start: np.ndarray
    Se1: torch.Tensor | None


@dataclass
class LogisticSetup:
    """What every chunk of logistic probes of one run shares.

    Attributes:
        yi: ``[n]`` class indices (int64, on the device).
        n_classes: ``K``.
        lam: ``1 / C``: a number, or ``[B]`` one per probe of the run.
        prior: ``[K]`` training class frequencies.
        use_compile: run the fused kernels through ``torch.compile``.
        y: ``[n]`` float32 labels in {0, 1} (binary only).
        lda: LDA statistics for the binary start (binary only).
        shared: the shared-column state (binary greedy steps only).
    """

    yi: torch.Tensor
    n_classes: int
    lam: float | np.ndarray
    prior: np.ndarray
    use_compile: bool
    y: torch.Tensor | None = None
    lda: LdaStats | None = None
    shared: SharedColumns | None = None

    @property
    def n(self) -> int:
        return int(self.yi.shape[0])


@dataclass
class RidgeSetup:
    """Ridge state: Gram matrix ``G [Du, Du]`` and ``c = X^T (y - ybar)`` ``[Du]`` of the
    standardised training columns (float64), the training mean ``ybar`` and ``lam = 1/C`` (a
    number, or ``[B]`` one per probe of the run)."""

    G: np.ndarray
    c: np.ndarray
    ybar: float
    lam: float | np.ndarray


@dataclass
class ChunkFit:
    """Fitted parameters of a chunk of ``Bc`` probes: ``W [Bc, K, k]`` and ``b [Bc, K]``
    (float64 torch, on the device), ``n_iter [Bc]`` and ``converged [Bc]`` (NumPy)."""

    W: torch.Tensor
    b: torch.Tensor
    n_iter: np.ndarray
    converged: np.ndarray


def ridge_setup(Xt: torch.Tensor, y: np.ndarray, lam: float | np.ndarray) -> RidgeSetup:
    """:class:`RidgeSetup` for ``Xt [Du, n]`` and targets ``y [n]``."""
    ybar = float(y.mean())
    yt = torch.as_tensor(y - ybar, dtype=_F64, device=Xt.device)
    return RidgeSetup(G=gram(Xt).cpu().numpy(), c=row_dot(Xt, yt).cpu().numpy(), ybar=ybar, lam=lam)


def logistic_setup(
    Xt: torch.Tensor,
    Xe: torch.Tensor | None,
    yi: np.ndarray,
    n_classes: int,
    lam: float | np.ndarray,
    *,
    use_compile: bool,
    k: int,
    shared_cols: np.ndarray | None,
    max_iter: int,
    tol: float,
    lda: Callable[[bool | str, torch.Tensor], LdaStats] | None = None,
) -> LogisticSetup:
    """:class:`LogisticSetup` for ``Xt [Du, n]``, class indices ``yi [n]``, probes of ``k``
    columns; ``shared_cols [k-1]`` (rows of ``Xt``) when every probe shares them. ``lda``:
    where the LDA moments come from (``lda(covariance, yi)``; default: :func:`lda_stats` of
    ``Xt``; the engine passes its prepared data's cache)."""
    yi_t = torch.as_tensor(yi, device=Xt.device)
    setup = LogisticSetup(
        yi=yi_t,
        n_classes=n_classes,
        lam=lam,
        prior=np.bincount(yi, minlength=n_classes) / len(yi),
        use_compile=use_compile,
    )
    if n_classes == 2:
        setup.y = yi_t.to(_F32)
        cov = False if shared_cols is not None else ("diag" if k == 1 else True)
        setup.lda = lda(cov, yi_t) if lda is not None else lda_stats(Xt, yi_t, covariance=cov)
    if shared_cols is not None:
        setup.shared = _shared_columns(Xt, Xe, shared_cols, setup, max_iter=max_iter, tol=tol)
    return setup


def _shared_columns(
    Xt: torch.Tensor,
    Xe: torch.Tensor | None,
    cols: np.ndarray,
    setup: LogisticSetup,
    *,
    max_iter: int,
    tol: float,
) -> SharedColumns:
    """:class:`SharedColumns` for the shared columns ``cols [s]`` (rows of ``Xt``)."""
    s = len(cols)
    dev = Xt.device
    idx = torch.as_tensor(cols, device=dev)
    S1 = torch.cat([Xt[idx], torch.ones((1, Xt.shape[1]), dtype=_F32, device=dev)])
    a, b = np.triu_indices(s + 1)
    Q = S1[torch.as_tensor(a, device=dev)] * S1[torch.as_tensor(b, device=dev)]
    XtS = S1[:s].contiguous()
    sub = LogisticSetup(
        yi=setup.yi,
        n_classes=2,
        lam=float(np.median(setup.lam)),  # a warm start only: one penalty for all probes
        prior=setup.prior,
        use_compile=setup.use_compile,
        y=setup.y,
        lda=lda_stats(XtS, setup.yi),
    )
    fit = fit_chunk(XtS, torch.arange(s, device=dev)[None, :], sub, max_iter=max_iter, tol=tol)
    start = np.zeros(s + 2)
    start[:s] = fit.W[0, 0].cpu().numpy()
    start[s + 1] = float(fit.b[0, 0])
    Se1 = None
    if Xe is not None:
        Se1 = torch.cat([Xe[idx], torch.ones((1, Xe.shape[1]), dtype=_F32, device=Xe.device)])
    return SharedColumns(S1=S1, Q=Q, start=start, Se1=Se1)


# ----------------------------------------------------------------------------- solvers


def fit_chunk(
    Xt: torch.Tensor,
    d: torch.Tensor,
    setup: LogisticSetup | RidgeSetup,
    *,
    max_iter: int,
    tol: float,
    lam: np.ndarray | None = None,
) -> ChunkFit:
    """Fit the probes on the columns ``d [Bc, k]`` (rows of ``Xt [Du, n]``), probe ``b`` with
    the penalty ``lam[b]`` (``lam [Bc]``; default: ``setup.lam`` for every probe)."""
    lam = np.array(
        np.broadcast_to(np.asarray(setup.lam if lam is None else lam, np.float64), len(d))
    )
    if isinstance(setup, RidgeSetup):
        return _fit_ridge(d, setup, lam)
    problem: _BinaryNewton | _MultinomialNewton
    if setup.n_classes == 2:
        problem = _BinaryNewton(Xt, d, setup, lam)
    else:
        problem = _MultinomialNewton(Xt, d, setup, lam)
    state = damped_newton(problem, problem.initial_state(), max_iter=max_iter, tol=tol)
    return problem.result(state)


def _fit_ridge(d: torch.Tensor, setup: RidgeSetup, lam: np.ndarray) -> ChunkFit:
    """Closed form from sub-blocks of the shared Gram matrix: ``w = (G_SS + lam I)^-1 c_S``
    (``lam [Bc]``)."""
    dn = d.cpu().numpy()
    Bc, k = dn.shape
    Gs = setup.G[dn[:, :, None], dn[:, None, :]] + lam[:, None, None] * np.eye(k)  # [Bc, k, k]
    w = torch.as_tensor(spd_solve(Gs, setup.c[dn]), device=d.device)  # [Bc, k]
    b = torch.full((Bc, 1), setup.ybar, dtype=_F64, device=d.device)
    return ChunkFit(w[:, None, :], b, np.zeros(Bc, dtype=np.int64), np.ones(Bc, dtype=bool))


class _BinaryNewton:
    """Binary logistic probes for :func:`damped_newton`: merit ``||grad||^2``; the gradient and
    Hessian come from one kernel pass (fused, shared-column or batched); ``lam [Bc]`` the
    penalty of each probe."""

    def __init__(self, Xt: torch.Tensor, d: torch.Tensor, setup: LogisticSetup, lam: np.ndarray):
        self.Xt, self.d, self.setup = Xt, d, setup
        self.dn = d.cpu().numpy()
        self.k = k = self.dn.shape[1]
        n = setup.n
        self.floor = (1e-6 * n) ** 2  # merit below which float32 sums are noise (error ~1e-5)
        self.lam = lam  # [Bc]
        pen = np.zeros((len(lam), k + 1, k + 1))
        ii = np.arange(k)
        pen[:, ii, ii] = lam[:, None]
        pen[:, k, k] = 1e-10 * n  # intercept unpenalised; a whisper keeps H invertible at s -> 0
        self.pen = pen  # [Bc, k+1, k+1]
        self.act = np.arange(len(lam))
        self.own = Xt[d[:, -1]] if setup.shared is not None else None  # [Bc, n] own columns

    def initial_state(self) -> NewtonState:
        Bc, k, n = len(self.dn), self.k, self.setup.n
        p1 = float(self.setup.prior[1])
        b0 = math.log(p1 / (1 - p1))
        prev = np.zeros((Bc, k + 1))
        prev[:, k] = b0
        # gradient at (w=0, b=b0) on standardised features: -n1 * mu1, and 0 for b
        merit0 = ((n * p1 * self.setup.lda.mu1[self.dn]) ** 2).sum(1)
        if self.setup.shared is not None:
            theta = np.tile(self.setup.shared.start, (Bc, 1))
        else:
            ridge = np.maximum(1e-3, self.lam / (n * p1 * (1 - p1)))
            theta = self.setup.lda.start(self.dn, b0, ridge)
        return NewtonState.start(theta, prev, merit0)

    def merit(self, theta: np.ndarray, act: np.ndarray) -> np.ndarray:
        Xt, d, setup, k = self.Xt, self.d, self.setup, self.k
        sub = None if len(act) == len(self.dn) else torch.as_tensor(act, device=Xt.device)
        th_t = torch.as_tensor(theta, dtype=_F32).to(Xt.device)
        if setup.shared is not None:
            Xc = self.own if sub is None else self.own[sub]
            sums = shared_pass(setup.shared.S1, setup.shared.Q, Xc, th_t, setup.y)
            g, H = shared_unpack(sums, k - 1)
        else:
            da = d if sub is None else d[sub]
            if setup.use_compile and fused_worth(binary_pass_sums, Xt, da):
                stats = call_kernel(binary_pass_sums, True, Xt, da, th_t, setup.y)
            else:
                stats = eager_pass(Xt, da, th_t, setup.y)
            g, H = unpack_binary(stats.cpu().numpy().astype(np.float64), k)
        g[:, :k] += self.lam[act][:, None] * theta[:, :k]
        self.g, self.H, self.act = g, H, act
        return (g * g).sum(1)

    def rejected(self, merit: np.ndarray, merit_prev: np.ndarray) -> np.ndarray:
        return (merit > merit_prev) & (merit > self.floor)

    def step(self, good: np.ndarray) -> np.ndarray:
        return -spd_solve(self.H[good] + self.pen[self.act[good]], self.g[good])

    def retain(self, keep: np.ndarray) -> None:
        pass  # the columns of the active probes are gathered at each pass

    def result(self, state: NewtonState) -> ChunkFit:
        th = torch.as_tensor(state.theta, device=self.Xt.device)
        k = self.k
        return ChunkFit(th[:, None, :k], th[:, k : k + 1], state.n_iter, state.done)


class _MultinomialNewton:
    """Multinomial logistic probes for :func:`damped_newton`: merit = the objective; the last
    class's intercept is fixed at 0 (the likelihood is invariant to a common intercept shift
    and intercepts are not penalised, so this loses nothing); ``lam [Bc]`` the penalty of
    each probe."""

    def __init__(self, Xt: torch.Tensor, d: torch.Tensor, setup: LogisticSetup, lam: np.ndarray):
        dev = Xt.device
        self.setup, self.dev = setup, dev
        Bc, self.k = d.shape
        k, K, n = self.k, setup.n_classes, Xt.shape[1]
        self.p = p = k + 1
        self.Y = torch.nn.functional.one_hot(setup.yi, K).T.to(_F32)  # [K, n]
        ones = torch.ones((Bc, 1, n), dtype=_F32, device=dev)
        self.Xa = torch.cat([Xt[d], ones], dim=1)  # [Ba, p, n] of the active probes
        self.P = P = K * p  # full parameter count; index c*p + j (j = k is the intercept)
        self.free = torch.as_tensor([i for i in range(P) if i != (K - 1) * p + k], device=dev)
        mask = torch.zeros(P, dtype=_F64, device=dev)  # 1 on the penalised weights
        for c in range(K):
            mask[c * p : c * p + k] = 1.0
        self.lam_t = torch.as_tensor(lam, dtype=_F64, device=dev)  # [Ba] of the active probes
        self.pen_unit = torch.diag(mask[self.free])  # scaled by each probe's lam in step()
        self.jitter = torch.diag((mask[self.free] == 0).to(_F64)) * 1e-10 * n

    def initial_state(self) -> NewtonState:
        Bc, K = self.Xa.shape[0], self.setup.n_classes
        theta = np.zeros((Bc, K, self.p))
        logp = np.log(np.maximum(self.setup.prior, 1e-12))
        theta[:, :, self.k] = logp - logp[-1]
        return NewtonState.start(theta, theta.copy(), np.full(Bc, math.inf))

    def merit(self, theta: np.ndarray, act: np.ndarray) -> np.ndarray:
        k, lam = self.k, self.lam_t
        self.th = th = torch.as_tensor(theta, device=self.dev)
        self.Z = Z = torch.bmm(th.to(_F32), self.Xa)  # [Ba, K, n]
        self.lse = lse = torch.logsumexp(Z, dim=1)
        ll = (lse - (Z * self.Y).sum(1)).sum(1, dtype=_F64)
        return (ll + 0.5 * lam * (th[:, :, :k] ** 2).sum((1, 2))).cpu().numpy()

    def rejected(self, merit: np.ndarray, merit_prev: np.ndarray) -> np.ndarray:
        return merit > merit_prev + 1e-9 * np.maximum(np.abs(merit_prev), 1.0)

    def step(self, good: np.ndarray) -> np.ndarray:
        k, p, K, P = self.k, self.p, self.setup.n_classes, self.P
        if good.all():
            Xb, Pr, thg = self.Xa, torch.exp(self.Z - self.lse[:, None, :]), self.th
            lam = self.lam_t
        else:
            gi = torch.as_tensor(good, device=self.dev)
            Xb, thg, lam = self.Xa[gi], self.th[gi], self.lam_t[gi]
            Pr = torch.exp(self.Z[gi] - self.lse[gi][:, None, :])
        R = Pr - self.Y  # [Bg, K, n]
        g = torch.bmm(R, Xb.transpose(1, 2)).to(_F64)  # [Bg, K, p]
        g[:, :, :k] += lam[:, None, None] * thg[:, :, :k]
        Bg = len(thg)
        H = torch.empty((Bg, K, p, K, p), dtype=_F64, device=self.dev)
        for c in range(K):
            for e in range(c, K):
                a = Pr[:, c] * ((1.0 if c == e else 0.0) - Pr[:, e])  # [Bg, n]
                blk = torch.bmm(Xb * a[:, None, :], Xb.transpose(1, 2)).to(_F64)
                H[:, c, :, e, :] = blk
                if e != c:
                    H[:, e, :, c, :] = blk.transpose(1, 2)
        pen = lam[:, None, None] * self.pen_unit
        H = H.reshape(Bg, P, P)[:, self.free][:, :, self.free] + pen + self.jitter
        gf = g.reshape(Bg, P)[:, self.free]
        st = torch.zeros((Bg, P), dtype=_F64, device=self.dev)
        st[:, self.free] = -solve_batched(H, gf)
        return st.reshape(Bg, K, p).cpu().numpy()

    def retain(self, keep: np.ndarray) -> None:
        kt = torch.as_tensor(keep, device=self.dev)
        self.Xa, self.lam_t = self.Xa[kt], self.lam_t[kt]

    def result(self, state: NewtonState) -> ChunkFit:
        th = torch.as_tensor(state.theta, device=self.dev)
        return ChunkFit(th[:, :, : self.k], th[:, :, self.k], state.n_iter, state.done)
