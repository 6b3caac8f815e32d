"""MDL online codelength (probekit.probes.mdl) against scikit-learn on the same blocks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.preprocessing import StandardScaler

from probekit.errors import ConfigError, DataError
from probekit.probes import ProbeEngine
from probekit.probes.mdl import block_ends, online_codelength


def _data(n=2000, D=12, C=2, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    X = rng.standard_normal((n, D))
    X[:, 4] += 1.5 * (y == 1) - 1.5 * (y == 2)
    return X.astype(np.float32), y


def _sklearn_reference(X, y, dims, order, ends, C=1.0):
    K = len(np.unique(y))
    bits = ends[0] * np.log2(K)
    for i in range(1, len(ends)):
        tr, ev = order[: ends[i - 1]], order[ends[i - 1] : ends[i]]
        sc = StandardScaler().fit(X[tr][:, dims])
        lr = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(
            sc.transform(X[tr][:, dims]), y[tr]
        )
        p = lr.predict_proba(sc.transform(X[ev][:, dims]))
        bits += log_loss(y[ev], p, labels=lr.classes_, normalize=False) / np.log(2)
    return bits


@pytest.mark.parametrize("C_classes", [2, 3])
def test_codelength_equals_a_scikit_learn_reference(C_classes):
    X, y = _data(C=C_classes)
    dims = np.array([[4, 0], [1, 2]])
    res = online_codelength(ProbeEngine(C=1.0), X, y, dims, seed=3)
    for b in range(len(dims)):
        want = _sklearn_reference(X, y, dims[b], res.order, res.block_ends)
        assert res.codelength[b] == pytest.approx(want, rel=2e-3)
    # the informative set compresses, the noise set barely does
    assert res.compression[0] > 1.3 > 1.05 > res.compression[1] > 0.9
    assert res.uniform_codelength == pytest.approx(len(y) * np.log2(C_classes))


def test_blocks_follow_voita_titov_and_hold_every_class_first():
    y = np.array([0] * 50 + [1] + [0, 1] * 500)
    ends = block_ends(y)
    assert ends[0] == 51  # the first block must contain class 1
    assert ends[-1] == len(y)
    assert np.all(np.diff(ends) > 0)
    assert 0.125 * len(y) == pytest.approx(ends[-4], abs=1)


def test_refusals():
    X, y = _data(n=200)
    with pytest.raises(ConfigError, match="classification tasks only"):
        online_codelength(ProbeEngine(regression=True), X, y.astype(float), np.array([[0]]))
    yy = y.copy()
    yy[0] = -1
    with pytest.raises(DataError, match="unlabelled"):
        online_codelength(ProbeEngine(), X, yy, np.array([[0]]))
