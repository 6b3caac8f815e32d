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


def test_device_spelled_with_an_index_is_the_same_device():
    Xt, yt, Xe, ye = _data()
    eng = ProbeEngine(device="cpu:0")  # tensors on it report plain "cpu"
    a = eng.fit_score_prepared(eng.prepare(Xt, yt, Xe, ye), [[0, 1]])
    np.testing.assert_array_equal(
        a["loss"], ProbeEngine().fit_score(Xt, yt, Xe, ye, [[0, 1]])["loss"]
    )


def test_budget_counts_the_columns_a_call_uses_as_fit_score_does():
    """A small budget that fit_score honours for two pairs is honoured on prepared data too
    (the rest of a prepared set is its owner's memory), with the same chunks."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8000, 384)).astype(np.float16)
    y = (X[:, 0] > 0).astype(int)
    eng = ProbeEngine(memory_budget=8 * 2**20)
    dims = [[0, 1], [2, 3]]
    a = eng.fit_score(X[:6000], y[:6000], X[6000:], y[6000:], dims)
    b = eng.fit_score_prepared(eng.prepare(X[:6000], y[:6000], X[6000:], y[6000:]), dims)
    assert a.stats.chunk_size == b.stats.chunk_size
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-6)


def test_pickled_prepared_data_score_the_same():
    import pickle

    Xt, yt, Xe, ye = _data()
    eng = ProbeEngine(C=0.5)
    prep = eng.prepare(Xt, yt, Xe, ye)
    eng.fit_score_prepared(prep, [[2, 5]])  # fills the caches, which do not travel
    back = pickle.loads(pickle.dumps(prep))
    assert not back._lda and not back._eval
    np.testing.assert_array_equal(
        eng.fit_score_prepared(back, [[2, 5], [0, 1]])["loss"],
        eng.fit_score_prepared(prep, [[2, 5], [0, 1]])["loss"],
    )
