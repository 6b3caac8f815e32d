"""How stable a selection is over repeats: choice frequencies and Jaccard overlaps."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["jaccard", "stability"]


def jaccard(a: Iterable[int], b: Iterable[int]) -> float:
    """``|a & b| / |a | b|`` (1.0 for two empty sets)."""
    a, b = set(a), set(b)
    return 1.0 if not a and not b else len(a & b) / len(a | b)


def stability(sets: Sequence[Sequence[int]]) -> dict[str, Any]:
    """How stable a selection is over repeats.

    Args:
        sets: the chosen dimension sets, one per repeat.

    Returns:
        ``{"n_repeats", "frequency": {dim: fraction of repeats choosing it} (most frequent
        first), "jaccard_mean", "jaccard_min", "jaccard": [R][R] matrix, "sets"}``.
    """
    R = len(sets)
    counts: dict[int, int] = {}
    for s in sets:
        for d in set(s):
            counts[int(d)] = counts.get(int(d), 0) + 1
    freq = {d: c / R for d, c in sorted(counts.items(), key=lambda t: (-t[1], t[0]))}
    J = np.ones((R, R))
    for i, j in itertools.combinations(range(R), 2):
        J[i, j] = J[j, i] = jaccard(sets[i], sets[j])
    off = J[~np.eye(R, dtype=bool)]
    return {
        "n_repeats": R,
        "frequency": freq,
        "jaccard_mean": float(off.mean()) if off.size else 1.0,
        "jaccard_min": float(off.min()) if off.size else 1.0,
        "jaccard": J.tolist(),
        "sets": [[int(d) for d in s] for s in sets],
    }
