"""probekit.probes: batched engine vs scikit-learn, estimator checks, splits, baselines."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from probekit.errors import ConfigError, DataError
from probekit.metrics import batch_metrics
from probekit.probes import (
    LinearProbe,
    ProbeEngine,
    control_task_baseline,
    control_task_labels,
    input_types,
    majority_baseline,
    parse_dims,
    random_dims_baseline,
    selectivity,
    standardization_stats,
    train_val_split,
)

# ----------------------------------------------------------------------------- planted data


def planted(n=1500, m=500, D=24, K=2, seed=0, dtype=np.float16):
    """Gaussian features with varied scales/offsets; labels from a planted linear model on
    the first 6 dims (logistic noise), multinomial for K > 2."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + m, D)) * rng.uniform(0.3, 4.0, D) + rng.normal(0, 3, D)
    Xs = (X - X.mean(0)) / X.std(0)
    if K == 2:
        w = np.zeros(D)
        w[:6] = rng.normal(0, 1.0, 6)
        y = (Xs @ w + rng.logistic(size=n + m) > 0.3).astype(np.int64)
    else:
        W = np.zeros((D, K))
        W[:6] = rng.normal(0, 1.0, (6, K))
        y = np.argmax(Xs @ W + rng.gumbel(size=(n + m, K)), axis=1).astype(np.int64)
    X = X.astype(dtype)
    return X[:n], y[:n], X[n:], y[n:]


def sklearn_scores(Xtr, ytr, Xev, yev, dims, C, metrics, regression=False, solver="lbfgs"):
    """Reference: StandardScaler + LogisticRegression(C) (or Ridge(1/C)) per probe."""
    preds = []
    for d in dims:
        sc = StandardScaler().fit(Xtr[:, d].astype(np.float64))
        A, E = (
            sc.transform(Xtr[:, d].astype(np.float64)),
            sc.transform(Xev[:, d].astype(np.float64)),
        )
        est = (
            Ridge(alpha=1.0 / C)
            if regression
            else LogisticRegression(C=C, tol=1e-8, max_iter=2000, solver=solver)
        )
        preds.append(est.fit(A, ytr).predict(E))
    return batch_metrics(metrics, yev, np.stack(preds))


def random_dims(D, k, B, seed):
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(D, k, replace=False) for _ in range(B)])


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
    assert eng.last_stats_["converged"].all()


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
    eng = ProbeEngine()
    fit = eng.fit(Xtr, ytr, dims[:3])
    assert eng.last_stats_["converged"].all()
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
    small = ProbeEngine(memory_budget=600_000)
    d = small.fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy",))
    assert small.last_stats_["n_chunks"] > 1
    np.testing.assert_array_equal(a["accuracy"], b["accuracy"])
    np.testing.assert_array_equal(a["loss"], b["loss"])
    np.testing.assert_allclose(a["loss"], c["loss"], rtol=1e-5)
    np.testing.assert_allclose(a["accuracy"], d["accuracy"], atol=1.5 / len(yev))
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
    with pytest.raises(ConfigError):
        eng.fit_score(Xtr, ytr, Xev, yev, [[0, 99]])
    with pytest.raises(DataError):
        eng.fit_score(Xtr, np.zeros(len(ytr)), Xev, yev, [[0, 1]])
    with pytest.raises(DataError):
        eng.fit_score(Xtr, ytr[:-1], Xev, yev, [[0, 1]])
    with pytest.raises(ConfigError):
        eng.fit_score(Xtr, ytr, Xev, yev, [[0, 1]], metrics=("pearson",))
    with pytest.raises(ConfigError):
        ProbeEngine(C=0)


def test_separable_data_converges():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    eng = ProbeEngine(C=100.0)
    s1 = eng.fit_score(X[:300], y[:300], X[300:], y[300:], [[0]], metrics=("accuracy",))
    assert s1["accuracy"][0] >= 0.99 and eng.last_stats_["converged"].all()
    s2 = eng.fit_score(X[:300], y[:300], X[300:], y[300:], [[0, 1], [1, 2]], metrics=("accuracy",))
    assert s2["accuracy"][0] >= 0.98 and eng.last_stats_["converged"].all()


