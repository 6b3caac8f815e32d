"""Matrix-free truncated Newton for one wide logistic probe over a grid of ``C``.

:func:`fit_c_grid` fits ``G`` penalties of the same probe (binary or multinomial, the
objective of :mod:`probekit.probes`: ``sum logloss + lam/2 ||W||^2``, ``lam = 1/C``,
intercepts unpenalised) at once, for :func:`probekit.probes.select_C` on probes too wide for
the engine's dense Newton (which costs ``2 n p^2`` per pass and probe):

* **eigenbasis**: the standardised features ``X [n, k]`` are rotated once onto the
  eigenvectors of their Gram matrix, ``Z = X V`` (``Z^T Z`` diagonal; all ``k`` of them,
  or when ``k > n`` the ``r <= n`` outside the null space; ``w = V a``, and ``||w|| =
  ||a||``, so the objective is the same in ``a``). There the
  Hessian is nearly diagonal (exactly so for constant curvature weights), which makes its
  diagonal a strong preconditioner, and the first Newton step from the prior-only model is
  closed form: the start;
* **truncated Newton**: each Newton step solves ``H d = -g`` by preconditioned conjugate
  gradients with Hessian-vector products ``A^T (w * (A v))`` (``O(n r)`` each, ``A = [Z, 1]``),
  all ``G`` penalties (and ``K`` classes) as the columns of one matrix product, each with its
  own CG scalars, forcing term and backtracking (Armijo) line search; the multinomial
  conjugate directions stay in the classes-sum-zero subspace (the softmax's blind
  direction, curved by the penalty only, is projected out);
* **loose tolerance**: a penalty stops once its Newton decrement ``g^T H^-1 g / 2`` (the
  predicted objective gap) is below ``tol`` per example: selection needs the validation
  metric and loss, not 1e-8 coefficients.

Float32 matrix products on the given device; sums of the objective in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import native
from .standardize import row_blocks

__all__ = ["ONE_COPY_ELEMS", "GridFit", "fit_c_grid"]

_F32 = torch.float32
_F64 = torch.float64

#: bases of at most this many elements keep one copy (``AT``; ``A`` its transposed view):
#: 800 x 385 float32 (1.2 MB) then fits a 2 MB L2 cache where the two copies did not, and a
#: CG iteration's two products took 39 instead of 77 us; larger ones keep both for the torch
#: loop (the view's products were up to 1.6x slower from 2,000 x 385 on); where the C loop
#: runs (:func:`_native_loop`: it reads ``AT`` only) every basis keeps one copy
ONE_COPY_ELEMS = 2**19

#: fits on the CPU run their Newton loop in C (:func:`.native.newton_logistic`) wherever the
#: kernels are built. Below ~2^23 multiply-adds per CG product the torch loop's cost is its
#: per-operation overhead (CoLA 800 x 385, 10 C values: the C loop 2x faster); above it, on
#: the Intel Xeon VM of 2026-12-01, MKL's products were as fast (binary 5,000 x 385 and
#: 12,500 x 769) or 1.1x faster (three classes, 2,000 x 385), and on the AMD EPYC (Zen 4) VM
#: of 2026-12-02, whose MKL runs these skinny products at 6-30 GFLOP/s, the C loop was
#: 1.6-3x faster at every size measured (binary 5,000 x 384: 2.0x; 10,000 x 768: 3.0x;
#: 12,500 x 768: 2.3x; three classes 2,000 x 384: 2.1x; 10,000 x 384: 1.6x).
#: This flag is a switch for the benchmark's before/after and the parity tests
_NATIVE_CG = True


def _native_loop(device: torch.device) -> bool:
    """Whether a fit's Newton loop runs in C: on the CPU wherever the kernels are built,
    whatever the size (the measurements above :data:`_NATIVE_CG`)."""
    return _NATIVE_CG and device.type == "cpu" and native.available()


@dataclass(frozen=True)
class GridFit:
    """Parameters of one probe at ``G`` penalties, in standardised units.

    Attributes:
        coef: ``[G, K', k]`` float64 (``K' = 1`` for binary, else ``K``).
        intercept: ``[G, K']`` float64.
        n_newton: ``[G]`` Newton steps taken.
        n_cg: conjugate-gradient iterations in all (each one batched over the active ``C``).
        converged: ``[G]`` bool.
        rank: the numerical rank of the features (eigenvalues of their Gram matrix above
            1e-6 of the largest; informational: every direction is fitted when ``k <= n``).
        basis: ``[k, k]`` float64 the eigenvectors of ``X^T X``, for a refit on similar
            features (``fit_c_grid(..., basis=)``); None when ``k > n`` (the basis came from
            ``X X^T``).
    """

    coef: np.ndarray
    intercept: np.ndarray
    n_newton: np.ndarray
    n_cg: int
    converged: np.ndarray
    rank: int
    basis: torch.Tensor | None


@dataclass
class _Basis:
    """``A [n, r+1]`` = ``[Z, 1]`` float32 (``Z`` the rotated, centred features) and its
    transpose ``AT [r+1, n]`` (contiguous: the products of both directions then run on
    row-major operands, 2-4x faster in MKL than a transposed view for a few columns; up to
    :data:`ONE_COPY_ELEMS` elements, or for the C loop at any size, ``A`` is ``AT``'s
    transposed view instead),
    ``eig [r]`` the eigenvalues ``Z^T Z`` and ``V [k, r]`` float64 (``w = V a``; ``r = k``
    when ``k <= n``); ``full`` ``[k, k]`` float64 all the eigenvectors when ``k <= n``, else
    None; ``rank`` the numerical rank (eigenvalues above 1e-6 of the largest)."""

    A: torch.Tensor
    AT: torch.Tensor
    eig: torch.Tensor
    V: torch.Tensor
    full: torch.Tensor | None
    rank: int


def _basis(X: torch.Tensor, V: torch.Tensor | None = None, one_copy: bool = False) -> _Basis:
    """The eigenbasis of centred ``X [n, k]`` (float32). When ``k <= n``: every eigenvector
    of ``X^T X`` (an orthogonal rotation: the objective in it is exactly the original one;
    dropping the directions of small eigenvalues would fix their weights at 0, which a weak
    penalty does not: at C = 100, a 1-layer BERT-768 layer has 500 of its 768 eigenvalues
    below 1e-6 of the largest, and the refit without them scored 0.9904 against
    scikit-learn's 0.9952). When ``k > n``: the eigenvectors of ``X X^T`` (float64) with
    eigenvalues above ``1e-10`` of the largest (the others span the null space, where the
    optimum's weights are 0). With ``V [k, k]`` (orthogonal, float64), that rotation instead
    (``eig`` then the diagonal of ``Z^T Z``): no eigendecomposition. ``one_copy``: ``A`` a
    view of ``AT`` at any size (the native loop reads ``AT`` only)."""
    n, k = X.shape
    full = V
    if V is not None or k <= n:  # AT = [Z, 1]^T built in place: Z^T = V^T X^T, no copies
        given = V is not None
        if not given:
            lam, full = torch.linalg.eigh(X.T @ X)
            V = full
        AT = torch.empty((V.shape[1] + 1, n), dtype=_F32, device=X.device)
        torch.matmul(V.to(_F32).T, X.T, out=AT[:-1])
        AT[-1] = 1.0
        if given:  # the diagonal of Z^T Z (a norm: no [k, n] temporary of squares)
            lam = torch.linalg.vector_norm(AT[:-1], dim=1).square()
    else:
        X64 = X.to(_F64)
        lam, U = torch.linalg.eigh(X64 @ X64.T)
        keep = lam > 1e-10 * lam[-1].clamp(min=1e-300)
        lam, U = lam[keep], U[:, keep]
        V = (X64.T @ U) / lam.sqrt()
        Z = (U * lam.sqrt()).to(_F32)
        ones = torch.ones((n, 1), dtype=_F32, device=X.device)
        AT = torch.cat([Z, ones], 1).T.contiguous()
    lam, V = lam.to(_F64).clamp(min=0.0), V.to(_F64)  # (float32 round-off: tiny negatives)
    full = None if full is None else full.to(_F64)
    rank = int((lam > 1e-6 * lam.max().clamp(min=1e-30)).sum()) if lam.numel() else 0
    A = AT.T  # (a view: one copy stays in cache)
    if not one_copy and A.numel() > ONE_COPY_ELEMS:
        A = A.contiguous()
    return _Basis(A=A, AT=AT, eig=lam, V=V, full=full, rank=rank)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[Ga]`` the inner products of ``a, b [Ga, K', r+1]`` per penalty."""
    return torch.linalg.vecdot(a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1))


class _Logistic:
    """The objective at ``G`` penalties in the eigenbasis. Parameters ``T [G, K', r+1]``
    (column ``r`` the intercepts); ``K' = 1`` (binary: the logit of class 1 against a fixed
    zero) or ``K`` (multinomial). Penalty-major, so that every product is ``[Ga K', r+1] @
    AT`` or ``[Ga K', n] @ A``."""

    def __init__(self, basis: _Basis, yi: torch.Tensor, n_classes: int, lam: torch.Tensor):
        self.A, self.AT = basis.A, basis.AT
        self.n, self.r1 = basis.A.shape
        self.binary = n_classes == 2
        self.Kf = 1 if self.binary else n_classes
        Y = torch.nn.functional.one_hot(yi, n_classes).to(_F32).T
        self.Y = (Y[1:] if self.binary else Y).contiguous()  # [K', n] the free classes
        self.lam = lam  # [G] float32
        mask = torch.ones((1, 1, self.r1), dtype=_F32, device=self.A.device)
        mask[..., -1] = 0.0
        self.mask = mask  # penalised columns

    def pen(self, lam: torch.Tensor) -> torch.Tensor:
        """``[Ga, 1, r+1]`` the penalty of each parameter (0 on the intercepts)."""
        return self.mask * lam[:, None, None]

    def logits(self, T: torch.Tensor) -> torch.Tensor:
        """``[Ga, K', n]`` for ``T [Ga, K', r+1]``."""
        Ga, Kf, r1 = T.shape
        return (T.reshape(Ga * Kf, r1) @ self.AT).reshape(Ga, Kf, self.n)

    def probs(self, L: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities of the free classes ``[Ga, K', n]`` and the log-loss sums ``[Ga]``
        (float64) for logits ``L``."""
        if self.binary:
            P = torch.sigmoid(L)
            ll = torch.nn.functional.softplus(L) - L * self.Y
        else:
            lse = torch.logsumexp(L, dim=1, keepdim=True)
            P = torch.exp(L - lse)
            ll = lse - (L * self.Y).sum(1, keepdim=True)
        return P, ll.sum((1, 2), dtype=_F64)

    def penalty(self, T: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """``[Ga]`` float64 ``lam / 2 ||W||^2`` (the intercepts unpenalised)."""
        return 0.5 * lam.to(_F64) * (T[..., :-1] ** 2).sum((1, 2), dtype=_F64)

    def objective(self, T: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """``[Ga]`` float64 objective values."""
        _, ll = self.probs(self.logits(T))
        return ll + self.penalty(T, lam)

    def grad(self, T: torch.Tensor, P: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """``[Ga, K', r+1]`` gradient at ``T`` with free-class probabilities ``P``."""
        R = (P - self.Y).reshape(-1, self.n)
        return (R @ self.A).reshape(T.shape) + self.pen(lam) * T

    def curvature(self, P: torch.Tensor) -> torch.Tensor:
        """What :meth:`hvp` needs at probabilities ``P``: the weights ``P (1 - P)``
        (binary) or ``P`` itself (multinomial), ``[Ga, K', n]``."""
        return P * (1 - P) if self.binary else P

    def hvp(self, Wc: torch.Tensor, v: torch.Tensor, pen: torch.Tensor) -> torch.Tensor:
        """Hessian-vector products ``[Ga, K' (r+1)]`` of flat ``v [Ga, K' (r+1)]`` with
        :meth:`curvature` ``Wc`` and the penalties ``pen`` (:meth:`pen` expanded over the
        ``K'`` classes and flattened like ``v``)."""
        Ga = v.shape[0]
        U = v.reshape(Ga * self.Kf, self.r1) @ self.AT  # [Ga K', n]
        if self.binary:
            R = U.mul_(Wc.reshape(U.shape))
        else:
            PU = U.reshape(Wc.shape).mul_(Wc)
            R = (PU - Wc * PU.sum(1, keepdim=True)).reshape(U.shape)
        return torch.addcmul((R @ self.A).reshape(Ga, -1), pen, v)

    def project(self, v: torch.Tensor) -> torch.Tensor:
        """Flat ``v [Ga, K' (r+1)]`` without its mean over the classes (multinomial): the
        softmax is blind to a shift common to all classes, so the data part of the Hessian is
        0 along it and only the penalty (``lam``, small for large ``C``) curves it; the
        gradient never leaves the classes-sum-zero subspace, and with this projection
        neither do the conjugate directions (binary: ``v`` as it is)."""
        if self.binary:
            return v
        V = v.reshape(v.shape[0], self.Kf, self.r1)
        return (V - V.mean(1, keepdim=True)).reshape(v.shape)

    def diag(self, P: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """``[Ga, K', r+1]`` the Hessian's diagonal (the preconditioner); the squares of
        ``A`` taken in row blocks (no whole ``[n, r+1]`` copy)."""
        Ga, Kf = P.shape[0], P.shape[1]
        W = (P * (1 - P)).reshape(Ga * Kf, self.n)
        if P.device.type != "cpu":  # one product (a loop of blocks: a launch or two each)
            d = W @ (self.A * self.A)
        else:
            d = torch.zeros((Ga * Kf, self.r1), dtype=_F32, device=P.device)
            for i, j in row_blocks(self.n, self.r1):
                blk = self.A[i:j]
                d.addmm_(W[:, i:j], blk * blk)
        return d.reshape(Ga, Kf, self.r1) + self.pen(lam) + 1e-6 * self.n


def _start(prob: _Logistic, basis: _Basis, prior: np.ndarray) -> torch.Tensor:
    """``[G, K', r+1]``: one Newton step from the prior-only model (weights 0, intercepts the
    log prior), closed form in the eigenbasis (the Hessian there is ``Z^T Z`` (x) the
    multinomial covariance of the prior, ``+ lam``, block-diagonal per eigenvector)."""
    dev, G, Kf = prob.A.device, len(prob.lam), prob.Kf
    logp = np.log(np.maximum(prior, 1e-12))
    b0 = logp[1:] - logp[0] if prob.binary else logp - logp.mean()
    pi = prior[1:] if prob.binary else prior
    cov = torch.as_tensor(np.diag(pi) - np.outer(pi, pi), dtype=_F64, device=dev)  # [K', K']
    resid = prob.Y - torch.as_tensor(pi, dtype=_F32, device=dev)[:, None]  # [K', n]
    rhs = (resid @ prob.A[:, :-1]).T.to(_F64)  # [r, K']
    lam = prob.lam.to(_F64)
    eye = torch.eye(Kf, dtype=_F64, device=dev)
    H = basis.eig[None, :, None, None] * cov + lam[:, None, None, None] * eye  # [G, r, K', K']
    a = torch.linalg.solve(H, rhs[None].expand(G, -1, -1).unsqueeze(-1))[..., 0]  # [G, r, K']
    T = torch.empty((G, Kf, prob.r1), dtype=_F32, device=dev)
    T[..., :-1] = a.permute(0, 2, 1).to(_F32)
    T[..., -1] = torch.as_tensor(b0, dtype=_F32, device=dev)
    return T


def _pcg(prob, P, g, lam, forcing, max_cg):
    """Preconditioned CG on ``H d = -g`` for every active penalty at once (``g [Ga, K', r+1]``),
    each stopping once its residual is below ``forcing [Ga]`` times its gradient's norm (the
    Hessian-vector products then run on the penalties still going only). Returns
    ``(d, iterations)``. The state is kept flat, ``[Ga, K' (r+1)]`` (one row per penalty: each
    inner product one reduction), and each iteration is about 18 operations: with a few
    penalties left, the iterations' cost is the operations' overhead, not their arithmetic."""
    Ga = g.shape[0]
    flat = (Ga, -1)
    target = forcing**2 * (g * g).sum((1, 2))
    Wc = prob.curvature(P)
    Minv = (1.0 / prob.diag(P, lam)).reshape(flat)
    pen = prob.pen(lam).expand(g.shape).reshape(flat)
    d = torch.zeros_like(g).reshape(flat)
    dl = d  # the live penalties' solutions (d itself until one stops)
    live = None  # (all)
    # residuals, conjugate directions: the live penalties'. (Multinomial: the gradient's
    # component along the classes' common shift is float32 noise (the probabilities sum
    # to 1 only to rounding), and so is what rounding in the products adds to the residual
    # later; left in it, it made res . z, whose z is projected, go negative near the float32
    # floor and the CG diverge: the residual is projected at the start and at every update.)
    res = prob.project(g.reshape(flat).neg())
    z = prob.project(Minv * res)
    p = z
    rz = (res * z).sum(1)
    it = 0
    for it in range(1, max_cg + 1):
        Hp = prob.hvp(Wc, p, pen)
        curv = (p * Hp).sum(1)
        pos = curv > 0  # (not so at the float32 floor: that penalty's CG ends there)
        alpha = torch.where(pos, rz / curv, 0.0)[:, None]
        dl.addcmul_(alpha, p)
        res.addcmul_(alpha, Hp, value=-1.0)
        res = prob.project(res)  # (rounding in Hp leaves the subspace again: back into it)
        go = ((res * res).sum(1) > target) & pos
        n_go = int(go.sum())  # (one host read per iteration)
        if n_go < len(rz):
            if live is None:
                live = torch.arange(Ga, device=g.device)
            if dl is not d:
                d[live] = dl
            if n_go == 0:
                return d.reshape(g.shape), it
            live, dl, res, p, rz, target = live[go], dl[go], res[go], p[go], rz[go], target[go]
            Wc, pen, Minv = Wc[go], pen[go], Minv[go]
        z = prob.project(Minv * res)
        rz_new = (res * z).sum(1)
        p = torch.addcmul(z, (rz_new / rz.clamp(min=1e-30))[:, None], p)
        if not prob.binary:  # res . z <= 0 (rounding at the floor): that CG ends (p = 0)
            p = torch.where((rz_new > 0)[:, None], p, 0.0)
        rz = rz_new
    if dl is not d:
        d[live] = dl
    return d.reshape(g.shape), it


def fit_c_grid(
    X: torch.Tensor,
    yi: np.ndarray,
    n_classes: int,
    C: np.ndarray,
    *,
    tol: float = 1e-6,
    max_newton: int = 50,
    max_cg: int = 100,
    basis: torch.Tensor | None = None,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> GridFit:
    """Fit one logistic probe at each ``C`` of ``C [G]``.

    Args:
        X: ``[n, k]`` standardised features (float32; centred, as standardisation leaves
            them), on the device to compute on.
        yi: ``[n]`` class indices in ``0..n_classes-1``.
        n_classes: ``K >= 2``.
        C: ``[G]`` positive penalties (inverse strengths).
        tol: a penalty stops once its Newton decrement is below ``tol * n`` (the predicted
            gap of the mean training log-loss to the optimum is then about ``tol``).
        max_newton, max_cg: caps on Newton steps and on CG iterations per step.
        basis: ``[k, k]`` an orthogonal rotation to work in instead of the eigenbasis of
            ``X`` (the :attr:`GridFit.basis` of a fit on similar features, e.g. a validation
            split's fitting part: its Gram matrix is then nearly diagonal too, and one
            eigendecomposition serves both fits).
        start: ``(coef [G, K', k], intercept [G, K'])`` a starting point in these
            standardised units (e.g. the solution on a split's fitting part, converted),
            taken for each C where its objective is below the closed-form start's.

    Returns:
        :class:`GridFit` (coefficients in standardised units, as the engine's).
    """
    dev = X.device
    n = X.shape[0]
    native_loop = _native_loop(dev)
    basis = _basis(X, basis, one_copy=native_loop)
    lam = torch.as_tensor(1.0 / np.asarray(C, dtype=np.float64), dtype=_F32, device=dev)
    G = len(lam)
    yi_t = torch.as_tensor(yi, dtype=torch.int64, device=dev)
    prob = _Logistic(basis, yi_t, n_classes, lam)
    T = _start(prob, basis, np.bincount(yi, minlength=n_classes) / n)
    g0 = None
    if start is not None:  # the given point where its objective is the lower
        w0 = torch.as_tensor(start[0], dtype=_F64, device=dev).reshape(G * prob.Kf, -1)
        Tw = torch.empty_like(T)
        Tw[..., :-1] = (w0 @ basis.V).reshape(G, prob.Kf, -1).to(_F32)
        Tw[..., -1] = torch.as_tensor(start[1], dtype=_F32, device=dev)
        # (multinomial: into the classes-sum-zero subspace, where the CG keeps it; the
        # softmax is blind to a common shift and the penalty is lowest without one)
        Tw = prob.project(Tw.reshape(G, -1)).reshape(Tw.shape)
        P0, ll0 = prob.probs(prob.logits(T))
        better = prob.objective(Tw, lam) < ll0 + prob.penalty(T, lam)
        # the forcing terms stay relative to the closed-form start's gradient, so that a
        # start near the optimum is not solved as loosely as a far one
        g = prob.grad(T, P0, lam)
        g0 = _dot(g, g).sqrt().clamp(min=1e-30)
        T = torch.where(better[:, None, None], Tw, T)
    T, n_newton, converged, n_cg = _newton(prob, T, lam, tol, max_newton, max_cg, g0, native_loop)
    Wt = T[..., :-1].to(_F64).reshape(G * prob.Kf, prob.r1 - 1) @ basis.V.T  # [G K', k]
    coef = Wt.reshape(G, prob.Kf, X.shape[1]).cpu().numpy()
    return GridFit(
        coef=coef,
        intercept=T[..., -1].to(_F64).cpu().numpy(),
        n_newton=n_newton,
        n_cg=n_cg,
        converged=converged,
        rank=basis.rank,
        basis=basis.full,
    )


def _newton(prob, T, lam, tol, max_newton, max_cg, g0=None, in_c=False):
    """Truncated Newton from ``T [Ga, K', r+1]`` at the penalties ``lam [Ga]``: ``(T,
    n_newton [Ga], converged [Ga], CG iterations)``, the returned ``T`` the solution (the
    torch loop updates the given one in place, the C loop a copy). The forcing terms are
    relative to the gradient norms ``g0 [Ga]`` (default: those at ``T``). With ``in_c``
    (:func:`_native_loop`), in C (:func:`.native.newton_logistic`) unless it declines."""
    if in_c:
        out = native.newton_logistic(prob.AT, prob.Y, lam, T, tol, max_newton, max_cg, g0)
        if out is not None:
            return out
    dev, n, Ga = T.device, prob.n, T.shape[0]
    n_newton = np.zeros(Ga, dtype=np.int64)
    converged = np.zeros(Ga, dtype=bool)
    done = np.zeros(Ga, dtype=bool)
    n_cg = 0
    for _ in range(max_newton):
        act = np.flatnonzero(~done)
        if len(act) == 0:
            break
        ia = torch.as_tensor(act, device=dev)
        Ta, la = T[ia], lam[ia]
        P, ll = prob.probs(prob.logits(Ta))
        f = ll + prob.penalty(Ta, la)
        g = prob.grad(Ta, P, la)
        gn = _dot(g, g).sqrt()
        if g0 is None:
            g0 = gn.clamp(min=1e-30)
        forcing = (gn / g0[ia]).sqrt().clamp(min=1e-3, max=0.5)  # Eisenstat-Walker-like
        d, it = _pcg(prob, P, g, la, forcing, max_cg)
        n_cg += it
        n_newton[act] += 1
        slope = (g * d).sum((1, 2), dtype=_F64)  # -d^T H d: the Newton decrement, negated
        t = _line_search(prob, Ta, d, f, slope, la)
        step = torch.where((t > 0)[:, None, None], t.to(_F32)[:, None, None] * d, 0.0)
        T[ia] = Ta + step  # (t = 0: no step, even where d is not finite)
        # below tol per example, or below the float32 resolution of the objective
        small = (-slope / 2 <= torch.clamp(1e-6 * f.abs(), min=tol * n)).cpu().numpy()
        converged[act[small]] = True
        done[act[small | (t == 0).cpu().numpy()]] = True
    return T, n_newton, converged, n_cg


def _line_search(prob, T, d, f, slope, lam, max_halvings: int = 20) -> torch.Tensor:
    """Armijo backtracking from ``T`` along ``d`` per penalty: ``[Ga]`` float64 step sizes
    (0 where no step of at least ``2^-max_halvings`` decreases the objective)."""
    Ga = T.shape[0]
    t = torch.ones(Ga, dtype=_F64, device=T.device)
    todo = torch.ones(Ga, dtype=torch.bool, device=T.device)
    for _ in range(max_halvings):
        it = torch.nonzero(todo)[:, 0]
        Tt = T[it] + t[it].to(_F32)[:, None, None] * d[it]
        ft = prob.objective(Tt, lam[it])
        ok = ft <= f[it] + 1e-4 * t[it] * slope[it] + 1e-6 * f[it].abs()  # (float32 noise)
        todo[it[ok]] = False
        if not bool(todo.any()):
            return t
        t[it[~ok]] *= 0.5
    return torch.where(todo, torch.zeros_like(t), t)
