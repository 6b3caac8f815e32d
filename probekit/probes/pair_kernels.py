"""Eager CPU kernels of pair probes: a Newton pass and an evaluation of ``B`` binary logistic
probes on two columns each, with torch operations only (no compiler of any kind).

Where neither the native kernels (:mod:`.native`, which need a C compiler once per machine)
nor ``torch.compile`` serve, a pairs scan runs these. The probes are taken in groups that
share their first column ``x0`` (a scan over all pairs of a layer is such groups, one per
column): within a group every sum that involves only ``x0`` or the intercept is a
matrix-vector product with one ``[n]`` vector (or a row sum), the predictor is formed in
place, and only the sums with the second column ``x1`` are row-wise products. One tile is
~15 torch operations and no batched matrix-vector product (MKL's ``bmm`` of
``[B, 2, n] @ [B, n, 1]`` costs ~10x a multiply and a row sum at these shapes). Probes whose
first column fewer than :data:`MIN_GROUP` probes share are taken together, their first
columns gathered, by the same code. The tiles of probes run on :func:`.tiling.threaded`'s
worker threads.

Both kernels return exactly the layouts of :func:`.kernels.binary_pass_sums` and
:func:`.kernels.binary_eval` (the same sums, float32 per tile, the tiles added in float64 by
:func:`.tiling.tiled`), for the probes in the order given.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import torch

from . import tiling

__all__ = ["MIN_GROUP", "TILE_ELEMS", "TILE_N", "pair_eval", "pair_pass"]

#: tiles of at most TILE_ELEMS probe-examples, TILE_N examples wide: 4x the other eager
#: kernels' (:mod:`.tiling`), as these reuse their scratch buffers (no fresh memory per
#: operation) and so gain more from paying the ~15 operations' fixed costs less often
#: (all pairs of 384, 10,000 examples, alternated five times in one process: 15% faster
#: than 2^17 x 2,048; 2^20 and more slower)
TILE_ELEMS = 2**19
TILE_N = 4096

#: a first column shared by fewer probes than this is gathered with the other small groups
#: (a tile of a few probes would pay the ~15 operations' fixed cost for little work)
MIN_GROUP = 32


def pair_pass(Xt: torch.Tensor, d: torch.Tensor, theta: torch.Tensor, y: torch.Tensor):
    """:func:`.kernels.binary_pass_sums` for ``k = 2``, eagerly on the CPU.

    Args:
        Xt: ``[Du, n]`` standardised training features (float32), one row per column.
        d: ``[B, 2]`` row indices into ``Xt``.
        theta: ``[B, 3]`` float32 parameters (the two weights, then the intercept).
        y: ``[n]`` float32 labels in {0, 1}.

    Returns:
        ``[B, 9]`` float32: the gradient (3), then the Hessian's upper triangle row by row.
    """
    return _grouped(_pass_tile, 9, Xt, d, theta, y)


def pair_eval(Xe: torch.Tensor, d: torch.Tensor, theta: torch.Tensor, ye: torch.Tensor):
    """:func:`.kernels.binary_eval` for ``k = 2``, eagerly on the CPU: ``[B, 3]`` = (summed
    log-loss, true positives, predicted positives) on ``Xe [Du, m]`` and ``ye [m]``."""
    return _grouped(_eval_tile, 3, Xe, d, theta, ye)


class _Scratch:
    """Float32 buffers that every tile of one call reuses (a fresh ``[Bt, nc]`` tensor per
    operation costs as much as the operation: this VM maps and faults it in afresh)."""

    def __init__(self) -> None:
        self._flat: dict[int, torch.Tensor] = {}

    def get(self, slot: int, rows: int, cols: int) -> torch.Tensor:
        """A contiguous ``[rows, cols]`` view of buffer ``slot`` (grown when too small)."""
        size = rows * cols
        buf = self._flat.get(slot)
        if buf is None or buf.numel() < size:
            buf = self._flat[slot] = torch.empty(size, dtype=torch.float32)
        return buf[:size].view(rows, cols)


def _predictor(x0, x1, th, out: torch.Tensor) -> torch.Tensor:
    """``out [Bt, nc]`` the linear predictors (an out-of-place ``addcmul`` broadcasting three
    inputs costs ~5x these three operations)."""
    return torch.mul(th[:, 0:1], x0, out=out).add_(th[:, 2:3]).addcmul_(th[:, 1:2], x1)


def _pass_tile(x0, x1, th: torch.Tensor, y: torch.Tensor, ws: _Scratch) -> torch.Tensor:
    """The 9 sums of one tile: ``x0 [nc]`` (shared) or ``[Bt, nc]``, ``x1 [Bt, nc]``.

    The residuals ``r = p - y``, the curvatures times the second column ``w x1`` and the
    curvatures ``w = p (1 - p)`` lie stacked in one buffer ``S [3, Bt, nc]``, so that their
    row sums, their dots with ``x0`` and the dots of ``r`` and ``w x1`` with ``x1`` are one
    operation each (8 sums in 4 operations where ``x0`` is shared, 5 where it is gathered;
    and one more for ``w . x0^2``). The products with the columns are formed in ``S`` itself
    once the sums that need it as it was are taken: a tile with a shared ``x0`` (nearly all
    of an all-pairs scan) touches 3 scratch buffers where a copy for the products made it 5
    (two workers' tiles then crowd the shared L3 cache less: the eager scan of all pairs of
    384 ~14% faster, ``benchmarks/README.md``); a gathered one adds a ``[2, Bt, nc]`` buffer
    for the products with ``x1`` (and its gathered columns)."""
    Bt, nc = x1.shape
    S = ws.get(0, 3 * Bt, nc).view(3, Bt, nc)
    r, wx, w = S[0], S[1], S[2]
    p = _predictor(x0, x1, th, w).sigmoid_()
    torch.sub(p, y, out=r)
    w.addcmul_(p, p, value=-1.0)  # p (1 - p), in place
    torch.mul(w, x1, out=wx)
    sums = S.sum(2)  # r . 1, wx . 1, w . 1
    if x0.ndim == 1:  # shared: dots with x0 are matrix-vector products, then r, wx change
        at0 = torch.mv(S.view(-1, nc), x0).view(3, Bt)  # r . x0, wx . x0, w . x0
        h00 = torch.mv(w, x0 * x0)
        at1 = S[:2].mul_(x1).sum(-1)  # r . x1, wx . x1
    else:  # gathered: the products with x1 need S intact, then S takes those with x0
        at1 = torch.mul(S[:2], x1, out=ws.get(1, 2 * Bt, nc).view(2, Bt, nc)).sum(-1)
        at0 = S.mul_(x0).sum(-1)
        h00 = w.mul_(x0).sum(-1)  # (w x0, now in w) . x0
    return torch.stack([at0[0], at1[0], sums[0], h00, at0[1], at0[2], at1[1], sums[1], sums[2]], 1)


def _eval_tile(x0, x1, th: torch.Tensor, ye: torch.Tensor, ws: _Scratch) -> torch.Tensor:
    """(summed log-loss, true positives, predicted positives) of one tile."""
    shape = x1.shape
    z = _predictor(x0, x1, th, ws.get(0, *shape))
    # 1.0 / 0.0 written as float (a bool tensor and its conversion: 5x slower), its sums
    # taken before the loss's temporary is made (one buffer fewer in the cache meanwhile)
    pred = torch.gt(z, 0, out=ws.get(1, *shape))
    tp, pp = torch.mv(pred, ye), pred.sum(1)
    # -log sigmoid(+-z) as softplus(z) - z y, exact for confident wrong predictions
    loss = torch.nn.functional.softplus(z).addcmul_(z, ye, value=-1.0)
    return torch.stack([loss.sum(1), tp, pp], 1)


def _columns(tile: Callable, first: int | None, second: int | None, ws: _Scratch):
    """A :func:`.tiling.tiled` kernel ``(X, d, theta, y)`` that hands ``tile`` the probes'
    columns: ``x0`` the one row ``first`` when every probe shares it (else gathered into
    ``ws``), the second columns a view of the consecutive rows from ``second`` when they are
    (else gathered)."""

    def run(X: torch.Tensor, d: torch.Tensor, theta: torch.Tensor, y: torch.Tensor):
        Bt, nc = len(d), X.shape[1]
        if first is not None:
            x0 = X[first]
        else:
            x0 = torch.index_select(X, 0, d[:, 0], out=ws.get(3, Bt, nc))
        if second is not None:
            x1 = X[second : second + Bt]
        else:
            x1 = torch.index_select(X, 0, d[:, 1], out=ws.get(4, Bt, nc))
        return tile(x0, x1, theta, y, ws)

    return run


def _segments(dn: np.ndarray, tb: int) -> list[tuple[np.ndarray, bool, bool]]:
    """The probes ``dn [B, 2]`` in tiles of at most ``tb``: ``(indices, shared, span)`` for
    each (``shared``: one first column; ``span``: consecutive second columns), grouped by
    first column (groups of fewer than :data:`MIN_GROUP` pooled)."""
    order = np.lexsort((dn[:, 1], dn[:, 0]))
    first = dn[order, 0]
    cuts = np.flatnonzero(np.diff(first)) + 1
    groups = np.split(order, cuts)
    pooled = [g for g in groups if len(g) < MIN_GROUP]
    segs = [(g, True) for g in groups if len(g) >= MIN_GROUP]
    if pooled:
        segs.append((np.concatenate(pooled), False))
    out = []
    for idx, shared in segs:
        for s in range(0, len(idx), tb):
            t = idx[s : s + tb]
            second = dn[t, 1]
            span = bool((np.diff(second) == 1).all())
            out.append((t, shared, span))
    return out


def _grouped(tile: Callable, width: int, X, d, theta, y) -> torch.Tensor:
    """``tile``'s sums ``[B, width]`` for the probes ``d [B, 2]``, tile by tile, the tiles
    of probes on :func:`.tiling.threaded`'s workers (each with its own scratch buffers)."""
    B, n = d.shape[0], X.shape[1]
    tb = max(1, TILE_ELEMS // min(n, TILE_N))
    dn = d.cpu().numpy()
    local = threading.local()

    def segment(idx: np.ndarray, shared: bool, span: bool) -> torch.Tensor:
        if not hasattr(local, "ws"):
            local.ws = _Scratch()
        it = torch.as_tensor(idx)
        first = int(dn[idx[0], 0]) if shared else None
        run = _columns(tile, first, int(dn[idx[0], 1]) if span else None, local.ws)
        return tiling.tiled(run, X, d[it], theta[it], y, elems=TILE_ELEMS, width=TILE_N)

    # each segment holds at most tb probes, so tiled() runs it as one block in the thread
    # that owns local.ws (blocks on other workers would share these buffers)
    segs = _segments(dn, tb)
    sums = tiling.threaded([lambda s=s: segment(*s) for s in segs])
    out = torch.empty((B, width), dtype=torch.float32)
    for (idx, _, _), part in zip(segs, sums, strict=True):
        out[torch.as_tensor(idx)] = part
    return out
