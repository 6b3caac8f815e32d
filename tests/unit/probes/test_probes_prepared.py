"""ProbeEngine.prepare + fit_score_prepared: the same scores as fit_score, computed once."""

from __future__ import annotations

import numpy as np
import pytest

from probekit.errors import ConfigError
from probekit.probes import Prepared, ProbeEngine


def _data(K=2, n=400, m=150, D=12, seed=0, regression=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n + m, D)).astype(np.float16)
    z = X[:, 2].astype(np.float64) - 0.7 * X[:, 5] + 0.5 * rng.standard_normal(n + m)
    y = z if regression else np.digitize(z, np.quantile(z, np.linspace(0, 1, K + 1)[1:-1]))
    return X[:n], y[:n], X[n:], y[n:]


def _batches(D):
    rng = np.random.default_rng(1)
    singles = np.arange(D)[:, None]
    pairs = np.stack(np.triu_indices(D, 1), 1)
    rest = np.setdiff1d(np.arange(D), [2, 5])[:, None]
    greedy = np.concatenate([np.tile([[2, 5]], (D - 2, 1)), rest], 1)
    wide = np.stack([np.sort(rng.choice(D, 7, replace=False)) for _ in range(5)])
    return {"singles": singles, "pairs": pairs, "greedy": greedy, "wide": wide}


@pytest.mark.parametrize(
    ("K", "regression", "metrics"),
    [
        (2, False, ("accuracy", "mcc")),
        (3, False, ("accuracy",)),
        (1, True, ("pearson", "spearman")),
    ],
)
def test_prepared_scores_equal_fit_score(K, regression, metrics):
    Xt, yt, Xe, ye = _data(K, regression=regression)
    eng = ProbeEngine(regression=regression, C=0.5)
    prep = eng.prepare(Xt, yt, Xe, ye)
    assert isinstance(prep, Prepared) and prep.Xt.shape == (12, 400)
    for name, dims in _batches(12).items():
        a = eng.fit_score(Xt, yt, Xe, ye, dims, metrics=metrics)
        b = eng.fit_score_prepared(prep, dims, metrics=metrics)
        for key in (*metrics, "loss"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-6, atol=1e-9, err_msg=name)
        np.testing.assert_array_equal(b.stats.n_iter, a.stats.n_iter)


def test_prepared_is_reused_and_inputs_untouched():
    Xt, yt, Xe, ye = _data()
    keep = Xt.copy()
    eng = ProbeEngine(C=1.0)
    prep = eng.prepare(Xt, yt, Xe, ye)
    first = eng.fit_score_prepared(prep, np.array([[2, 5]]))
    again = eng.fit_score_prepared(prep, np.array([[2, 5]]), C=[1.0])
    assert first["accuracy"][0] == again["accuracy"][0]
    np.testing.assert_array_equal(Xt, keep)
    # another engine of the same kind scores the same prepared data at its own C
    other = ProbeEngine(C=1e-3).fit_score_prepared(prep, np.array([[2, 5]]))
    np.testing.assert_allclose(
        other["loss"], ProbeEngine(C=1e-3).fit_score(Xt, yt, Xe, ye, [[2, 5]])["loss"], rtol=1e-6
    )


def test_prepared_refuses_what_does_not_fit():
    Xt, yt, Xe, ye = _data()
    prep = ProbeEngine().prepare(Xt, yt, Xe, ye)
    with pytest.raises(ConfigError, match="classification probes"):
        ProbeEngine(regression=True).fit_score_prepared(prep, [[0, 1]], metrics=("pearson",))
    with pytest.raises(ConfigError, match=r"indices must lie in \[0, 12\)"):
        ProbeEngine().fit_score_prepared(prep, [[0, 12]])
    with pytest.raises(ConfigError, match="no evaluation set"):
        ProbeEngine().fit_score_prepared(ProbeEngine().prepare(Xt, yt), [[0, 1]])
    with pytest.raises(ConfigError, match="do not fit a classification probe"):
        ProbeEngine().fit_score_prepared(prep, [[0, 1]], metrics=("pearson",))