def test_standardization_stats_match_standard_scaler():
    X = np.random.default_rng(0).normal(3, 2, size=(300, 5)).astype(np.float16)
    X[:, 2] = 1.5
    mean, scale = standardization_stats(X)
    ss = StandardScaler().fit(X.astype(np.float64))
    np.testing.assert_allclose(mean, ss.mean_)
    np.testing.assert_allclose(scale, ss.scale_)


def test_parse_dims():
    assert parse_dims("all", 4).tolist() == [0, 1, 2, 3]
    assert parse_dims("12,200", 384).tolist() == [12, 200]
    assert parse_dims("-1", 384).tolist() == [383]
    with pytest.raises(ConfigError):
        parse_dims("12,x", 384)
    with pytest.raises(ConfigError):
        parse_dims("400", 384)


# ----------------------------------------------------------------------------- splits & baselines


def test_train_val_split_is_seeded_stratified_disjoint():
    y = np.array([0] * 70 + [1] * 30)
    tr, va = train_val_split(y, 0.2, seed=3)
    assert len(va) == 20 and len(tr) == 80
    assert np.intersect1d(tr, va).size == 0 and np.union1d(tr, va).tolist() == list(range(100))
    assert (y[va] == 1).sum() == 6
    tr2, va2 = train_val_split(y, 0.2, seed=3)
    np.testing.assert_array_equal(va, va2)
    _, va3 = train_val_split(y, 0.2, seed=4)
    assert not np.array_equal(va, va3)
    tr_r, va_r = train_val_split(np.linspace(0, 5, 50), 0.2, seed=0)  # regression: quintile strata
    assert len(va_r) == 10
    with pytest.raises(ConfigError):
        train_val_split(y, 1.5)


def test_majority_and_random_baselines():
    Xtr, ytr, Xev, yev = planted(K=2, seed=4)
    maj = majority_baseline(ytr, yev, ("accuracy", "mcc"))
    major = np.bincount(ytr).argmax()
    assert maj["accuracy"] == pytest.approx((yev == major).mean()) and maj["mcc"] == 0.0
    reg = majority_baseline(np.arange(5.0), np.arange(3.0), ("pearson",), regression=True)
    assert np.isnan(reg["pearson"])
    eng = ProbeEngine()
    rb = random_dims_baseline(
        eng, Xtr, ytr, Xev, yev, k=2, n_draws=15, seed=1, metrics=("accuracy",)
    )
    assert rb["k"] == 2 and rb["n_draws"] == 15 and len(rb["scores"]["accuracy"]) == 15
    assert len({tuple(d) for d in rb["dims"]}) > 1
    assert rb["mean"]["accuracy"] == pytest.approx(np.mean(rb["scores"]["accuracy"]))
    assert (
        random_dims_baseline(eng, Xtr, ytr, Xev, yev, k=2, n_draws=15, seed=1)["dims"] == rb["dims"]
    )


