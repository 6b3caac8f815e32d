"""Dimension search: stumps, singles, pairs, greedy, eliminate, layers, tokens; protocol,
stability, resume, Dask fan-out, CLI; and a real-data check on MiniLM / SST-2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from probekit import search as S
from probekit.errors import CacheMismatchError, ConfigError, DataError
from probekit.search import ArraySource
from probekit.stumps import fit_stumps, predict_stumps

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


@pytest.fixture(scope="module")
def data384():
    Xt, yt = planted(500, seed=0)
    Xd, yd = planted(400, seed=1)
    return ArraySource(Xt, yt), ArraySource(Xd, yd)


# ----------------------------------------------------------------------------- stumps


def _brute(x, y, metric, C=2, reg=False):
    from sklearn.metrics import f1_score, matthews_corrcoef

    vals = np.unique(x)
    cands = np.concatenate([[-np.inf], (vals[:-1] + vals[1:]) / 2, [np.inf]])
    best = -np.inf
    for t in cands:
        low = x <= t
        if reg:
            p = np.where(
                low, y[low].mean() if low.any() else 0, y[~low].mean() if (~low).any() else 0
            )
            best = max(best, 1 - ((y - p) ** 2).sum() / ((y - y.mean()) ** 2).sum())
        elif C == 2:
            for a, b in ((0, 1), (1, 0)):
                p = np.where(low, a, b)
                s = {
                    "accuracy": lambda: (p == y).mean(),
                    "mcc": lambda: matthews_corrcoef(y, p),
                    "f1": lambda: f1_score(y, p, zero_division=0),
                }[metric]()
                best = max(best, s)
        else:
            lc = np.bincount(y[low], minlength=C).max() if low.any() else 0
            rc = np.bincount(y[~low], minlength=C).max() if (~low).any() else 0
            best = max(best, (lc + rc) / len(y))
    return best


@pytest.mark.parametrize("metric", ["accuracy", "mcc", "f1"])
def test_stumps_exact_binary(metric):
    from sklearn.metrics import f1_score, matthews_corrcoef

    rng = np.random.default_rng(3)
    for _ in range(3):
        X = np.round(rng.standard_normal((70, 6)), 1).astype(np.float16)  # many ties
        X[:, 0] = -0.0
        X[:4, 0] = 0.0  # -0.0 and +0.0 are one value
        y = (X[:, 1] + 0.5 * rng.standard_normal(70) > 0.2).astype(int)
        Xc = X.copy()
        fit = fit_stumps(X, y, metric=metric)
        np.testing.assert_array_equal(X, Xc)  # input untouched
        want = [_brute(X[:, j].astype(np.float64), y, metric) for j in range(6)]
        np.testing.assert_allclose(fit.train_score, want, atol=1e-12)
        pred = predict_stumps(fit, X)
        got = {
            "accuracy": lambda p: (p == y).mean(),
            "mcc": lambda p: matthews_corrcoef(y, p),
            "f1": lambda p: f1_score(y, p, zero_division=0),
        }[metric]
        np.testing.assert_allclose([got(p) for p in pred], fit.train_score, atol=1e-12)
        assert fit.train_score[0] == pytest.approx(
            _brute(np.zeros(70), y, metric)
        )  # constant column


def test_stumps_exact_multiclass_and_regression():
    rng = np.random.default_rng(4)
    X = np.round(rng.standard_normal((80, 5)), 1).astype(np.float32)
    y3 = np.clip(np.round(X[:, 2] + rng.standard_normal(80) * 0.5).astype(int) + 1, 0, 2)
    fit = fit_stumps(X, y3)
    np.testing.assert_allclose(
        fit.train_score, [_brute(X[:, j].astype(np.float64), y3, "accuracy", C=3) for j in range(5)]
    )
    np.testing.assert_allclose((predict_stumps(fit, X) == y3).mean(1), fit.train_score)
    yr = 2.0 * X[:, 3] + rng.standard_normal(80)
    fit = fit_stumps(X, yr, regression=True)
    np.testing.assert_allclose(
        fit.train_score,
        [_brute(X[:, j].astype(np.float64), yr, None, reg=True) for j in range(5)],
        atol=1e-10,
    )
    assert fit.train_score.argmax() == 3
    with pytest.raises(DataError):
        fit_stumps(np.array([[np.nan], [1.0]]), np.array([0, 1]))
    with pytest.raises(DataError):
        fit_stumps(X, y3[:10])


def test_stumps_chunked_equal():
    X, y = planted(300, D=50, L=1)
    a = fit_stumps(X[:, 0], y)
    b = fit_stumps(X[:, 0], y, chunk_elems=300 * 7)  # 7 dims per chunk
    np.testing.assert_array_equal(a.threshold, b.threshold)
    np.testing.assert_array_equal(a.train_score, b.train_score)


# ----------------------------------------------------------------------------- searches, planted


def _common_fields(d):
    for key in (
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
    assert d["random_baseline"]["n_draws"] >= 20
    assert len(d["random_baseline"]["scores"]["accuracy"]) == d["random_baseline"]["n_draws"]
    assert d["random_baseline"]["k"] == len(d["selected"])


def test_singles_planted(data384, tmp_path):
    tr, dv = data384
    res = S.singles(tr, dv, out_dir=tmp_path)
    d = res.data
    _common_fields(d)
    top2 = {(r["layer"], r["dim"]) for r in d["top"][:2]}
    assert top2 == {(1, 17), (1, 203)}
    assert d["layer"] == 1 and d["selected"][0] in PLANTED
    assert len(res.rows) == 2 * 384
    ranked_stump = sorted(res.rows, key=lambda r: r["rank_stump"])[:2]
    assert {(r["layer"], r["dim"]) for r in ranked_stump} == {(1, 17), (1, 203)}
    assert d["metrics"]["accuracy"] > d["random_baseline"]["mean"]["accuracy"] + 0.1
    assert (tmp_path / "singles.json").exists() and (tmp_path / "singles.csv").exists()
    assert json.loads((tmp_path / "singles.json").read_text())["verb"] == "singles"


def test_pairs_planted(tmp_path):
    Xt, yt = planted(300, D=256, L=1)
    Xd, yd = planted(300, D=256, L=1, seed=1)
    res = S.pairs(ArraySource(Xt, yt), ArraySource(Xd, yd), out_dir=tmp_path, top=5)
    d = res.data
    _common_fields(d)
    assert d["selected"] == list(PLANTED)
    assert d["n_pairs"] == 256 * 255 // 2
    M = np.load(tmp_path / "pairs_matrix.npy")
    assert M.shape == (256, 256)
    assert np.isnan(np.diag(M)).all()
    np.testing.assert_array_equal(M, M.T)
    assert np.nanargmax(M) in (17 * 256 + 203, 203 * 256 + 17)
    assert d["metrics"]["accuracy"] > 0.85
    assert len(d["top"]) == 5 and d["top"][0]["dim_a"] == 17


def test_greedy_planted_and_stability(data384, tmp_path):
    tr, dv = data384
    res = S.greedy(tr, dv, k=3, repeats=3, out_dir=tmp_path)
    d = res.data
    _common_fields(d)
    assert set(d["selected"][:2]) == set(PLANTED)
    assert [c["step"] for c in d["curve"]] == [1, 2, 3]
    assert d["metrics"] == d["curve"][-1]["dev"]
    assert d["metrics"]["accuracy"] > d["random_baseline"]["mean"]["accuracy"] + 0.25
    st = d["stability"]
    assert st["n_repeats"] == 3 and st["frequency"][17] == 1.0 and st["frequency"][203] == 1.0
    assert 0 < st["jaccard_min"] <= st["jaccard_mean"] <= 1
    rows = (tmp_path / "greedy.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("step,dim")
    # early stop within a fraction of the full-dimension validation score
    Xs, ys = planted(600, D=20, L=1)
    small = ArraySource(Xs, ys)
    res2 = S.greedy(small, small, k=10, within=0.02)
    assert res2["full_val_score"] > 0.85
    assert sorted(res2["selected"]) == sorted(planted_dims(20)) and res2["stopped"] == "within"
    # score-test screen: only 8 candidates fitted per step, same choice on planted data
    scr = S.greedy(tr, dv, k=3, screen=8)
    assert scr["selected"][:2] == d["selected"][:2]
    assert [c["n_fitted"] for c in scr["curve"]] == [8, 8, 8]
    # selection by validation loss instead of accuracy
    assert set(S.greedy(tr, dv, k=2, criterion="loss")["selected"]) == set(PLANTED)
    with pytest.raises(ConfigError):
        S.greedy(tr, dv, k=2, criterion="auc")
    # bootstrap repeats
    res3 = S.greedy(tr, dv, k=2, repeats=2, resample="bootstrap")
    assert res3["stability"]["resample"] == "bootstrap"
    assert set(res3["selected"]) == set(PLANTED)


def test_eliminate_planted(data384, tmp_path):
    tr, dv = data384
    start = [5, 17, 99, 203, 300]
    res = S.eliminate(tr, dv, start=start, k=2, out_dir=tmp_path)
    d = res.data
    _common_fields(d)
    assert set(d["selected"]) == set(PLANTED)
    assert d["best_pair"] == list(PLANTED)
    exact = [s for s in d["steps"] if s["method"] == "exact"]
    assert [s["size"] for s in exact] == [5, 4, 3]
    assert all(
        set(map(int, s["drops"])) <= set(start) and len(s["drops"]) == s["size"] for s in exact
    )
    # removing a planted dimension costs far more than removing a noise dimension
    assert min(d["final_drops"].values()) > 0.1
    # from 3 random dimensions (the paper's start) plus the default k=2
    r3 = S.eliminate(tr, dv, start=3, seed=1)
    assert len(r3["selected"]) == 2 and len(r3["start"]) == 3
    # from all dimensions: weight-based cut to exact_max, then remove-one
    ra = S.eliminate(tr, dv, start="all", k=3, exact_max=12)
    assert set(PLANTED) <= set(ra["selected"])
    assert {s["method"] for s in ra["steps"]} == {"weights", "exact"}
    assert ra["best_pair"] == list(PLANTED)


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
    scr = S._Screen(
        S._Problem(
            X[:, 0],
            yr.astype(np.float64),
            X[:5, 0],
            yr[:5].astype(np.float64),
            S._Settings(regression=True, metrics=("pearson",)),
        )
    )
    assert np.argsort(-scr.stats([], np.arange(50)))[:2].tolist() == [3, 17]
    assert np.argmax(scr.stats([3], np.arange(50))) == 17


def test_other_task_kinds():
    """MCC (CoLA), regression (STS-B-like) and three classes go through the same searches."""
    from probekit.tasks import get_task

    rng = np.random.default_rng(6)
    X = rng.standard_normal((400, 1, 30)).astype(np.float32)
    yb = (X[:, 0, 4] + 0.3 * rng.standard_normal(400) > 0.8).astype(np.int64)  # imbalanced
    cola = ArraySource(X, yb, task=get_task("cola"))
    r = S.singles(cola, cola)
    assert r["selected"] == [4] and set(r["metrics"]) == {"mcc"} and r["primary_metric"] == "mcc"
    yr = X[:, 0, 9] * 2 + 0.5 * rng.standard_normal(400)
    reg = ArraySource(X, yr, task=get_task("stsb"))
    for res in (S.singles(reg, reg), S.pairs(reg, reg), S.eliminate(reg, reg, start=[1, 9, 20])):
        assert 9 in res["selected"] and set(res["metrics"]) == {"pearson", "spearman"}
    y3 = np.digitize(X[:, 0, 2], [-0.5, 0.5])
    tri = ArraySource(X, y3, task=get_task("mnli"))
    assert S.singles(tri, tri)["selected"] == [2]
    assert 2 in S.eliminate(tri, tri, start=[2, 5, 7], k=1)["selected"]


def test_layers_and_tokens_planted(tmp_path):
    Xt, yt = planted(400, D=64, L=3)
    Xd, yd = planted(300, D=64, L=3, seed=1)
    perm = np.random.default_rng(0).permutation(64)  # the "mean" pool: dims shuffled
    tr = ArraySource({"cls": Xt, "mean": Xt[:, :, perm]}, yt)
    dv = ArraySource({"cls": Xd, "mean": Xd[:, :, perm]}, yd)
    res = S.layers(tr, dv, k=2, out_dir=tmp_path)
    per = {r["layer"]: r for r in res["per_layer"]}
    assert sorted(per) == [0, 1, 2]
    assert per[2]["best_pair"] == list(planted_dims(64))
    assert set(per[2]["greedy_selected"]) == set(planted_dims(64))
    assert res["layer"] == 2
    assert per[2]["greedy_metrics"]["accuracy"] > per[0]["greedy_metrics"]["accuracy"] + 0.2
    _common_fields(res.data)
    tk = S.tokens(tr, dv, k=2, pools=["cls", "mean"], out_dir=tmp_path)
    pp = {r["pool"]: r for r in tk["per_pool"]}
    inv = np.argsort(perm)
    assert set(pp["mean"]["greedy_selected"]) == {int(inv[d]) for d in pp["cls"]["greedy_selected"]}
    _common_fields(tk.data)
    with pytest.raises(ConfigError):
        S.tokens(tr, dv, pools=["max_norm"])


# ----------------------------------------------------------------------------- protocol & errors


def test_selection_never_sees_dev(data384):
    """Shuffling dev labels changes reported scores but not what is selected."""
    tr, dv = data384
    rng = np.random.default_rng(0)
    y_bad = rng.permutation(dv.labels)
    dv_bad = ArraySource(dv._features, y_bad)
    a = S.greedy(tr, dv, k=2, n_random=20)
    b = S.greedy(tr, dv_bad, k=2, n_random=20)
    assert a["selected"] == b["selected"]
    assert b["metrics"]["accuracy"] < 0.65 < a["metrics"]["accuracy"]


def test_errors(data384):
    tr, dv = data384
    other = ArraySource(np.zeros((10, 2, 8), np.float32), np.arange(10) % 2)
    with pytest.raises(CacheMismatchError):
        S.greedy(tr, other)
    with pytest.raises(ConfigError):
        S.greedy(tr, dv, k=0)
    with pytest.raises(ConfigError):
        S.eliminate(tr, dv, start="5,x")
    with pytest.raises(ConfigError):
        S.run_search("nope", tr, dv)
    unl = ArraySource(dv._features, np.where(np.arange(dv.n_examples) == 0, -1, dv.labels))
    with pytest.raises(DataError, match="unlabelled"):
        S.greedy(tr, unl, k=1)


# ----------------------------------------------------------------------------- resume


def test_resume_greedy_continues(monkeypatch, tmp_path):
    Xt, yt = planted(300, D=48, L=1)
    Xd, yd = planted(200, D=48, L=1, seed=1)
    tr, dv = ArraySource(Xt, yt), ArraySource(Xd, yd)
    calls = {"n": 0, "fail_at": 3}
    orig = S._Problem.select

    def counting(self, dims):
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            raise KeyboardInterrupt
        return orig(self, dims)

    monkeypatch.setattr(S._Problem, "select", counting)
    with pytest.raises(KeyboardInterrupt):
        S.greedy(tr, dv, k=4, out_dir=tmp_path)
    assert not (tmp_path / "greedy.json").exists()
    ck = list((tmp_path / ".probekit-ckpt").glob("greedy-*/repeat-0.json"))
    assert len(ck) == 1 and len(json.loads(ck[0].read_text())["selected"]) == 2
    calls.update(n=0, fail_at=-1)
    res = S.greedy(tr, dv, k=4, out_dir=tmp_path)
    assert calls["n"] == 2  # steps 3 and 4 only
    monkeypatch.setattr(S._Problem, "select", orig)
    fresh = S.greedy(tr, dv, k=4)
    assert res["selected"] == fresh["selected"] and res["metrics"] == fresh["metrics"]
    # other arguments: a different checkpoint, computed afresh
    monkeypatch.setattr(S._Problem, "select", counting)
    calls.update(n=0)
    S.greedy(tr, dv, k=4, seed=1, out_dir=tmp_path)
    assert calls["n"] == 4
    assert len(list((tmp_path / ".probekit-ckpt").glob("greedy-*"))) == 2


def test_resume_pairs_chunks(tmp_path):
    Xt, yt = planted(200, D=40, L=1)
    Xd, yd = planted(100, D=40, L=1, seed=1)
    tr, dv = ArraySource(Xt, yt), ArraySource(Xd, yd)
    a = S.pairs(tr, dv, chunk=100, out_dir=tmp_path)
    chunks = sorted((tmp_path / ".probekit-ckpt").glob("pairs-*/pairs-*.npy"))
    assert len(chunks) == 8  # 780 pairs in chunks of 100
    for c in chunks[::2]:
        c.unlink()
    b = S.pairs(tr, dv, chunk=100, out_dir=tmp_path)
    assert a["selected"] == b["selected"] == list(planted_dims(40))
    np.testing.assert_array_equal(np.load(tmp_path / "pairs_matrix.npy"), a.arrays["pairs_matrix"])


# ----------------------------------------------------------------------------- Dask


def test_dask_matches_local():
    pytest.importorskip("distributed")
    import joblib
    from dask.distributed import Client, LocalCluster, get_task_stream

    Xt, yt = planted(300, D=40, L=2)
    Xd, yd = planted(150, D=40, L=2, seed=1)
    tr, dv = ArraySource(Xt, yt), ArraySource(Xd, yd)
    local = S.greedy(tr, dv, k=2, repeats=2, n_random=20)
    local_s = S.singles(tr, dv, n_jobs=1)
    with joblib.parallel_config(backend="loky", n_jobs=2):  # worker processes: everything pickles
        loky = S.greedy(tr, dv, k=2, repeats=2, n_random=20)
    assert loky["selected"] == local["selected"] and loky["stability"] == local["stability"]
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=False,
            protocol="tcp",
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        assert client.scheduler.address.startswith("tcp://127.0.0.1")
        with joblib.parallel_config(backend="dask"), get_task_stream(client) as ts:
            remote = S.greedy(tr, dv, k=2, repeats=2, n_random=20)
            remote_s = S.singles(tr, dv)
        assert len(ts.data) >= 4  # 2 repeats + 2 layers ran on the cluster
    for key in ("selected", "metrics", "full_metrics", "random_baseline", "curve", "stability"):
        a, b = local[key], remote[key]
        if key == "curve":
            a = [{k: v for k, v in c.items() if k != "seconds"} for c in a]
            b = [{k: v for k, v in c.items() if k != "seconds"} for c in b]
        assert a == b, key
    assert local_s["top"] == remote_s["top"]


def test_ray_matches_local(monkeypatch):
    """The ray joblib backend (probekit-dims[ray]) gives the local result; skipped without ray."""
    ray = pytest.importorskip("ray")
    import joblib
    from ray.util.joblib import register_ray

    Xt, yt = planted(300, D=40, L=2)
    Xd, yd = planted(150, D=40, L=2, seed=1)
    tr, dv = ArraySource(Xt, yt), ArraySource(Xd, yd)
    local = S.greedy(tr, dv, k=2, repeats=2, n_random=20)
    backends = []
    make = S._parallel

    def spy(n_jobs):  # which joblib backend the search's fan-out really used
        par = make(n_jobs)
        backends.append(type(par._backend).__name__)
        return par

    monkeypatch.setattr(S, "_parallel", spy)
    register_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with joblib.parallel_config(backend="ray", n_jobs=2):
            remote = S.greedy(tr, dv, k=2, repeats=2, n_random=20)
    finally:
        ray.shutdown()
    assert backends and all(b == "RayBackend" for b in backends), backends
    for key in ("selected", "metrics", "full_metrics", "random_baseline", "stability"):
        assert local[key] == remote[key], key


def test_run_many_over_tasks_and_seeds(tiny_caches, tmp_path):
    """Fan-out over tasks (here: two sources) and seeds through joblib, cache paths opened in workers."""
    import joblib

    Xa, ya = planted(300, D=40, L=1)
    Xb, yb = planted(300, D=40, L=1, seed=3)
    specs = [
        dict(verb="greedy", train=ArraySource(Xa, ya), eval=ArraySource(Xb, yb), k=2, seed=s)
        for s in (0, 1)
    ]
    specs.append(
        dict(
            verb="singles",
            train=str(tiny_caches["train"]),
            eval=str(tiny_caches["dev"]),
            layers=[-1],
            out_dir=tmp_path / "tiny",
        )
    )
    with joblib.parallel_config(backend="threading", n_jobs=2):
        res = S.run_many(specs)
    assert [r.verb for r in res] == ["greedy", "greedy", "singles"]
    assert all(set(r["selected"]) == set(planted_dims(40)) for r in res[:2])
    assert (tmp_path / "tiny" / "singles.json").exists()
    with pytest.raises(ConfigError):
        S.run_many([dict(verb="greedy", train=specs[0]["train"])])


# ----------------------------------------------------------------------------- CLI on real cache files


@pytest.fixture(scope="module")
def tiny_caches(tmp_path_factory, tiny_model_dir):
    from probekit.extract import extract
    from probekit.models import load_encoder
    from probekit.tasks import load_task

    lm = load_encoder(str(tiny_model_dir), device="cpu")
    out = tmp_path_factory.mktemp("tiny_caches")
    paths = {}
    for split, limit in (("train", 240), ("dev", 120)):
        paths[split] = out / f"demo-{split}.h5"
        extract(lm, load_task("demo", split, limit=limit), paths[split], store_tokens=False)
    return paths


def test_cli_search_and_report(tiny_caches, tmp_path, capsys):
    from cli import main

    tr, dv = str(tiny_caches["train"]), str(tiny_caches["dev"])
    out = tmp_path / "res"
    assert (
        main(["search", "greedy", "--train", tr, "--eval", dv, "--k", "2", "--out", str(out)]) == 0
    )
    text = capsys.readouterr().out
    assert "selected" in text and "random" in text and "full" in text
    d = json.loads((out / "greedy.json").read_text())
    assert len(d["selected"]) == 2 and d["train"]["model_hash"] and d["task"] == "demo"
    assert (
        main(
            [
                "search",
                "tokens",
                "--train",
                tr,
                "--eval",
                dv,
                "--k",
                "1",
                "--out",
                str(out),
                "--backend",
                "threading",
                "--n-jobs",
                "2",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "search",
                "singles",
                "--train",
                tr,
                "--eval",
                dv,
                "--layers",
                "0,-1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert (
        main(
            ["search", "eliminate", "--train", tr, "--eval", dv, "--start", "4", "--out", str(out)]
        )
        == 0
    )
    assert (
        main(["search", "greedy", "--train", tr, "--eval", dv, "--k", "0", "--out", str(out)]) == 2
    )
    assert main(["report", str(out)]) == 0
    assert (out / "report" / "report.md").exists()
    # rerun: resumes from the checkpoint and gives the same result
    assert (
        main(["search", "greedy", "--train", tr, "--eval", dv, "--k", "2", "--out", str(out)]) == 0
    )
    assert json.loads((out / "greedy.json").read_text())["selected"] == d["selected"]


def test_cli_mismatched_caches(tiny_caches, tmp_path, capsys):
    from cli import main

    tr = str(tiny_caches["train"])
    rc = main(
        [
            "search",
            "greedy",
            "--train",
            tr,
            "--eval",
            str(tmp_path / "missing.h5"),
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 2


# ----------------------------------------------------------------------------- real data


@pytest.mark.integration
def test_real_sst2_greedy_beats_random(minilm_cache, tmp_path):
    from probekit.cache import ActivationCache

    with (
        ActivationCache(minilm_cache("sst2", "train", limit=3000)) as tr,
        ActivationCache(minilm_cache("sst2", "dev")) as dv,
    ):
        # mean pooling of the last layer: the model's own sentence embedding (frozen, not fine-tuned)
        res = S.greedy(tr, dv, k=3, layer=-1, pool="mean", out_dir=tmp_path)
    d = res.data
    acc = d["metrics"]["accuracy"]
    rb = d["random_baseline"]
    assert rb["k"] == 3 and rb["n_draws"] >= 20
    margin = acc - rb["mean"]["accuracy"]
    assert margin > max(0.05, 2 * rb["std"]["accuracy"]), (acc, rb["mean"], rb["std"])
    assert acc > max(rb["scores"]["accuracy"])  # better than every random draw
    assert d["full_metrics"]["accuracy"] > 0.75
