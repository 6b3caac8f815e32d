"""probekit.probes.engine: the batched engine against scikit-learn, its inputs and results."""

from __future__ import annotations

import numpy as np
import pytest
from probe_data import planted, random_dims, sklearn_scores
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from probekit.errors import ConfigError, DataError
from probekit.probes import FitStats, ProbeEngine, ProbeScores, native, scoring


@pytest.mark.parametrize("k", [1, 2, 3, 16, 24])
def test_binary_parity_planted(k):
    """200 random subsets of each size (and the full width) vs scikit-learn's exact Newton
    solver on the same objective."""
    Xtr, ytr, Xev, yev = planted(K=2, seed=k)
    dims = random_dims(24, k, 1 if k == 24 else 200, seed=k)
    eng = ProbeEngine(C=0.5)
    got = eng.fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy", "mcc", "f1"))
    ref = sklearn_scores(
        Xtr, ytr, Xev, yev, dims, 0.5, ("accuracy", "mcc", "f1"), solver="newton-cholesky"
    )
    for m in ref:
        diff = np.abs(got[m] - ref[m])
        assert np.median(diff) <= 0.002 and diff.max() <= 0.01, (m, diff)
    assert got["loss"].shape == (len(dims),) and np.all(got["loss"] > 0)
    assert got.stats.converged.all()


def test_binary_parity_planted_lbfgs():
    """Against scikit-learn's default solver (lbfgs) too."""
    Xtr, ytr, Xev, yev = planted(K=2, seed=21)
    dims = random_dims(24, 3, 40, seed=21)
    got = ProbeEngine(C=1.0).fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy",))
    ref = sklearn_scores(Xtr, ytr, Xev, yev, dims, 1.0, ("accuracy",))
    assert np.abs(got["accuracy"] - ref["accuracy"]).max() <= 0.004


def test_binary_coefficients_match_sklearn():
    Xtr, ytr, _, _ = planted(K=2, seed=3)
    dims = random_dims(24, 4, 10, seed=0)
    fit = ProbeEngine(C=2.0, tol=1e-8).fit(Xtr, ytr, dims)
    for b, d in enumerate(dims):
        A = StandardScaler().fit_transform(Xtr[:, d].astype(np.float64))
        lr = LogisticRegression(C=2.0, tol=1e-10, max_iter=5000).fit(A, ytr)
        np.testing.assert_allclose(fit.coef[b, 0], lr.coef_[0], atol=2e-4)
        np.testing.assert_allclose(fit.intercept[b, 0], lr.intercept_[0], atol=2e-4)


def test_multinomial_parity_planted():
    Xtr, ytr, Xev, yev = planted(K=3, seed=5)
    dims = random_dims(24, 3, 20, seed=1)
    eng = ProbeEngine(C=1.0, tol=1e-8)
    got = eng.fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy", "mcc"))
    ref = sklearn_scores(Xtr, ytr, Xev, yev, dims, 1.0, ("accuracy", "mcc"))
    for m in ref:
        assert np.abs(got[m] - ref[m]).max() <= 0.01
    fit = eng.fit(Xtr, ytr, dims[:3])
    for b, d in enumerate(dims[:3]):
        A = StandardScaler().fit_transform(Xtr[:, d].astype(np.float64))
        lr = LogisticRegression(C=1.0, tol=1e-10, max_iter=5000).fit(A, ytr)
        np.testing.assert_allclose(fit.coef[b], lr.coef_, atol=5e-4)
        # intercepts agree up to the common shift the likelihood cannot see
        np.testing.assert_allclose(
            fit.intercept[b] - fit.intercept[b].mean(),
            lr.intercept_ - lr.intercept_.mean(),
            atol=5e-4,
        )


