"""probe_sources: one probe on fixed dimensions of two sources, the record `probekit probe`
writes."""

from __future__ import annotations

import json

import pytest
from search_data import data384

from probekit import search as S
from probekit.errors import CacheError, CacheMismatchError
from probekit.search import ArraySource, SearchConfig


def test_probe_sources_record(tmp_path):
    tr, dv = data384()
    rec = S.probe_sources(tr, dv, layer=-1, dims="17,203", config=SearchConfig(n_random=3))
    assert rec["kind"] == "probe" and rec["task"] == "custom"
    assert rec["layer"] == 1 and rec["layer_arg"] == -1 and rec["pool"] == "cls"
    assert rec["dims"] == [17, 203] and rec["k"] == 2
    assert rec["metrics"]["accuracy"] > rec["random_baseline"]["mean"]["accuracy"] + 0.2
    assert rec["random_baseline"]["n_draws"] == 3
    assert rec["sources"]["train"] == "arrays" and rec["elapsed_s"] >= 0
    p = S.write_probe_record(tmp_path / "sub" / "probe.json", rec)
    assert json.loads(p.read_text())["metrics"] == rec["metrics"]


def test_probe_sources_refuses_what_search_refuses():
    tr, _ = data384()
    other = ArraySource(tr.features(-1)[:50], tr.labels[:50] * 0 + 1)
    with pytest.raises(CacheMismatchError, match="n_layers"):
        S.probe_sources(tr, other, dims="1")
    with pytest.raises(CacheError, match="--control needs token fields"):
        S.probe_sources(tr, tr, dims="1", control=True)
