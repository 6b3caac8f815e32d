"""rank: every peer ranking and ours recover planted dimensions; curves, band, verdict."""

from __future__ import annotations

import json

import pytest
from search_data import PLANTED, common_fields, data384

from probekit.errors import ConfigError
from probekit.search.rank import METHODS, rank


@pytest.fixture(scope="module")
def ranked(tmp_path_factory):
    tr, dv = data384()
    out = tmp_path_factory.mktemp("rank")
    return rank(tr, dv, method="all", k=3, config=_cfg(out)), out


def _cfg(out):
    from probekit.search import SearchConfig

    return SearchConfig(n_random=20, out_dir=out)


def test_every_method_recovers_the_planted_dimensions(ranked):
    res, _ = ranked
    assert res["methods"] == list(METHODS)
    for m in METHODS:
        top2 = set(res["rankings"][m]["order"][:2])
        assert top2 == set(PLANTED), (m, res["rankings"][m]["order"][:5])


def test_curves_band_majority_and_verdict(ranked):
    res, out = ranked
    d = res.data
    common_fields(d)
    assert [b["k"] for b in d["random_band"]] == [1, 2, 3]
    for m in METHODS:
        curve = d["rankings"][m]["curve"]
        assert len(curve) == 3
        # the planted pair carries the task: top-2 far above the random band of size 2
        assert curve[1]["accuracy"] > d["random_band"][1]["mean"]["accuracy"] + 0.2
        assert d["rankings"][m]["verdict"]["status"] == "beats"
    assert d["verdict"]["headline"].startswith("=> 3 dimensions carry")
    saved = json.loads((out / "rank.json").read_text())
    assert saved["kind"] == "search" and saved["verb"] == "rank"
    assert (out / "rank.csv").read_text().count("\n") == 1 + 3 * len(METHODS)


def test_unknown_method_is_refused():
    tr, dv = data384()
    with pytest.raises(ConfigError, match="method must be 'all' or one of"):
        rank(tr, dv, method="pca")
