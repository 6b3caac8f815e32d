"""C='auto' in a search problem: chosen once per k on a leader (or the full width), used by
every probe of that k, recorded; a fixed C behaves as before."""

from __future__ import annotations

import numpy as np
import pytest
from search_data import planted

from probekit.errors import ConfigError
from probekit.probes import ProbeEngine, select_C
from probekit.search import Problem, SearchConfig


def _problem(config=None):
    Xt, yt = planted(500, seed=0)
    Xd, yd = planted(400, seed=1)
    return Problem(Xt[:, 1], yt, Xd[:, 1], yd, config=config or SearchConfig())


def test_auto_C_once_per_k_on_the_leader_and_used_by_every_probe_of_k():
    pb = _problem()
    pairs = np.array([[17, 203], [0, 1], [5, 9]])
    s, _ = pb.select(pairs)
    C2 = pb.C_for(2)
    ref = ProbeEngine(C=C2).fit_score(pb.X_fit, pb.y_fit, pb.X_val, pb.y_val, pairs)
    np.testing.assert_array_equal(s, ref["accuracy"])
    rec = pb.C_record()
    assert rec["mode"] == "auto" and list(rec["by_k"]) == ["2"]
    blk = rec["by_k"]["2"]
    assert blk["chosen_on"] == "leader" and blk["chosen"] == C2 and len(blk["val_curve"]) == 10
    # the leader is the two best single dims on validation (the planted ones here), and the
    # choice is select_C's on it, on the problem's own split
    lead = np.sort(pb._C_dims(2))
    assert set(lead.tolist()) == {17, 203}
    want = select_C(ProbeEngine(), pb.X_train, pb.y_train, lead, split=(pb.idx_fit, pb.idx_val))
    assert want.C == C2
    # report and the random baseline of k = 2 use the same C; full width is chosen on "full"
    rep = pb.report(pairs)["accuracy"]
    ev = ProbeEngine(C=C2).fit_score(pb.X_train, pb.y_train, pb.X_eval, pb.y_eval, pairs)
    np.testing.assert_array_equal(rep, ev["accuracy"])
    pb.full()
    assert pb.C_record()["by_k"]["384"]["chosen_on"] == "full"
    # the engine and config that other code takes directly carry the C of k = 2
    assert pb.engine.C == C2 and pb.config.C == C2


def test_choice_does_not_depend_on_which_candidates_come_first():
    a, b = _problem(), _problem()
    a.select(np.array([[0, 1]]))
    b.select(np.array([[100, 300], [17, 203]]))
    assert a.C_for(2) == b.C_for(2) and a.C_record() == b.C_record()


def test_fixed_C_is_used_as_given_and_recorded():
    pb = _problem(SearchConfig(C=0.5))
    assert pb.C_for(3) == 0.5 and pb.engine.C == 0.5
    assert pb.C_record() == {"mode": "fixed", "chosen": 0.5}
    assert "C_grid" not in SearchConfig(C=0.5).record()
    assert SearchConfig(C="AUTO", C_grid=[1, 0.1]).record()["C_grid"] == [0.1, 1.0]
    with pytest.raises(ConfigError, match="C must be 'auto' or a positive"):
        SearchConfig(C="sometimes")
    with pytest.raises(ConfigError, match=r"SearchConfig\.C is 'auto'"):
        SearchConfig().engine(False)


def test_full_width_is_fitted_once_and_its_predictions_give_its_scores(monkeypatch):
    """full() and full_predictions() share one refit (the verdict's full-width row is the
    reported full-width probe), made once per problem however often it is asked for."""
    import probekit.search.problem as problem_mod
    from probekit.metrics import batch_metrics

    calls = []
    real = problem_mod.refit_wide

    def counting(*a, **kw):
        calls.append(len(a[5]))
        return real(*a, **kw)

    monkeypatch.setattr(problem_mod, "refit_wide", counting)
    pb = _problem()
    first = pb.full()
    pred = pb.full_predictions()
    assert pb.full() == first and calls == [384]
    assert pred.shape == pb.y_eval.shape
    again = batch_metrics(pb.metrics, pb.y_eval, pred[None, :])
    assert {m: float(v[0]) for m, v in again.items()} == pytest.approx(first)
    # a caller's edit of the returned dict does not reach the cache
    first["accuracy"] = -1.0
    assert pb.full()["accuracy"] != -1.0


def test_a_narrow_report_fits_once(monkeypatch):
    """report_one of a few dims asks for no predictions: one fit, as before the cache."""
    import probekit.search.problem as problem_mod

    asked = []
    real = problem_mod.refit_wide

    def spy(*a, **kw):
        asked.append(kw.get("predict", False))
        return real(*a, **kw)

    monkeypatch.setattr(problem_mod, "refit_wide", spy)
    pb = _problem()
    sc = pb.report_one([17, 203])
    assert set(sc) == set(pb.metrics) and asked == [False]
