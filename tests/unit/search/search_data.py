"""Planted problems shared by the search tests (not a test module: imported by them)."""

from __future__ import annotations

import functools

import numpy as np

from probekit.search import ArraySource

PLANTED = (17, 203)


def planted_dims(D: int) -> tuple[int, int]:
    """17 and 203 (of 384 or 256); 3 and 17 in the small problems."""
    return PLANTED if D > 203 else (3, 17)


def planted(n: int, D: int = 384, L: int = 2, seed: int = 0, noise: float = 0.3):
    """Features ``[n, L, D]``; the label depends on two dimensions of the last layer only."""
    a, b = planted_dims(D)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, L, D)).astype(np.float32)
    y = ((X[:, -1, a] + X[:, -1, b] + noise * rng.standard_normal(n)) > 0).astype(np.int64)
    return X, y


@functools.cache
def data384() -> tuple[ArraySource, ArraySource]:
    """Train (500) and eval (400) sources of 2 layers x 384 dims, planted in layer 1."""
    Xt, yt = planted(500, seed=0)
    Xd, yd = planted(400, seed=1)
    return ArraySource(Xt, yt), ArraySource(Xd, yd)


def small(n: int = 200, D: int = 40, seed: int = 0) -> ArraySource:
    """One layer of ``D`` dims, planted in dims 3 and 17."""
    X, y = planted(n, D=D, L=1, seed=seed)
    return ArraySource(X, y)


def common_fields(d: dict) -> None:
    """What every search result carries."""
    for key in (
        "kind",
        "selected",
        "metrics",
        "full_metrics",
        "random_baseline",
        "elapsed_s",
        "seed",
        "config",
        "versions",
        "majority_baseline",
    ):
        assert key in d, key
    assert d["kind"] == "search" and d["schema"] == "probekit-search"
    assert d["random_baseline"]["n_draws"] >= 20
    assert len(d["random_baseline"]["scores"]["accuracy"]) == d["random_baseline"]["n_draws"]
    assert d["random_baseline"]["k"] == len(d["selected"])
