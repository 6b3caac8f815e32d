"""greedy: forward selection, early stop, candidate shortlist, score-test screen, criterion,
repeats and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
from search_data import PLANTED, common_fields, data384, planted, planted_dims

from probekit import search as S
from probekit.errors import ConfigError
from probekit.search import ArraySource


def test_greedy_candidates_restrict_the_search():
    tr, dv = data384()
    # an explicit list: only those dimensions can be chosen (203 is planted but not offered)
    res = S.greedy(tr, dv, k=2, candidates=[1, 2, 3, 17], n_random=1)
    assert 17 in res["selected"] and set(res["selected"]) <= {1, 2, 3, 17}
    assert [c["n_candidates"] for c in res["curve"]] == [4, 3]
    # an int: the m best single dimensions by validation stump score
    res = S.greedy(tr, dv, k=3, candidates=6, n_random=1)
    assert set(PLANTED) <= set(res["selected"])
    assert [c["n_candidates"] for c in res["curve"]] == [6, 5, 4]
    assert [c["n_fitted"] for c in res["curve"]] == [6, 5, 4]
    with pytest.raises(ConfigError, match="candidates must be >= 2"):
        S.greedy(tr, dv, k=2, candidates=1)
    with pytest.raises(ConfigError, match="candidates: dimensions must lie in"):
        S.greedy(tr, dv, k=2, candidates=[0, 999])


def _noise(seed: int = 3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((120, 1, 12)).astype(np.float32)
    y = (rng.random(120) > 0.5).astype(np.int64)
    return ArraySource(X, y)


def test_criterion_loss_changes_the_selection():
    """On this input the best validation accuracy and the lowest validation loss are different
    dimensions: ``criterion`` decides which one greedy (and pairs, eliminate) choose."""
    src = _noise()
    # C fixed: with C="auto" each criterion also chooses its own C (its leader differs),
    # and this test compares losses across runs at one C
    by_metric = S.greedy(src, src, k=1, n_random=1, C=1.0)
    by_loss = S.greedy(src, src, k=1, n_random=1, criterion="loss", C=1.0)
    assert by_metric["selected"] != by_loss["selected"]
    assert by_metric["config"]["criterion"] == "metric"
    assert by_loss["config"]["criterion"] == "loss"
    # each is the optimum of its own criterion over all single dimensions
    scores = [
        S.greedy(src, src, k=1, n_random=1, candidates=[d], C=1.0)["curve"][0] for d in range(12)
    ]
    best_acc = max(c["val_score"] for c in scores)
    best_loss = min(c["val_loss"] for c in scores)
    assert by_metric["curve"][0]["val_score"] == pytest.approx(best_acc)
    assert by_loss["curve"][0]["val_loss"] == pytest.approx(best_loss)
    assert by_loss["curve"][0]["val_loss"] < by_metric["curve"][0]["val_loss"]


def test_greedy_planted_and_stability(tmp_path):
    tr, dv = data384()
    res = S.greedy(tr, dv, k=3, repeats=3, out_dir=tmp_path)
    d = res.data
    common_fields(d)
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
    with pytest.raises(ConfigError, match="criterion must be 'metric'"):
        S.greedy(tr, dv, k=2, criterion="auc")
    # bootstrap repeats
    res3 = S.greedy(tr, dv, k=2, repeats=2, resample="bootstrap")
    assert res3["stability"]["resample"] == "bootstrap"
    assert set(res3["selected"]) == set(PLANTED)


def test_resume_greedy_continues(monkeypatch, tmp_path):
    Xt, yt = planted(300, D=48, L=1)
    Xd, yd = planted(200, D=48, L=1, seed=1)
    tr, dv = ArraySource(Xt, yt), ArraySource(Xd, yd)
    calls = {"n": 0, "fail_at": 3}
    orig = S.Problem.select

    def counting(self, dims):
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            raise KeyboardInterrupt
        return orig(self, dims)

    monkeypatch.setattr(S.Problem, "select", counting)
    with pytest.raises(KeyboardInterrupt):
        S.greedy(tr, dv, k=4, out_dir=tmp_path)
    assert not (tmp_path / "greedy.json").exists()
    ck = list((tmp_path / ".probekit-ckpt").glob("greedy-*/repeat-0.json"))
    assert len(ck) == 1 and len(json.loads(ck[0].read_text())["selected"]) == 2
    calls.update(n=0, fail_at=-1)
    res = S.greedy(tr, dv, k=4, out_dir=tmp_path)
    assert calls["n"] == 2  # steps 3 and 4 only
    monkeypatch.setattr(S.Problem, "select", orig)
    fresh = S.greedy(tr, dv, k=4)
    assert res["selected"] == fresh["selected"] and res["metrics"] == fresh["metrics"]
    # other arguments: a different checkpoint, computed afresh
    monkeypatch.setattr(S.Problem, "select", counting)
    calls.update(n=0)
    S.greedy(tr, dv, k=4, seed=1, out_dir=tmp_path)
    assert calls["n"] == 4
    assert len(list((tmp_path / ".probekit-ckpt").glob("greedy-*"))) == 2
