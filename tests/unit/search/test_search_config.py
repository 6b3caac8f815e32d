"""SearchConfig: one place for the shared settings, validated once; the deprecated keywords."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
from search_data import data384

from probekit import search as S
from probekit.errors import ConfigError
from probekit.search import SearchConfig


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"n_random": 0}, "n_random must be >= 1"),
        ({"val_fraction": 1.0}, r"val_fraction must lie in \(0, 1\)"),
        ({"criterion": "auc"}, "criterion must be 'metric'"),
    ],
)
def test_config_is_validated_on_construction(kw, match):
    with pytest.raises(ConfigError, match=match):
        SearchConfig(**kw)


def test_config_is_frozen_and_normalised():
    c = SearchConfig(metrics=["mcc", "accuracy"], seed=3)
    assert c.metrics == ("mcc", "accuracy") and c.primary == "mcc"
    assert SearchConfig(metrics="f1").metrics == ("f1",)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign"):
        c.seed = 4
    with pytest.raises(ConfigError, match="metrics is not set"):
        _ = SearchConfig().primary
    assert c.record()["C"] == "auto" and len(c.record()["C_grid"]) == 10  # the default
    c = SearchConfig(metrics=["mcc", "accuracy"], seed=3, C=1.0)  # fixed C: keys as before
    assert c.record() == {
        "metrics": ["mcc", "accuracy"],
        "C": 1.0,
        "val_fraction": 0.2,
        "n_random": 20,
        "seed": 3,
        "criterion": "metric",
    }


def test_old_keywords_still_work_with_a_warning(tmp_path):
    tr, dv = data384()
    new = S.greedy(tr, dv, k=2, config=SearchConfig(seed=1, n_random=2, out_dir=tmp_path / "a"))
    with pytest.warns(DeprecationWarning, match=r"greedy\(n_random=, out_dir=, seed=\)"):
        old = S.greedy(tr, dv, k=2, seed=1, n_random=2, out_dir=tmp_path / "b")
    assert old["selected"] == new["selected"] and old["metrics"] == new["metrics"]
    assert old["config"] == new["config"]
    with pytest.warns(DeprecationWarning, match=r"dev=\.\.\.\) is deprecated"):
        via_dev = S.greedy(tr, dev=dv, k=2, config=SearchConfig(seed=1, n_random=2))
    assert via_dev["selected"] == new["selected"]
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        S.greedy(tr, dv, k=2, sede=1)
    with pytest.raises(TypeError, match="both eval and its deprecated alias dev"):
        S.greedy(tr, dv, dev=dv)
    with pytest.raises(TypeError, match="missing the evaluation source"):
        S.greedy(tr, k=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        S.pairs(tr, dv, candidates=4, config=SearchConfig(n_random=1))  # the new API: silent


def test_every_search_takes_config_and_records_it():
    tr, dv = data384()
    cfg = SearchConfig(n_random=1, seed=2, criterion="loss")
    for verb, opts in {
        "singles": dict(layers=[-1], probe=False),
        "pairs": dict(candidates=4),
        "greedy": dict(k=1),
        "eliminate": dict(start=[17, 203, 5], k=2),
        "layers": dict(k=1, pair_candidates=3),
        "tokens": dict(k=1, pools=["cls"]),
    }.items():
        res = S.run_search(verb, tr, dv, config=cfg, **opts)
        assert res["kind"] == "search" and res["verb"] == verb
        assert res["seed"] == 2 and res["config"]["criterion"] == "loss"
        assert res["random_baseline"]["n_draws"] == 1
