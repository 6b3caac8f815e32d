"""Verdicts on hand-made study results: holds, does not hold, inconclusive, at-majority."""

from __future__ import annotations

import math

import pytest
from study_fixtures import StudyBuilder

from probekit.errors import ConfigError
from probekit.study.results import load_study, spearman
from probekit.study.verdicts import (
    HOLDS,
    INCONCLUSIVE,
    NOT_HOLDS,
    Thresholds,
    claim_cross,
    claim_dims,
    claim_freeze,
    claim_layers,
    claim_multihead,
    claim_probe_correlation,
    claim_token,
    judge,
)

TH = Thresholds()


def _token(tmp_path, mx, mean=None, cls=(0.90, 0.91, 0.92)):
    b = StudyBuilder(tmp_path, tasks=("sst2",))
    b.reference("sst2", list(cls))
    b.cond("token", "sst2", "max_norm", "full", list(mx), pool="max_norm")
    b.cond("token", "sst2", "mean", "full", list(mean or cls), pool="mean")
    return load_study(b.write())


def test_thresholds_round_trip_and_validation():
    t = Thresholds(suffice_share=0.9, corr_min_pairs=5)
    assert Thresholds.from_dict(t.to_dict()) == t
    assert Thresholds.from_dict({}) == Thresholds()
    with pytest.raises(ConfigError, match="suffice_share"):
        Thresholds(suffice_share=1.5)
    with pytest.raises(ConfigError, match="equiv_points"):
        Thresholds(equiv_points=-1)
    with pytest.raises(ConfigError, match=r"unknown threshold\(s\) \['bogus'\]"):
        Thresholds.from_dict({"bogus": 1})


def test_token_holds_when_within_two_points(tmp_path):
    v = claim_token(_token(tmp_path, mx=(0.90, 0.90, 0.91)), TH)
    assert v.verdict == HOLDS, v
    assert "max_norm 0.903" in v.numbers and "cls 0.910" in v.numbers


def test_token_does_not_hold_beyond_tolerance(tmp_path):
    v = claim_token(_token(tmp_path, mx=(0.80, 0.81, 0.80)), TH)
    assert v.verdict == NOT_HOLDS
    assert "sst2 max_norm: differs by -10.7 pts" in v.reason


def test_token_inconclusive_when_seed_spread_exceeds_effect(tmp_path):
    # mean 0.86 (5 pts below cls) but the seeds spread over 20 points: 2 SE > 5 pts
    v = claim_token(_token(tmp_path, mx=(0.76, 0.86, 0.96)), TH)
    assert v.verdict == INCONCLUSIVE
    assert "seed spread larger than the effect" in v.reason


def test_token_at_majority_never_holds(tmp_path):
    # everything at sst2's majority (0.51): equal, but says nothing
    v = claim_token(_token(tmp_path, mx=(0.51, 0.51, 0.52), cls=(0.51, 0.52, 0.51)), TH)
    assert v.verdict == INCONCLUSIVE
    assert "majority baseline" in v.reason


def _dims(tmp_path, pair, triple=(0.30, 0.31, 0.30), full=(0.50, 0.52, 0.51)):
    b = StudyBuilder(tmp_path, tasks=("cola",))
    b.reference("cola", list(full))
    b.cond("dims", "cola", "probe_pair", "probe", list(pair), dims=[3, 17])
    b.cond("dims", "cola", "triple", "t0", list(triple), dims=[1, 2, 5])
    for i in range(3):
        b.cond("dims", "cola", "random_pair", f"r{i}", [0.05 * i], dims=[i, i + 10])
    return load_study(b.write())


def test_dims_holds_and_counts_seed_overlap(tmp_path):
    v = claim_dims(_dims(tmp_path, pair=(0.49, 0.51, 0.50)), TH)
    assert v.verdict == HOLDS, v
    assert "best probe_pair/probe (k=2)" in v.numbers
    assert "98% of full" in v.numbers
    assert "2/3 seeds in full's range" in v.numbers  # 0.49 lies outside [0.50, 0.52]
    assert "random pairs 0.050±0.050" in v.numbers


def test_dims_does_not_hold(tmp_path):
    v = claim_dims(_dims(tmp_path, pair=(0.30, 0.31, 0.29)), TH)
    assert v.verdict == NOT_HOLDS
    assert "59% < 95% of full" in v.reason


