"""Batched solves of the probes' small Newton systems."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["solve_batched", "spd_solve"]


def solve_batched(H: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``x [B, p]`` with ``H[b] x[b] = g[b]`` for ``H [B, p, p]``, ``g [B, p]`` (float64).

    On the CPU through NumPy's LAPACK, one matrix after another: torch's batched CPU solve
    runs a parallel loop over the batch whose body is MKL's own OpenMP-parallel LU, and that
    nesting was seen to spin forever in a long-lived process. Other devices: torch's solve.
    """
    if H.device.type != "cpu":
        return torch.linalg.solve(H, g[:, :, None])[:, :, 0]
    return torch.from_numpy(np.linalg.solve(H.numpy(), g.numpy()[:, :, None])[:, :, 0])


def spd_solve(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Solve ``H x = g`` for a batch of small symmetric positive-definite ``H [B, p, p]``,
    ``g [B, p]`` (float64 NumPy), returning ``x [B, p]``. For p <= 8 an unrolled, vectorised
    Cholesky (LAPACK's batched loop costs microseconds per tiny matrix); otherwise NumPy's
    batched solve (see :func:`solve_batched` for why not torch's)."""
    p = H.shape[1]
    if p > 8:
        return np.linalg.solve(H, g[:, :, None])[:, :, 0]
    L: list[list[Any]] = [[None] * p for _ in range(p)]
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
    yv: list[Any] = [None] * p
    for i in range(p):
        v = g[:, i].copy()
        for t in range(i):
            v -= L[i][t] * yv[t]
        yv[i] = v / L[i][i]
    x: list[Any] = [None] * p
    for i in reversed(range(p)):
        v = yv[i].copy()
        for t in range(i + 1, p):
            v -= L[t][i] * x[t]
        x[i] = v / L[i][i]
    return np.stack(x, 1)