def test_ridge_parity_planted():
    rng = np.random.default_rng(7)
    Xtr, _, Xev, _ = planted(seed=7, dtype=np.float32)
    w = rng.normal(size=24)
    ytr = Xtr.astype(np.float64) @ w + rng.normal(size=len(Xtr))
    yev = Xev.astype(np.float64) @ w + rng.normal(size=len(Xev))
    dims = random_dims(24, 5, 25, seed=2)
    eng = ProbeEngine(regression=True, C=0.1)
    got = eng.fit_score(Xtr, ytr, Xev, yev, dims, metrics=("pearson", "spearman"))
    ref = sklearn_scores(Xtr, ytr, Xev, yev, dims, 0.1, ("pearson", "spearman"), regression=True)
    for m in ref:
        np.testing.assert_allclose(got[m], ref[m], atol=1e-5)
    fit = eng.fit(Xtr, ytr, dims[:2])
    A = StandardScaler().fit_transform(Xtr[:, dims[0]].astype(np.float64))
    r = Ridge(alpha=10.0).fit(A, ytr)
    np.testing.assert_allclose(fit.coef[0, 0], r.coef_, atol=1e-5)
    np.testing.assert_allclose(
        fit.predict(Xev)[0],
        r.predict(
            StandardScaler()
            .fit(Xtr[:, dims[0]].astype(np.float64))
            .transform(Xev[:, dims[0]].astype(np.float64))
        ),
        atol=1e-4,
    )


def test_shared_prefix_batch_matches_generic_path_and_sklearn():
    """A greedy step (every probe shares its first k-1 columns) takes the shared-column path,
    warm-started from the fit on the shared columns; it gives the generic path's answers
    (the same probes with the own column first) and scikit-learn's, in any chunking."""
    Xtr, ytr, Xev, yev = planted(K=2, seed=21)
    prefix = [3, 0, 17, 5, 9, 1]
    rest = np.setdiff1d(np.arange(24), prefix)
    dims = np.concatenate([np.tile(prefix, (len(rest), 1)), rest[:, None]], axis=1)
    a = ProbeEngine().fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy",))
    g = ProbeEngine().fit_score(Xtr, ytr, Xev, yev, dims[:, ::-1], metrics=("accuracy",))
    c = ProbeEngine(chunk_size=5).fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy",))
    np.testing.assert_allclose(a["accuracy"], g["accuracy"], atol=1.5 / len(yev))
    np.testing.assert_allclose(a["loss"], g["loss"], rtol=1e-5)
    np.testing.assert_allclose(a["loss"], c["loss"], rtol=1e-5)
    ref = sklearn_scores(Xtr, ytr, Xev, yev, dims, 1.0, ("accuracy",))
    np.testing.assert_allclose(a["accuracy"], ref["accuracy"], atol=1.5 / len(yev))
    fit = ProbeEngine().fit(Xtr, ytr, dims[:3])
    assert fit.stats.converged.all()
    for i in range(3):
        A = StandardScaler().fit_transform(Xtr[:, dims[i]].astype(np.float64))
        lr = LogisticRegression(C=1.0, tol=1e-10, max_iter=10000).fit(A, ytr)
        np.testing.assert_allclose(fit.coef[i, 0], lr.coef_[0], atol=1e-4)
        np.testing.assert_allclose(fit.intercept[i, 0], lr.intercept_[0], atol=1e-4)


def test_inputs_not_mutated_and_deterministic_and_chunk_invariant():
    Xtr, ytr, Xev, yev = planted(K=2, seed=11)
    copies = [a.copy() for a in (Xtr, ytr, Xev, yev)]
    dims = random_dims(24, 2, 57, seed=3)
    a = ProbeEngine().fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy",))
    b = ProbeEngine().fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy",))
    c = ProbeEngine(chunk_size=7).fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy",))
    # a budget splits the probes whose eager pass holds [B, n] temporaries (triples here;
    # the CPU's pair kernels hold none, and 8,192 pairs a chunk bound them)
    triples = random_dims(24, 3, 57, seed=3)
    a3 = ProbeEngine().fit_score(Xtr, ytr, Xev, yev, triples, metrics=("accuracy",))
    small = ProbeEngine(memory_budget=600_000)
    d = small.fit_score(Xtr, ytr, Xev, yev, triples, metrics=("accuracy",))
    assert d.stats.n_chunks > 1
    assert small.fit_score(Xtr, ytr, Xev, yev, dims).stats.n_chunks == 1
    np.testing.assert_array_equal(a["accuracy"], b["accuracy"])
    np.testing.assert_array_equal(a["loss"], b["loss"])
    np.testing.assert_allclose(a["loss"], c["loss"], rtol=1e-5)
    np.testing.assert_allclose(a3["accuracy"], d["accuracy"], atol=1.5 / len(yev))
    for x, y in zip(copies, (Xtr, ytr, Xev, yev)):
        np.testing.assert_array_equal(x, y)
        assert x.dtype == y.dtype
    with pytest.raises(ConfigError, match="memory_budget"):
        ProbeEngine(memory_budget=1000).fit_score(Xtr, ytr, Xev, yev, dims)
    with pytest.raises(ConfigError, match="float64, which MPS lacks"):
        ProbeEngine(device="mps")