def test_control_task():
    ids = np.array([101, 5, 6, 102, 101, 5, 9, 102, 101, 7, 102])
    off = np.array([0, 4, 8, 11])
    special = np.isin(ids, [101, 102])
    assert input_types(ids, off, special) == [5, 5, 7]
    assert input_types(ids, off, special, mode="sequence") == [(5, 6), (5, 9), (7,)]
    rng = np.random.default_rng(0)
    types_tr = rng.integers(0, 30, 600).tolist()
    types_ev = rng.integers(0, 30, 200).tolist()
    y = rng.integers(0, 2, 600)
    yc_tr, yc_ev = control_task_labels(types_tr, y, types_ev, seed=5)
    table = {}
    for t, lab in zip(types_tr + types_ev, np.concatenate([yc_tr, yc_ev])):
        assert table.setdefault(t, lab) == lab  # one label per type
    again = control_task_labels(list(reversed(types_tr)), y, None, seed=5)[0]
    np.testing.assert_array_equal(again, yc_tr[::-1])  # independent of example order
    # a probe that can read the type memorises the control task; one that cannot, cannot
    X = np.zeros((800, 2), np.float32)
    X[:, 0] = np.asarray(types_tr + types_ev) * 0.1
    X[:, 1] = rng.normal(size=800)
    yy = np.concatenate([y, rng.integers(0, 2, 200)])
    out = control_task_baseline(
        ProbeEngine(), X[:600], yy[:600], X[600:], yy[600:], [[0], [1]], types_tr, types_ev, seed=5
    )
    assert set(out) == {"task", "control", "selectivity"}
    np.testing.assert_allclose(
        out["selectivity"]["accuracy"], out["task"]["accuracy"] - out["control"]["accuracy"]
    )
    assert selectivity({"accuracy": 0.9, "loss": 1}, {"accuracy": 0.6})[
        "accuracy"
    ] == pytest.approx(0.3)


# ----------------------------------------------------------------------------- estimator


def test_linear_probe_backends_agree():
    Xtr, ytr, Xev, yev = planted(K=2, seed=9)
    a = LinearProbe(C=0.3, backend="sklearn", tol=1e-8).fit(Xtr, ytr)
    b = LinearProbe(C=0.3, backend="torch", tol=1e-8).fit(Xtr, ytr)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-4)
    assert abs(a.score(Xev, yev) - b.score(Xev, yev)) <= 0.004
    Xtr3, ytr3, Xev3, yev3 = planted(K=3, seed=9)
    a3 = LinearProbe(backend="sklearn", tol=1e-8).fit(Xtr3, ytr3)
    b3 = LinearProbe(backend="torch", tol=1e-8).fit(Xtr3, ytr3)
    np.testing.assert_allclose(a3.coef_, b3.coef_, atol=5e-4)
    np.testing.assert_allclose(a3.predict_proba(Xev3), b3.predict_proba(Xev3), atol=1e-4)
    yr = Xtr.astype(np.float64) @ np.arange(24) / 24
    r1 = LinearProbe(regression=True, backend="sklearn").fit(Xtr, yr)
    r2 = LinearProbe(regression=True, backend="torch").fit(Xtr, yr)
    np.testing.assert_allclose(r1.coef_, r2.coef_, atol=1e-5)


def _checks():
    from sklearn.utils.estimator_checks import parametrize_with_checks

    ests = [
        LinearProbe(),
        LinearProbe(backend="torch"),
        LinearProbe(regression=True),
        LinearProbe(regression=True, backend="torch"),
    ]
    # every applicable check passes; none needs to be marked as an expected failure
    return parametrize_with_checks(ests)


@_checks()
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ----------------------------------------------------------------------------- compiled kernels


@pytest.mark.slow
def test_compiled_kernels_match_eager():
    """The torch.compile path gives the eager path's answers (marked slow: compiling costs
    seconds to a minute on a cold cache)."""
    Xtr, ytr, Xev, yev = planted(n=3000, K=2, seed=12)
    dims = np.stack(np.triu_indices(24, 1), 1)  # all 276 pairs
    a = ProbeEngine(compile=False).fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy", "f1"))
    eng = ProbeEngine(compile=True)
    b = eng.fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy", "f1"))
    assert eng.last_stats_["compiled"]
    assert np.abs(a["accuracy"] - b["accuracy"]).max() <= 1.5 / len(yev)
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-4)


def test_compile_failure_falls_back(monkeypatch):
    import probekit.probes.kernels as P

    def broken(*a, **k):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(P.torch, "compile", broken)
    monkeypatch.setattr(P, "_COMPILED", {})
    monkeypatch.setattr(P, "_COMPILE_FAILED", set())
    Xtr, ytr, Xev, yev = planted(K=2, seed=13)
    dims = random_dims(24, 2, 100, seed=0)
    a = ProbeEngine(compile=True).fit_score(Xtr, ytr, Xev, yev, dims)
    b = ProbeEngine(compile=False).fit_score(Xtr, ytr, Xev, yev, dims)
    np.testing.assert_array_equal(a["accuracy"], b["accuracy"])