def test_dims_inconclusive_with_wide_seeds(tmp_path):
    v = claim_dims(_dims(tmp_path, pair=(0.30, 0.47, 0.64)), TH)
    assert v.verdict == INCONCLUSIVE
    assert "seed spread larger than the effect" in v.reason


def test_dims_reference_at_majority_is_inconclusive(tmp_path):
    # cola's majority MCC is 0: a full width at MCC ~ 0 is no reference
    st = _dims(tmp_path, pair=(0.0, 0.01, 0.0), triple=(0.0, 0.0, 0.0), full=(0.0, 0.01, 0.0))
    v = claim_dims(st, TH)
    assert v.verdict == INCONCLUSIVE
    assert "full-width reference at the majority baseline" in v.reason


def _layers(tmp_path, scores_by_layer):
    b = StudyBuilder(tmp_path, tasks=("sst2",))
    for layer, sc in scores_by_layer.items():
        b.cond("layers", "sst2", "probe_pair", str(layer), sc, dims=[3, 17], layer=layer)
    return load_study(b.write())


def test_layers_hold(tmp_path):
    st = _layers(tmp_path, {0: [0.55, 0.56], 1: [0.60, 0.61], 2: [0.65, 0.66],
                            3: [0.80, 0.81], 4: [0.81, 0.80], 5: [0.80, 0.82]})  # fmt: skip
    v = claim_layers(st, TH)
    assert v.verdict == HOLDS, v
    assert "layers 0-2" in v.numbers and "3-5" in v.numbers


def test_layers_do_not_hold_when_flat(tmp_path):
    st = _layers(tmp_path, {x: [0.80, 0.81] for x in range(6)})
    v = claim_layers(st, TH)
    assert v.verdict == NOT_HOLDS
    assert "lower<upper: difference +0.0 pts" in v.reason


def test_layers_at_majority_inconclusive(tmp_path):
    st = _layers(tmp_path, {x: [0.51, 0.51] for x in range(6)})
    v = claim_layers(st, TH)
    assert v.verdict == INCONCLUSIVE
    assert "upper layers at the majority baseline" in v.reason


def _freeze(tmp_path, frozen, full=(0.90, 0.91, 0.90)):
    b = StudyBuilder(tmp_path, tasks=("sst2",))
    b.reference("sst2", list(full))
    b.cond("freeze", "sst2", "frozen_2layer", "full", list(frozen), freeze="encoder",
           head_layers=2)  # fmt: skip
    return load_study(b.write())


def test_freeze_holds_and_not(tmp_path):
    assert claim_freeze(_freeze(tmp_path / "a", (0.80, 0.81, 0.80)), TH).verdict == HOLDS
    v = claim_freeze(_freeze(tmp_path / "b", (0.90, 0.90, 0.91)), TH)
    assert v.verdict == NOT_HOLDS
    assert "frozen 2-layer 0.903±0.006" in v.numbers


def test_freeze_full_at_majority(tmp_path):
    v = claim_freeze(_freeze(tmp_path, (0.40, 0.40, 0.40), full=(0.51, 0.52, 0.51)), TH)
    assert v.verdict == INCONCLUSIVE and "majority" in v.reason


def _cross(tmp_path, same_after, disjoint_after):
    b = StudyBuilder(tmp_path)
    for mode, after in (("same", same_after), ("disjoint", disjoint_after)):
        g = f"cola:sst2:{mode}"
        b.cond("cross", "cola", "A_single", g, [0.40, 0.41, 0.40], dims=[1, 2])
        b.cond("cross", "cola", "A_after_B", g, list(after), dims=[1, 2])
        b.cond("cross", "sst2", "B_single", g, [0.90, 0.90, 0.91], dims=[3, 4])
        b.cond("cross", "sst2", "B_after_A", g, [0.90, 0.91, 0.90], dims=[3, 4])
    return load_study(b.write())


def test_cross_best_mode_counts(tmp_path):
    v = claim_cross(_cross(tmp_path / "a", (0.10, 0.12, 0.11), (0.40, 0.40, 0.41)), TH)
    assert v.verdict == HOLDS, v
    assert "cola:sst2 (disjoint)" in v.reason
    assert "cola:sst2:same: cola 0.403±0.006 -> 0.110±0.010" in v.numbers
    v = claim_cross(_cross(tmp_path / "b", (0.10, 0.12, 0.11), (0.20, 0.21, 0.20)), TH)
    assert v.verdict == NOT_HOLDS
    assert "cola:sst2 (disjoint): cola: loses 20.0 pts" in v.reason