def test_label_values_and_fit_predict():
    Xtr, ytr, Xev, yev = planted(K=2, seed=2)
    lab = np.array([-1, 7])
    eng = ProbeEngine()
    s1 = eng.fit_score(Xtr, ytr, Xev, yev, [[0, 1], [2, 3]], metrics=("accuracy",))
    s2 = eng.fit_score(Xtr, lab[ytr], Xev, lab[yev], [[0, 1], [2, 3]], metrics=("accuracy",))
    np.testing.assert_allclose(s1["accuracy"], s2["accuracy"])
    fit = eng.fit(Xtr, lab[ytr], [[0, 1], [2, 3]])
    pred = fit.predict(Xev)
    assert pred.shape == (2, len(yev)) and set(np.unique(pred)) <= {-1, 7}
    np.testing.assert_allclose((pred == lab[yev]).mean(1), s2["accuracy"])


def test_input_validation():
    Xtr, ytr, Xev, yev = planted(K=2)
    eng = ProbeEngine()
    with pytest.raises(ConfigError, match=r"dims: indices must lie in \[0, 24\)"):
        eng.fit_score(Xtr, ytr, Xev, yev, [[0, 99]])
    with pytest.raises(DataError, match="need at least 2 classes"):
        eng.fit_score(Xtr, np.zeros(len(ytr)), Xev, yev, [[0, 1]])
    with pytest.raises(DataError, match=r"y_train: expected shape \[1500\]"):
        eng.fit_score(Xtr, ytr[:-1], Xev, yev, [[0, 1]])
    with pytest.raises(ConfigError, match="do not fit a classification probe"):
        eng.fit_score(Xtr, ytr, Xev, yev, [[0, 1]], metrics=("pearson",))
    with pytest.raises(ConfigError, match="C must be a positive finite number"):
        ProbeEngine(C=0)


def test_separable_data_converges():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    eng = ProbeEngine(C=100.0)
    s1 = eng.fit_score(X[:300], y[:300], X[300:], y[300:], [[0]], metrics=("accuracy",))
    assert s1["accuracy"][0] >= 0.99 and s1.stats.converged.all()
    s2 = eng.fit_score(X[:300], y[:300], X[300:], y[300:], [[0, 1], [1, 2]], metrics=("accuracy",))
    assert s2["accuracy"][0] >= 0.98 and s2.stats.converged.all()


def _softplus(z):
    return np.logaddexp(0.0, z)


@pytest.mark.parametrize("K", [2, 3])
def test_eval_labels_missing_from_training_classes(K, monkeypatch):
    """Eval examples whose label the probe never saw in training count as errors in the
    metrics, and are left out of the eval loss (mean over the known examples only)."""
    Xtr, ytr, Xev, yev = planted(K=K, seed=31)
    yev = yev.copy()
    unseen = np.zeros(len(yev), dtype=bool)
    unseen[::7] = True
    yev[unseen] = 9  # a class absent from training
    dims = random_dims(24, 3, 5, seed=4)
    eng = ProbeEngine(tol=1e-8)
    got = eng.fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy",))
    fit = eng.fit(Xtr, ytr, dims)
    pred = fit.predict(Xev)
    np.testing.assert_allclose(got["accuracy"], (pred == yev).mean(1), atol=1e-12)
    assert (got["accuracy"] <= 1 - unseen.mean() + 1e-12).all()
    Z = fit.decision_function(Xev)
    kn = ~unseen
    if K == 2:
        z = Z[:, kn]
        ll = _softplus(z) - z * yev[kn]
    else:
        Zk = Z[:, kn, :]
        ll = (
            np.logaddexp.reduce(Zk, axis=-1)
            - np.take_along_axis(Zk, yev[kn][None, :, None], axis=-1)[..., 0]
        )
    np.testing.assert_allclose(got["loss"], ll.mean(1), rtol=1e-4)
    known_only = eng.fit_score(Xtr, ytr, Xev[kn], yev[kn], dims, metrics=("accuracy",))
    np.testing.assert_allclose(got["loss"], known_only["loss"], rtol=1e-5)
    np.testing.assert_allclose(got["accuracy"], known_only["accuracy"] * kn.mean(), atol=1e-12)
    # scored from predictions in blocks of probes (a block of one here): the same scores
    monkeypatch.setattr(scoring, "PRED_BLOCK_ELEMS", 1)
    blocked = eng.fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy", "mcc"))
    np.testing.assert_array_equal(blocked["accuracy"], got["accuracy"])
    np.testing.assert_allclose(blocked["loss"], got["loss"], rtol=1e-6)
    monkeypatch.undo()
    whole = eng.fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy", "mcc"))
    np.testing.assert_array_equal(blocked["mcc"], whole["mcc"])


