"""The search's arrays keep the source's dtype: a float16 cache is never upcast whole."""

from __future__ import annotations

import numpy as np
from search_data import planted

from probekit.search import ArraySource, SearchConfig, greedy, pairs
from probekit.search.driver import Driver


def _sources(dtype):
    Xt, yt = planted(300, D=24, L=1, seed=0)
    Xd, yd = planted(200, D=24, L=1, seed=1)
    return ArraySource(Xt.astype(dtype), yt), ArraySource(Xd.astype(dtype), yd)


def test_float16_layer_and_its_row_parts_stay_float16():
    tr, dv = _sources(np.float16)
    drv = Driver("pairs", tr, dv, {}, SearchConfig(C=1.0))
    data = drv.data(0, "cls")
    assert data.X_train.dtype == np.float16 and data.X_eval.dtype == np.float16
    pb = data.problem()
    assert pb.X_fit.dtype == np.float16 and pb.X_val.dtype == np.float16


def test_float16_and_float32_sources_of_the_same_values_search_alike():
    """float16 values upcast exactly, so a search on the float16 source equals the one on the
    same values stored as float32 (the engine upcasts row chunks either way)."""
    cfg = SearchConfig(C=1.0, n_random=3)
    h, f = _sources(np.float16), _sources(np.float16)
    f = tuple(ArraySource(s.features(0, "cls").astype(np.float32), s.labels) for s in f)
    ph, pf = pairs(*h, config=cfg), pairs(*f, config=cfg)
    assert ph.data["selected"] == pf.data["selected"]
    np.testing.assert_array_equal(ph.arrays["pairs_matrix"], pf.arrays["pairs_matrix"])
    gh, gf = greedy(*h, k=3, config=cfg), greedy(*f, k=3, config=cfg)
    assert gh.data["selected"] == gf.data["selected"]
    assert gh.data["metrics"] == gf.data["metrics"]
