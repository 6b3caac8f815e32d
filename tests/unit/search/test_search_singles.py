"""singles: every dimension on its own (stumps and 1-d probes); other task kinds."""

from __future__ import annotations

import json

import numpy as np
from search_data import PLANTED, common_fields, data384

from probekit import search as S
from probekit.search import ArraySource


def test_singles_planted(tmp_path):
    tr, dv = data384()
    res = S.singles(tr, dv, out_dir=tmp_path)
    d = res.data
    common_fields(d)
    top2 = {(r["layer"], r["dim"]) for r in d["top"][:2]}
    assert top2 == {(1, 17), (1, 203)}
    assert d["layer"] == 1 and d["selected"][0] in PLANTED
    assert len(res.rows) == 2 * 384
    ranked_stump = sorted(res.rows, key=lambda r: r["rank_stump"])[:2]
    assert {(r["layer"], r["dim"]) for r in ranked_stump} == {(1, 17), (1, 203)}
    assert d["metrics"]["accuracy"] > d["random_baseline"]["mean"]["accuracy"] + 0.1
    assert (tmp_path / "singles.json").exists() and (tmp_path / "singles.csv").exists()
    assert json.loads((tmp_path / "singles.json").read_text())["verb"] == "singles"


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