def test_convergence_is_returned_with_the_result():
    """fit_score returns a plain {metric: [B]} dict that carries the call's FitStats; fit's
    ProbeFit carries them too; last_stats_ is a deprecated alias of the last call's."""
    Xtr, ytr, Xev, yev = planted(K=2, seed=6)
    dims = random_dims(24, 2, 30, seed=6)
    eng = ProbeEngine(chunk_size=8)
    sc = eng.fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy", "f1"))
    assert isinstance(sc, ProbeScores) and isinstance(sc, dict)
    assert set(sc) == {"accuracy", "f1", "loss"}
    st = sc.stats
    assert isinstance(st, FitStats)
    assert (st.n_probes, st.k, st.chunk_size, st.n_chunks) == (30, 2, 8, 4)
    assert st.converged.shape == (30,) and st.converged.all()
    assert st.n_iter.shape == (30,) and (st.n_iter >= 1).all()
    # a small batch: fused only where the native pair kernels are (no compile tax), not compiled
    assert st.compiled == native.available() and not st.compile_fallback and st.elapsed_s >= 0
    with pytest.warns(DeprecationWarning, match="last_stats_ is deprecated"):
        old = eng.last_stats_
    assert old["n_chunks"] == 4 and old["seconds"] == st.elapsed_s
    np.testing.assert_array_equal(old["n_iter"], st.n_iter)
    fit = eng.fit(Xtr, ytr, dims)
    np.testing.assert_array_equal(fit.stats.n_iter, fit.n_iter)
    ridge = ProbeEngine(regression=True).fit_score(
        Xtr, ytr.astype(float), Xev, yev.astype(float), dims, metrics=("pearson",)
    )
    assert (ridge.stats.n_iter == 0).all() and ridge.stats.converged.all()


def test_eager_chunks_large_only_where_pair_kernels_tile_their_own_work():
    """Eager pairs on the CPU (pair_kernels, tile by tile) take chunks as large as the fused
    kernels' (8,192 or the budget); other eager kernels, which hold [B, n] temporaries, stay
    within a 256 MiB working set; budget and chunk_size still bound both."""
    Xtr, ytr, Xev, yev = planted(n=4000, m=500, D=60, K=2, seed=2)
    eng = ProbeEngine(compile=False)
    pairs = np.stack(np.triu_indices(60, 1), 1)  # 1,770 pairs
    sc = eng.fit_score(Xtr, ytr, Xev, yev, pairs, metrics=("accuracy",))
    assert sc.stats.chunk_size == len(pairs) and not sc.stats.compiled
    triples = random_dims(60, 3, 1770, seed=1)
    st3 = eng.fit_score(Xtr, ytr, Xev, yev, triples, metrics=("accuracy",)).stats
    per3 = 4 * (2 * 3 * 4000 + 8 * 4000 + 3 * 500 + 4 * 500) + 8 * 4 * 16
    assert st3.chunk_size == (256 * 2**20) // per3 < 1770
    small = ProbeEngine(compile=False, chunk_size=100).fit_score(
        Xtr, ytr, Xev, yev, pairs, metrics=("accuracy",)
    )
    np.testing.assert_allclose(small["loss"], sc["loss"], rtol=1e-5)
    assert small.stats.chunk_size == 100
