"""MDL, ablation and verdict blocks in the greedy and eliminate results."""

from __future__ import annotations

import numpy as np
from search_data import PLANTED, data384, small

from probekit import search as S
from probekit.search import SearchConfig


def test_greedy_planted_set_compresses_and_its_ablation_falls_to_chance():
    tr, dv = data384()
    # C=1 explicit: the compression thresholds below are calibrated at C=1 (with C="auto"
    # the pair's C chosen by validation accuracy is 0.01, whose shrunk probabilities code
    # the labels less well: compression 1.2 instead of 3.4)
    cfg = SearchConfig(n_random=20, C=1.0)
    res = S.greedy(tr, dv, k=2, mdl=True, ablation=True, config=cfg)
    assert set(res["selected"]) == set(PLANTED)
    v = res["verdict"]
    assert v["status"] == "beats" and v["dims"] == res["selected"]
    m = res["mdl"]
    # the planted pair codes the labels far better than random pairs and than the uniform code
    assert m["compression"] > 1.5 > m["random_compression_mean"]
    assert m["codelength_bits"] < m["full_codelength_bits"]  # 384 noisy dims cost more bits
    assert m["uniform_codelength_bits"] == np.log2(2) * 500
    a = res["ablation"]
    assert a["full"]["accuracy"] > 0.7
    # the information is only there: without it, and after erasing it, the probe is near chance
    assert a["without"]["accuracy"] < 0.65 and a["erased"]["accuracy"] < 0.65


def test_eliminate_on_noise_gets_a_baseline_verdict():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((300, 1, 20)).astype(np.float32)
    y = (rng.random(300) < 0.6).astype(np.int64)
    src = S.ArraySource(X, y)
    X2 = rng.standard_normal((300, 1, 20)).astype(np.float32)
    dv = S.ArraySource(X2, (rng.random(300) < 0.6).astype(np.int64))
    res = S.eliminate(src, dv, layer=0, start=4, k=2, ablation=True, config=SearchConfig())
    assert res["verdict"]["status"] in ("baseline", "inconclusive")
    assert "carry" not in res["verdict"]["headline"]
    assert set(res["ablation"]) >= {"without", "erased", "full"}
    assert "mdl" not in res.data


def test_blocks_are_off_by_default():
    res = S.greedy(small(), small(seed=1), layer=0, k=2, config=SearchConfig(n_random=3))
    assert "mdl" not in res.data and "ablation" not in res.data and "verdict" in res.data
