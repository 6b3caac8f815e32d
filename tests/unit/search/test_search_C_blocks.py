"""The C block of every search result (greedy, pairs, eliminate), the C of probes of each size
(elimination weights, MDL), and the custom grid of probe_sources."""

from __future__ import annotations

import json

import numpy as np
import pytest
from search_data import data384, small

from probekit import search as S
from probekit.probes import ProbeEngine
from probekit.search import Problem, SearchConfig
from probekit.search import extras as extras_mod

GRID = (0.01, 1.0, 100.0)


def _searches(cfg):
    tr, ev = small(), small(seed=1)
    return {
        "greedy": S.greedy(tr, ev, layer=0, k=2, config=cfg),
        "pairs": S.pairs(tr, ev, layer=0, config=cfg),
        "eliminate": S.eliminate(tr, ev, layer=0, start=4, k=2, config=cfg),
    }


def test_greedy_pairs_eliminate_record_the_auto_C_block(tmp_path):
    cfg = SearchConfig(n_random=2, C_grid=GRID, out_dir=tmp_path)
    for verb, res in _searches(cfg).items():
        blk = res["C"]
        assert blk["mode"] == "auto" and blk["grid"] == list(GRID), verb
        k = str(len(res["selected"]))
        one = blk["by_k"][k]
        assert one["chosen"] in GRID and one["chosen_on"] == "leader", verb
        assert one["grid"] == list(GRID) and len(one["val_curve"]) == len(GRID), verb
        assert blk["by_k"]["40"]["chosen_on"] == "full", verb  # the full-width probe's own C
        saved = json.loads((tmp_path / f"{verb}.json").read_text())
        assert saved["C"] == json.loads(json.dumps(blk)), verb


def test_greedy_pairs_eliminate_record_a_fixed_C():
    for verb, res in _searches(SearchConfig(n_random=2, C=0.5)).items():
        assert res["C"] == {"mode": "fixed", "chosen": 0.5}, verb


def _fresh(cfg):
    tr, ev = small(), small(seed=1)
    X = np.asarray(tr.features(0, "cls"), dtype=np.float32)
    Xe = np.asarray(ev.features(0, "cls"), dtype=np.float32)
    return Problem(X, tr.labels, Xe, ev.labels, config=cfg)


def test_elimination_weights_use_the_C_of_the_set_size(monkeypatch):
    cfg = SearchConfig(n_random=2)
    seen = []
    orig = ProbeEngine.fit

    def spy(self, X, y, dims, **kw):
        seen.append((np.asarray(dims).shape[-1], self.C))
        return orig(self, X, y, dims, **kw)

    monkeypatch.setattr(ProbeEngine, "fit", spy)
    S.eliminate(small(), small(seed=1), layer=0, start="all", k=2, exact_max=20, config=cfg)
    ref = _fresh(cfg)
    widths = {w for w, _ in seen}
    assert 40 in widths and 36 in widths  # the weights steps (40 -> 36 -> ... -> 20)
    assert ref.C_for(40) != ref.C_for(2)  # else the check below could not tell them apart
    for w, c in seen:
        assert ref.C_for(w) == c, (w, c)


def test_mdl_codes_each_set_at_the_C_of_its_size(monkeypatch):
    seen = []
    orig = extras_mod.online_codelength

    def spy(engine, X, y, dims, **kw):
        seen.append((np.asarray(dims).shape[-1], engine.C))
        return orig(engine, X, y, dims, **kw)

    monkeypatch.setattr(extras_mod, "online_codelength", spy)
    res = S.greedy(small(), small(seed=1), layer=0, k=3, mdl=True, config=SearchConfig(n_random=2))
    by_k = res["C"]["by_k"]
    assert {w for w, _ in seen} == {3, 40}
    assert by_k["40"]["chosen"] != by_k["2"]["chosen"]  # the full width's C is its own
    for w, c in seen:
        assert by_k[str(w)]["chosen"] == c, (w, c)


def test_probe_sources_uses_the_custom_grid():
    tr, dv = data384()
    cfg = SearchConfig(n_random=2, C_grid=GRID)
    rec = S.probe_sources(tr, dv, layer=-1, dims="17,203", config=cfg)
    assert rec["C"]["mode"] == "auto" and rec["C"]["grid"] == list(GRID)
    assert rec["C"]["chosen"] in GRID and rec["probe"]["C"] == rec["C"]["chosen"]


def test_probe_sources_with_a_fixed_C():
    tr, dv = data384()
    rec = S.probe_sources(tr, dv, dims="17,203", config=SearchConfig(n_random=2, C=0.5))
    assert rec["C"] == {"mode": "fixed", "chosen": 0.5} and rec["probe"]["C"] == pytest.approx(0.5)
