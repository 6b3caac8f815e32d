"""Minimum description length of the labels given a dimension set: the online code.

Voita & Titov (2020), "Information-Theoretic Probing with Minimum Description Length": shuffle
the training set once, cut it at ``0.1%, 0.2%, 0.4%, ..., 50%, 100%`` of its size, send the
first block with the uniform code (``log2 K`` bits a label) and every later block with a probe
trained on everything before it (``-log2 p(y | x)`` bits a label). The sum is the online
codelength; ``uniform / online`` is the compression. A dimension set that carries the task
compresses the labels; one that carries nothing stays near 1.

Every block's probes are one call of :class:`probekit.probes.ProbeEngine` (the same
L2-regularised logistic probe as everywhere else), so ``B`` dimension sets cost one batched
fit per block. Classification only (the online code of a real-valued target needs a noise
model the paper does not fix).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError

logger = logging.getLogger(__name__)

__all__ = ["MDL_FRACTIONS", "MDLResult", "block_ends", "online_codelength"]

#: Voita & Titov's block boundaries, as fractions of the training set
MDL_FRACTIONS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class MDLResult:
    """Online codelengths of ``B`` dimension sets.

    Attributes:
        dims: ``[B, k]`` the dimension sets.
        block_ends: ``[T + 1]`` prefix sizes ``t_0 < ... < t_T = n``; block ``i`` is
            ``(t_{i-1}, t_i]`` of the shuffled training set, block 0 is ``[0, t_0)``.
        block_bits: ``[B, T]`` bits spent on each block after the first.
        first_block_bits: bits of the first block (uniform code, the same for every set).
        codelength: ``[B]`` total online codelength, bits.
        uniform_codelength: ``n log2 K`` bits.
        compression: ``[B]`` ``uniform_codelength / codelength``.
        order: ``[n]`` the permutation of the training rows that was used.
    """

    dims: np.ndarray
    block_ends: np.ndarray
    block_bits: np.ndarray
    first_block_bits: float
    codelength: np.ndarray
    uniform_codelength: float
    compression: np.ndarray
    order: np.ndarray

    def to_dict(self) -> dict:
        return {
            "dims": self.dims.tolist(),
            "block_ends": self.block_ends.tolist(),
            "codelength_bits": self.codelength.tolist(),
            "uniform_codelength_bits": self.uniform_codelength,
            "compression": self.compression.tolist(),
        }


def block_ends(y: np.ndarray, fractions: tuple[float, ...] = MDL_FRACTIONS) -> np.ndarray:
    """Prefix sizes for labels ``y [n]`` (already in transmission order).

    The first prefix is at least the fraction's size and at least long enough to hold every
    class once (a probe cannot be trained on one class), and every block holds at least one
    example; repeated boundaries are dropped.
    """
    n = len(y)
    classes = np.unique(y)
    first_seen = max(int(np.flatnonzero(y == c)[0]) for c in classes) + 1
    ends = [max(first_seen, int(np.ceil(f * n))) for f in fractions]
    ends = sorted({min(e, n) for e in ends} | {n})
    if ends[0] >= n:
        raise DataError(
            f"MDL: every class first appears only at example {first_seen} of {n}; "
            "no examples are left to code online"
        )
    return np.asarray(ends, dtype=np.int64)


def online_codelength(
    engine,
    X_train: np.ndarray,
    y_train: np.ndarray,
    dims: np.ndarray,
    *,
    seed: int = 0,
    fractions: tuple[float, ...] = MDL_FRACTIONS,
) -> MDLResult:
    """Online codelength of ``y_train`` given each dimension set of ``dims``.

    Args:
        engine: a classification :class:`probekit.probes.ProbeEngine` (its ``C``, device and
            memory budget are used for every block).
        X_train: ``[n, D]`` features (not modified; rows are read in the shuffled order).
        y_train: ``[n]`` class indices.
        dims: ``[B, k]`` dimension sets (or ``[k]`` for one).
        seed: the shuffle of the training set.
        fractions: block boundaries as fractions of ``n`` (default Voita & Titov's).

    Returns:
        An :class:`MDLResult`.
    """
    if getattr(engine, "regression", False):
        raise ConfigError("MDL online codelength is defined here for classification tasks only")
    dims = np.atleast_2d(np.asarray(dims, dtype=np.int64))
    y = np.asarray(y_train)
    if y.dtype.kind == "f":
        raise DataError("MDL: labels must be class indices")
    y = y.astype(np.int64)
    if (y < 0).any():
        raise DataError(f"MDL: {int((y < 0).sum())} training examples are unlabelled (-1)")
    order = np.random.default_rng(seed).permutation(len(y))
    ys = y[order]
    ends = block_ends(ys, fractions)
    K = len(np.unique(y))
    first_bits = float(ends[0] * np.log2(K))
    bits = np.zeros((len(dims), len(ends) - 1))
    for i in range(1, len(ends)):
        tr, ev = order[: ends[i - 1]], order[ends[i - 1] : ends[i]]
        # rows are gathered block by block, so a float16 cache is never upcast whole
        sc = engine.fit_score(X_train[np.sort(tr)], y[np.sort(tr)], X_train[ev], y[ev], dims, ())
        bits[:, i - 1] = sc["loss"] * len(ev) / np.log(2)
        logger.debug("MDL block %d/%d: %d -> %d examples", i, len(ends) - 1, len(tr), len(ev))
    total = first_bits + bits.sum(1)
    uniform = float(len(y) * np.log2(K))
    return MDLResult(dims, ends, bits, first_bits, total, uniform, uniform / total, order)
