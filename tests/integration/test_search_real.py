"""Dimension search on the real embedded model (MiniLM) and real SST-2 data."""

from __future__ import annotations

import pytest

from probekit import search as S


@pytest.mark.integration
def test_real_sst2_greedy_beats_random(minilm_cache, tmp_path):
    from probekit.cache import ActivationCache

    with (
        ActivationCache(minilm_cache("sst2", "train", limit=3000)) as tr,
        ActivationCache(minilm_cache("sst2", "dev")) as dv,
    ):
        # mean pooling of the last layer: the model's own sentence embedding (frozen)
        res = S.greedy(tr, dv, k=3, layer=-1, pool="mean", config=S.SearchConfig(out_dir=tmp_path))
    d = res.data
    acc = d["metrics"]["accuracy"]
    rb = d["random_baseline"]
    assert rb["k"] == 3 and rb["n_draws"] >= 20
    margin = acc - rb["mean"]["accuracy"]
    assert margin > max(0.05, 2 * rb["std"]["accuracy"]), (acc, rb["mean"], rb["std"])
    assert acc > max(rb["scores"]["accuracy"])  # better than every random draw
    assert d["full_metrics"]["accuracy"] > 0.75
