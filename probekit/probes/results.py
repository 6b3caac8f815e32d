"""What the engine returns: scores with their fit statistics, and fitted probes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .standardize import as_features, standardized_columns

__all__ = ["FitStats", "ProbeFit", "ProbeScores"]

_F32 = torch.float32


@dataclass(frozen=True)
class FitStats:
    """How one call of :class:`ProbeEngine` went.

    Attributes:
        n_probes: ``B``.
        k: columns per probe.
        chunk_size: probes per chunk; ``n_chunks`` chunks.
        compiled: the fused kernels were to run through ``torch.compile``.
        compile_fallback: compilation was asked for but did not happen: it failed (at
            compile time or when a compiled kernel ran), or there was no C++ compiler for
            ``torch.compile`` on the CPU; the same sums then ran eagerly.
        n_iter: ``[B]`` Newton passes per probe (0 for ridge).
        converged: ``[B]`` bool.
        elapsed_s: wall-clock seconds of the call.
    """

    n_probes: int
    k: int
    chunk_size: int
    n_chunks: int
    compiled: bool
    compile_fallback: bool
    n_iter: np.ndarray
    converged: np.ndarray
    elapsed_s: float

    def as_dict(self) -> dict[str, Any]:
        """The deprecated ``ProbeEngine.last_stats_`` dict (``seconds`` for ``elapsed_s``)."""
        return dict(
            n_probes=self.n_probes,
            k=self.k,
            chunk_size=self.chunk_size,
            n_chunks=self.n_chunks,
            compiled=self.compiled,
            n_iter=self.n_iter,
            converged=self.converged,
            seconds=self.elapsed_s,
        )


class ProbeScores(dict):
    """What :meth:`ProbeEngine.fit_score` returns: ``{metric: [B] float64}`` plus ``"loss"``
    (a plain dict, as before), with the call's :class:`FitStats` (convergence, chunking,
    compilation) in :attr:`stats`."""

    stats: FitStats

    def __init__(self, scores: dict[str, np.ndarray], stats: FitStats):
        super().__init__(scores)
        self.stats = stats


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
        stats: the fitting call's :class:`FitStats`.
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
    stats: FitStats | None = None

    def decision_function(self, X, *, device="cpu") -> np.ndarray:
        """Scores ``[B, m]`` (binary / regression) or ``[B, m, K]`` (multinomial) on
        ``X [m, D]``."""
        X = as_features(X, "X")
        dev = torch.device(device)
        cols, inv = np.unique(self.dims, return_inverse=True)
        Xt = standardized_columns(X, cols, self.mean, self.scale, dev)
        d = torch.as_tensor(inv.reshape(self.dims.shape), device=dev)
        W = torch.as_tensor(self.coef, dtype=_F32, device=dev)
        b = torch.as_tensor(self.intercept, dtype=_F32, device=dev)
        outs = []
        for i in range(0, len(d), 1024):
            Z = torch.einsum("bck,bkn->bnc", W[i : i + 1024], Xt[d[i : i + 1024]])
            outs.append((Z + b[i : i + 1024, None, :]).cpu().numpy())
        Zn = np.concatenate(outs, axis=0)
        return Zn[..., 0] if Zn.shape[-1] == 1 else Zn

    def predict(self, X, *, device="cpu") -> np.ndarray:
        """Predicted labels (or values) ``[B, m]`` on ``X [m, D]``."""
        Z = self.decision_function(X, device=device)
        if self.regression:
            return Z
        assert self.classes is not None  # classification probes carry their classes
        if Z.ndim == 2:
            return self.classes[(Z > 0).astype(np.int64)]
        return self.classes[Z.argmax(axis=-1)]