def test_multihead(tmp_path):
    b = StudyBuilder(tmp_path, tasks=("sst2",))
    b.cond("beyond", "sst2", "multihead", "multihead", [0.88, 0.89, 0.88], dims=[3, 4])
    b.cond("beyond", "sst2", "multihead_single", "multihead", [0.89, 0.89, 0.90], dims=[3, 4])
    v = claim_multihead(load_study(b.write()), TH)
    assert v.verdict == HOLDS, v
    assert "multi-head 0.883±0.006 vs single 0.893±0.006" in v.numbers


def test_spearman_known_answers():
    rho, p = spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7])
    assert rho == pytest.approx(0.8207826816681233)
    assert p == pytest.approx(0.0885870053135438, rel=1e-6)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1])[0] == pytest.approx(-1.0)
    assert all(math.isnan(x) for x in spearman([1, 1, 1], [1, 2, 3]))
    assert all(math.isnan(x) for x in spearman([1, 2], [1, 2]))


def _probe_study(tmp_path, pre, ft):
    b = StudyBuilder(tmp_path, tasks=("sst2",))
    for i, (p, f) in enumerate(zip(pre, ft)):
        for seed in (0, 1):
            rid = b.run("sst2", seed, f, key=f"p{i}", dims=[i, i + 1])
            b.entry("dims", "sst2", "random_pair", f"r{i}", rid)
            b.probe_scores(rid, pre=p, post=p + 0.1)
    b.cond("beyond", "sst2", "multihead", "multihead", [0.8], dims=[3, 4])
    return load_study(b.write())


def test_probe_correlation(tmp_path):
    pre = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75]
    v = claim_probe_correlation(
        _probe_study(tmp_path / "a", pre, [0.6, 0.62, 0.7, 0.71, 0.8, 0.85]), TH
    )
    assert v.verdict == HOLDS, v
    assert "sst2: rho 1.00 (p 0.000, 6 heads)" in v.numbers
    v = claim_probe_correlation(
        _probe_study(tmp_path / "b", pre, [0.85, 0.8, 0.7, 0.71, 0.62, 0.6]), TH
    )
    assert v.verdict == NOT_HOLDS
    v = claim_probe_correlation(_probe_study(tmp_path / "c", pre[:3], [0.6, 0.7, 0.8]), TH)
    assert v.verdict == INCONCLUSIVE and "3 heads < 4" in v.reason


def test_pending_runs_make_claims_inconclusive(tmp_path):
    b = StudyBuilder(tmp_path, tasks=("sst2",))
    b.reference("sst2", [0.90, None, 0.91])
    b.cond("token", "sst2", "max_norm", "full", [0.90, 0.90, None], pool="max_norm")
    st = load_study(b.write())
    assert len(st.pending) == 2
    vs = {v.claim_id: v for v in judge(st)}
    assert vs["token"].verdict == INCONCLUSIVE
    assert vs["token"].reason == "runs pending (2 of 6 entries)"
    assert vs["layers"].reason == "experiment 'layers' not in this study"
    assert list(vs) == ["token", "dims", "layers", "freeze", "cross", "probe_correlation",
                        "multihead"]  # fmt: skip


def test_judge_uses_the_study_thresholds(tmp_path):
    b = StudyBuilder(tmp_path, tasks=("sst2",))
    b.reference("sst2", [0.90, 0.91, 0.92])
    b.cond("token", "sst2", "max_norm", "full", [0.86, 0.87, 0.86], pool="max_norm")
    b.cond("token", "sst2", "mean", "full", [0.90, 0.91, 0.92], pool="mean")
    st = load_study(b.write(thresholds={"equiv_points": 5.0}))
    assert judge(st)[0].verdict == HOLDS
    assert judge(st, Thresholds())[0].verdict == NOT_HOLDS


def test_a_difference_of_exactly_the_threshold_is_within_it(tmp_path):
    v = claim_token(_token(tmp_path, mx=(0.88, 0.89, 0.90), cls=(0.90, 0.91, 0.92)), TH)
    assert v.verdict == HOLDS, v  # 2.0 points in float arithmetic is 0.0200000001