# ----------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def tiny_probe_caches(tmp_path_factory, tiny_model_dir):
    from probekit.extract import extract
    from probekit.models import load_encoder
    from probekit.tasks import load_task

    lm = load_encoder(str(tiny_model_dir), device="cpu")
    out = tmp_path_factory.mktemp("probe_caches")
    paths = {}
    for split, limit in (("train", 200), ("dev", 100)):
        paths[split] = out / f"demo-{split}.h5"
        extract(lm, load_task("demo", split, limit=limit), paths[split], progress=False)
    return paths


def test_cli_probe(tiny_probe_caches, tmp_path, capsys):
    import json

    from cli import main

    tr, dv = str(tiny_probe_caches["train"]), str(tiny_probe_caches["dev"])
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "probe",
                "--train",
                tr,
                "--eval",
                dv,
                "--layer",
                "-1",
                "--pool",
                "mean",
                "--dims",
                "3,17",
                "--n-random",
                "5",
                "--control",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "majority" in text and "random 2 dims" in text and "selectivity" in text
    d = json.loads(out.read_text())
    for key in (
        "metrics",
        "dims",
        "layer",
        "pool",
        "n_train",
        "n_eval",
        "majority_baseline",
        "random_baseline",
        "config",
        "versions",
        "seed",
        "wall_time_s",
        "control",
        "val_metrics",
    ):
        assert key in d, key
    assert d["dims"] == [3, 17] and d["layer"] == 2 and d["pool"] == "mean" and d["n_train"] == 200
    assert set(d["metrics"]) == {"accuracy"} and d["random_baseline"]["n_draws"] == 5
    assert main(["probe", "--train", tr, "--eval", dv, "--layer", "0", "--out", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["k"] == 32 and d["layer"] == 0 and d["random_baseline"]["n_draws"] == 0
    assert main(["probe", "--train", tr, "--eval", dv, "--dims", "3,x", "--out", str(out)]) == 2
    assert (
        main(["probe", "--train", tr, "--eval", str(tmp_path / "missing.h5"), "--out", str(out)])
        == 2
    )


# ----------------------------------------------------------------------------- real data


def _parity_on_real(Xtr, ytr, Xev, yev, metric, n_subsets=200, seed=0):
    """Engine vs scikit-learn LogisticRegression(C=1) per probe on random subsets of sizes 1,
    2, 3, 16 and on all dimensions. scikit-learn runs its exact Newton solver
    (``newton-cholesky``: the same objective as its default lbfgs, solved to the optimum, and
    5x faster here, which keeps this test short; the benchmark compares against lbfgs).
    Returns ``{k: (median |diff|, max |diff|)}``."""
    D = Xtr.shape[1]
    rng = np.random.default_rng(seed)
    report = {}
    for k in (1, 2, 3, 16, D):
        B = 1 if k == D else n_subsets
        dims = np.stack([np.sort(rng.choice(D, k, replace=False)) for _ in range(B)])
        got = ProbeEngine(C=1.0).fit_score(Xtr, ytr, Xev, yev, dims, metrics=(metric,))[metric]
        preds = []
        for d in dims:
            sc = StandardScaler().fit(Xtr[:, d].astype(np.float64))
            lr = LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=1000).fit(
                sc.transform(Xtr[:, d].astype(np.float64)), ytr
            )
            preds.append(lr.predict(sc.transform(Xev[:, d].astype(np.float64))))
        ref = batch_metrics((metric,), yev, np.stack(preds))[metric]
        diff = np.abs(got - ref)
        report[k] = (float(np.median(diff)), float(diff.max()))
    return report


@pytest.mark.integration
@pytest.mark.parametrize("task,limit,metric", [("sst2", 3000, "accuracy"), ("cola", 2000, "mcc")])
def test_real_parity_with_sklearn(minilm_cache, task, limit, metric):
    from probekit.cache import ActivationCache

    with (
        ActivationCache(minilm_cache(task, "train", limit=limit)) as tr,
        ActivationCache(minilm_cache(task, "dev")) as dv,
    ):
        Xtr, ytr = tr.features(-1, "cls"), tr.labels
        Xev, yev = dv.features(-1, "cls"), dv.labels
    assert Xtr.dtype == np.float16  # the engine takes the cache's dtype as it is
    report = _parity_on_real(Xtr, ytr, Xev, yev, metric)
    for k, (med, mx) in report.items():
        assert med <= 0.002 and mx <= 0.01, (task, k, med, mx, report)


# ----------------------------------------------------------------------------- mutation guards


def test_compile_failure_at_run_time_falls_back_to_eager(monkeypatch, caplog):
    """torch.compile succeeds but the compiled kernel raises when called: the engine logs it,
    runs the same kernels eagerly (identical answers), and does not retry the broken kernel."""
    import logging

    import probekit.probes.kernels as P

    calls = []

    def fake_compile(fn, **kw):
        def broken(*a, **k):
            calls.append(fn.__name__)
            raise RuntimeError("inductor exploded")

        return broken

    monkeypatch.setattr(P.torch, "compile", fake_compile)
    monkeypatch.setattr(P, "_COMPILED", {})
    monkeypatch.setattr(P, "_COMPILE_FAILED", set())
    Xtr, ytr, Xev, yev = planted(K=2, seed=13)
    dims = random_dims(24, 2, 100, seed=0)
    with caplog.at_level(logging.WARNING, logger="probekit"):
        a = ProbeEngine(compile=True).fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy",))
        a2 = ProbeEngine(compile=True).fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy",))
    b = ProbeEngine(compile=False).fit_score(Xtr, ytr, Xev, yev, dims, metrics=("accuracy",))
    assert calls and len(calls) == len(set(calls))  # each broken kernel was tried once only
    assert "falling back to eager" in caplog.text
    for s in (a, a2):
        np.testing.assert_array_equal(s["accuracy"], b["accuracy"])
        np.testing.assert_allclose(s["loss"], b["loss"], rtol=1e-5)  # fused sums, run eagerly


def _softplus(z):
    return np.logaddexp(0.0, z)


@pytest.mark.parametrize("K", [2, 3])
def test_eval_labels_missing_from_training_classes(K):
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


def test_control_task_probe_is_fitted_on_control_labels():
    """Two input types, read off dimension 0; the real labels do not depend on the type. A
    probe on dimension 0 memorises the control task (each type has one control label) but
    cannot predict the real labels, so the control score is high and the task score near
    chance: the control probe must be fitted on the control labels, not the real ones."""
    rng = np.random.default_rng(3)
    types_tr = rng.integers(0, 2, 600).tolist()
    types_ev = rng.integers(0, 2, 300).tolist()
    t = np.asarray(types_tr + types_ev)
    X = np.stack([t + 0.05 * rng.normal(size=900), rng.normal(size=900)], 1).astype(np.float32)
    y = rng.integers(0, 2, 900)
    seed = next(  # a seed for which the two types draw different control labels
        s
        for s in range(50)
        if len(np.unique(control_task_labels(types_tr, y[:600], types_ev, seed=s)[0])) == 2
    )
    yc_tr, yc_ev = control_task_labels(types_tr, y[:600], types_ev, seed=seed)
    eng = ProbeEngine()
    out = control_task_baseline(
        eng, X[:600], y[:600], X[600:], y[600:], [[0]], types_tr, types_ev, seed=seed
    )
    assert out["control"]["accuracy"][0] == 1.0
    assert out["task"]["accuracy"][0] < 0.6
    ref = eng.fit_score(X[:600], yc_tr, X[600:], yc_ev, [[0]], metrics=("accuracy",))
    np.testing.assert_array_equal(out["control"]["loss"], ref["loss"])
    assert out["selectivity"]["accuracy"][0] == pytest.approx(out["task"]["accuracy"][0] - 1.0)
