"""Cache-sized tiles for the eager kernels that sum over examples.

An eager pass on the CPU materialises a dozen ``[B, n]`` temporaries; over a whole chunk
(e.g. ``[500, 10000]``) they stream through memory, 3-4x slower than over tiles whose
temporaries stay in the core's cache. :func:`tiled` runs such a kernel tile by tile.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["TILE_ELEMS", "TILE_N", "tiled"]

#: an eager pass on the CPU runs over tiles of at most TILE_ELEMS probe-examples, TILE_N
#: examples wide: each of its [B, n] temporaries is then ~0.5 MiB and stays in the core's
#: cache (a whole chunk's, e.g. [500, 10000], streamed through memory: 3-4x slower)
TILE_N = 2048
TILE_ELEMS = 2**17


def tiled(
    fn: Callable,
    X: torch.Tensor,
    d: torch.Tensor,
    theta: torch.Tensor,
    y: torch.Tensor,
    *,
    elems: int | None = None,
    width: int | None = None,
):
    """``fn(X, d, theta, y)`` for a kernel whose output ``[B, c]`` is sums over the examples
    (the columns of ``X [Du, n]``, the entries of ``y [n]``) per probe (the rows of
    ``d [B, k]`` and ``theta [B, p]``): on the CPU, tile by tile (the example tiles' sums
    added in float64; the same sums up to float32 rounding), elsewhere in one call. Tiles
    of at most ``elems`` probe-examples, ``width`` examples wide (default
    :data:`TILE_ELEMS`, :data:`TILE_N`)."""
    elems = TILE_ELEMS if elems is None else elems
    width = TILE_N if width is None else width
    B, n = d.shape[0], X.shape[1]
    if X.device.type != "cpu" or B * n <= elems:
        return fn(X, d, theta, y)
    nc = min(n, width)
    tb = max(1, elems // nc)
    out = []
    for b in range(0, B, tb):
        db, thb = d[b : b + tb], theta[b : b + tb]
        first = fn(X[:, :nc], db, thb, y[:nc])
        acc = first.to(torch.float64)  # (float32 sums of many tiles would drift at large n)
        for i in range(nc, n, nc):
            acc += fn(X[:, i : i + nc], db, thb, y[i : i + nc])
        out.append(acc.to(first.dtype))
    return torch.cat(out)
