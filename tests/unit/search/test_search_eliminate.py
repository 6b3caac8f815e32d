"""eliminate: the remove-one procedure, its weight-based cut, tol, repeats."""

from __future__ import annotations

import json

import pytest
from search_data import PLANTED, common_fields, data384

from probekit import search as S
from probekit.errors import ConfigError

START = [5, 17, 99, 203, 300]


def test_eliminate_planted(tmp_path):
    tr, dv = data384()
    res = S.eliminate(tr, dv, start=START, k=2, out_dir=tmp_path)
    d = res.data
    common_fields(d)
    assert set(d["selected"]) == set(PLANTED)
    assert d["best_pair"] == list(PLANTED)
    exact = [s for s in d["steps"] if s["method"] == "exact"]
    assert [s["size"] for s in exact] == [5, 4, 3]
    assert all(
        set(map(int, s["drops"])) <= set(START) and len(s["drops"]) == s["size"] for s in exact
    )
    # removing a planted dimension costs far more than removing a noise dimension
    assert min(d["final_drops"].values()) > 0.1
    # from 3 random dimensions (the paper's start) plus the default k=2
    r3 = S.eliminate(tr, dv, start=3, seed=1)
    assert len(r3["selected"]) == 2 and len(r3["start"]) == 3
    # from all dimensions: weight-based cut to exact_max, then remove-one
    ra = S.eliminate(tr, dv, start="all", k=3, exact_max=12)
    assert set(PLANTED) <= set(ra["selected"])
    assert {s["method"] for s in ra["steps"]} == {"weights", "exact"}
    assert ra["best_pair"] == list(PLANTED)


def test_eliminate_tol_stops_before_a_costly_removal():
    """Without ``tol`` it removes down to ``k``; with it, it stops once every removal would
    cost more than ``tol`` on validation (here: when only the planted pair is left)."""
    tr, dv = data384()
    plain = S.eliminate(tr, dv, start=START, k=1, n_random=1)
    assert len(plain["selected"]) == 1
    assert "stopped" not in plain["steps"][-1]
    tol = S.eliminate(tr, dv, start=START, k=1, tol=0.05, n_random=1)
    assert set(tol["selected"]) == set(PLANTED)
    last = tol["steps"][-1]
    assert last["stopped"] == "tol" and last["size"] == 2 and "removed" not in last
    assert min(last["drops"].values()) > 0.05
    assert all(max(s["drops"][str(s["removed"][0])], 0) <= 0.05 for s in tol["steps"][:-1])


def _repeat_states(out_dir):
    ck = sorted((out_dir / ".probekit-ckpt").glob("eliminate-*/repeat-*.json"))
    return {p.stem: json.loads(p.read_text()) for p in ck}


@pytest.mark.parametrize("resample", ["split", "bootstrap"])
def test_eliminate_repeats_resample_the_validation(tmp_path, resample):
    tr, dv = data384()
    res = S.eliminate(
        tr, dv, start=START, k=2, repeats=3, resample=resample, n_random=1, out_dir=tmp_path
    )
    st = res["stability"]
    assert st["n_repeats"] == 3 and st["resample"] == resample
    assert st["frequency"] == {17: 1.0, 203: 1.0} and st["jaccard_mean"] == 1.0
    assert st["best_pairs"] == [list(PLANTED)] * 3
    states = _repeat_states(tmp_path)
    assert sorted(states) == ["repeat-0", "repeat-1", "repeat-2"]
    # every repeat fitted and scored its removals on its own resample (validation loss differs)
    assert len({s["steps"][0]["loss"] for s in states.values()}) == 3
    # one repeat (the default) reports no stability
    assert "stability" not in S.eliminate(tr, dv, start=START, k=2, n_random=1).data


def test_eliminate_repeats_draw_their_own_random_start(tmp_path):
    tr, dv = data384()
    res = S.eliminate(tr, dv, start=3, k=2, repeats=3, n_random=1, out_dir=tmp_path)
    starts = [tuple(s["start"]) for s in _repeat_states(tmp_path).values()]
    assert len(set(starts)) == 3 and tuple(res["start"]) == starts[0]
    with pytest.raises(ConfigError, match="resample must be"):
        S.eliminate(tr, dv, repeats=2, resample="jackknife")
