"""exact: best k-subsets by screen + refit equal a brute-force scikit-learn scan."""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
import pytest

from probekit.errors import ConfigError
from probekit.search import ArraySource, Problem, SearchConfig
from probekit.search.exact import exact, fisher_scores, subsets


def _three(n=300, D=12, seed=0):
    """Label from dims 2, 5 and 9 (plus noise); others pure noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 1, D)).astype(np.float32)
    z = X[:, 0, 2] + 0.8 * X[:, 0, 5] - 0.6 * X[:, 0, 9] + 0.6 * rng.standard_normal(n)
    return ArraySource(X, (z > 0).astype(np.int64))


def _brute(pb: Problem, k: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, log_loss
    from sklearn.preprocessing import StandardScaler

    res = []
    for c in combinations(range(pb.n_dims), k):
        sc = StandardScaler().fit(pb.X_fit[:, c])
        lr = LogisticRegression(C=1.0, tol=1e-10, max_iter=1000)
        lr.fit(sc.transform(pb.X_fit[:, c]), pb.y_fit)
        Zv = sc.transform(pb.X_val[:, c])
        res.append(
            (
                accuracy_score(pb.y_val, lr.predict(Zv)),
                -log_loss(pb.y_val, lr.predict_proba(Zv)),
                list(c),
            )
        )
    res.sort(key=lambda r: (-r[0], -r[1]))
    return res


@pytest.mark.parametrize("refit", [None, 220, 40])
def test_exact_triples_equal_sklearn_brute_force(refit):
    tr, dv = _three(), _three(seed=1)
    cfg = SearchConfig(C=1.0, n_random=5)
    res = exact(tr, dv, layer=0, k=3, m=12, refit=refit, config=cfg)
    assert res["n_subsets"] == comb(12, 3) == 220
    pb = Problem(tr.features(0, "cls"), tr.labels, dv.features(0, "cls"), dv.labels, config=cfg)
    brute = _brute(pb, 3)
    assert res["exhaustive"] == (refit != 40)
    if res["exhaustive"]:  # the very same best triple
        assert res["selected"] == brute[0][2]
        assert res["val_score"] == pytest.approx(brute[0][0])
    else:  # screened: the best refitted triple is within tolerance of the optimum
        assert res["val_score"] >= brute[0][0] - 0.02
    assert set(res["selected"]) == {2, 5, 9}
    assert res["greedy"]["val_gap"] == pytest.approx(res["val_score"] - res["greedy"]["val_score"])
    assert res["verdict"]["status"] == "beats"


def test_fisher_screen_is_the_lda_criterion():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 6))
    y = (X[:, 1] - X[:, 4] > 0).astype(np.int64)
    sets = subsets(6, 2)
    assert len(sets) == 15 and sets[0].tolist() == [0, 1] and sets[-1].tolist() == [4, 5]
    J = fisher_scores(X, y, sets)
    assert sets[np.argmax(J)].tolist() == [1, 4]
    # binary: J = p0 p1 delta' Sw^-1 delta on the pair
    s = [1, 4]
    p1 = y.mean()
    d = X[y == 1][:, s].mean(0) - X[y == 0][:, s].mean(0)
    Sw = (1 - p1) * np.cov(X[y == 0][:, s].T, bias=True) + p1 * np.cov(X[y == 1][:, s].T, bias=True)
    assert J[np.argmax(J)] == pytest.approx(p1 * (1 - p1) * d @ np.linalg.solve(Sw, d), rel=1e-6)


def test_bad_options_are_refused():
    tr = _three(n=60)
    with pytest.raises(ConfigError, match="prefilter size m=2 must be >= k=3"):
        exact(tr, tr, layer=0, k=3, m=2)
    with pytest.raises(ConfigError, match="prefilter must be one of"):
        exact(tr, tr, layer=0, k=3, prefilter="pca")
