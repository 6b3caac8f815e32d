"""layers and tokens: the per-layer and per-pool sweeps."""

from __future__ import annotations

import numpy as np
import pytest
from search_data import common_fields, planted, planted_dims

from probekit import search as S
from probekit.errors import ConfigError
from probekit.search import ArraySource


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
    common_fields(res.data)
    tk = S.tokens(tr, dv, k=2, pools=["cls", "mean"], out_dir=tmp_path)
    pp = {r["pool"]: r for r in tk["per_pool"]}
    inv = np.argsort(perm)
    assert set(pp["mean"]["greedy_selected"]) == {int(inv[d]) for d in pp["cls"]["greedy_selected"]}
    common_fields(tk.data)
    with pytest.raises(ConfigError, match=r"pools \['max_norm'\] are not in both sources"):
        S.tokens(tr, dv, pools=["max_norm"])
