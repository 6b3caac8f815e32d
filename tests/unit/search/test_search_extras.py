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


class _TokenSource(S.ArraySource):
    """Arrays with token fields: each example is ``[CLS] t [SEP]`` with its type id ``t``."""

    def __init__(self, X, y, type_ids):
        super().__init__(X, y)
        n = len(y)
        self.has_tokens = True
        self.offsets = np.arange(0, 3 * n + 1, 3)
        ids = np.stack([np.full(n, 101), 1000 + np.asarray(type_ids), np.full(n, 102)], 1)
        self._tok = {"input_ids": ids.ravel(), "special_tokens_mask": np.tile([1, 0, 1], n)}

    def token_field(self, name):
        return self._tok[name]


def test_mdl_block_carries_the_control_task_next_to_it():
    tr, dv = data384()
    rng = np.random.default_rng(3)
    trt = _TokenSource(tr.features(-1, "cls")[:, None], tr.labels, rng.integers(0, 40, 500))
    dvt = _TokenSource(dv.features(-1, "cls")[:, None], dv.labels, rng.integers(0, 40, 400))
    res = S.greedy(trt, dvt, k=2, mdl=True, config=SearchConfig(n_random=3, C=1.0))
    assert set(res["selected"]) == set(PLANTED)
    c = res["mdl"]["control"]
    assert c["n_types"] == 40
    # the planted pair carries the task, not the random type labels: high selectivity, and the
    # control task's labels code no better than the uniform code
    assert c["metrics"]["accuracy"] < 0.65
    assert c["selectivity"]["accuracy"] > 0.2
    assert c["compression"] < 1.1 < res["mdl"]["compression"]
    # without token fields the block says why it is missing
    plain = S.greedy(tr, dv, k=2, mdl=True, config=SearchConfig(n_random=3, C=1.0))
    assert "token fields" in plain["mdl"]["control"]["skipped"]
