"""The score-test screen of greedy selection."""

from __future__ import annotations

import numpy as np

from probekit import search as S
from probekit.search import ArraySource


def test_screen_multiclass_and_regression():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((600, 1, 50)).astype(np.float32)
    y3 = np.digitize(X[:, 0, 3] + X[:, 0, 17] + 0.2 * rng.standard_normal(600), [-0.7, 0.7])
    src = ArraySource(X, y3)
    res = S.greedy(src, src, k=2, screen=5, n_random=20)
    assert set(res["selected"]) == {3, 17}
    yr = (2 * X[:, 0, 3] - X[:, 0, 17] + 0.3 * rng.standard_normal(600)).astype(np.float32)
    reg = ArraySource(X, yr, regression=True)
    res = S.greedy(reg, reg, k=2, screen=5, n_random=20)
    assert set(res["selected"]) == {3, 17} and res["metrics"]["pearson"] > 0.9
    scr = S.Screen(
        S.Problem(
            X[:, 0],
            yr.astype(np.float64),
            X[:5, 0],
            yr[:5].astype(np.float64),
            regression=True,
            config=S.SearchConfig(metrics=("pearson",)),
        )
    )
    assert np.argsort(-scr.stats([], np.arange(50)))[:2].tolist() == [3, 17]
    assert np.argmax(scr.stats([3], np.arange(50))) == 17
