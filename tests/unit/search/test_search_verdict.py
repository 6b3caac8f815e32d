"""verdict: honest headlines against the majority and random-k baselines (paired bootstrap)."""

from __future__ import annotations

import numpy as np
import pytest

from probekit.errors import ConfigError
from probekit.search.verdict import bootstrap_scores, verdict


def _labels(n=400, pos=0.7, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random(n) < pos).astype(np.int64)


def _flip(y, frac, seed):
    rng = np.random.default_rng(seed)
    out = y.copy()
    idx = rng.choice(len(y), int(frac * len(y)), replace=False)
    out[idx] = 1 - out[idx]
    return out


def _random(y, frac=0.3, R=10):
    return np.stack([_flip(y, frac, 100 + r) for r in range(R)])


def test_beats_both_names_the_dimensions_with_both_relative_figures():
    y = _labels()
    v = verdict(
        y,
        _flip(y, 0.1, 1),
        full_pred=_flip(y, 0.05, 2),
        majority_pred=np.ones_like(y),
        random_pred=_random(y),
        dims=[17, 203],
        task="SST-2",
    )
    assert v.status == "beats"
    assert v.headline.startswith("=> 2 dimensions carry SST-2: [17, 203]")
    assert v.vs_majority["ci_low"] > 0 and v.vs_random["ci_low"] > 0
    assert v.score == pytest.approx(0.9) and v.full == pytest.approx(0.95)
    assert v.share_of_full == pytest.approx(0.9 / 0.95)
    assert v.share_of_gap == pytest.approx((0.9 - v.majority) / (0.95 - v.majority))
    assert "of the majority-to-full gap" in v.headline


def test_f1_at_majority_is_not_announced_as_full_width():
    # a pair task where nothing is carried: every probe predicts always-positive
    y = _labels(pos=0.68)
    ones = np.ones_like(y)
    v = verdict(
        y,
        ones,
        full_pred=ones,
        majority_pred=ones,
        random_pred=np.stack([ones] * 5),
        metric="f1",
        dims=[3, 4],
        task="QNLI",
    )
    assert v.share_of_full == pytest.approx(1.0)  # "100% of full width" ...
    assert v.share_of_gap is None  # ... but full width does not beat the majority
    assert v.status == "baseline"
    assert v.headline.startswith("=> no dimension set beats the baselines on QNLI")
    assert "carry" not in v.headline and "[3, 4]" not in v.headline


def test_inside_the_random_band_is_not_a_win():
    y = _labels()
    rnd = np.stack([_flip(y, f, 100 + i) for i, f in enumerate(np.linspace(0.14, 0.26, 10))])
    v = verdict(
        y,
        _flip(y, 0.19, 7),  # as good as a typical random set
        full_pred=_flip(y, 0.05, 2),
        majority_pred=np.ones_like(y),
        random_pred=rnd,
        dims=[1, 2],
    )
    assert v.vs_majority["ci_low"] > 0  # it does beat the majority
    assert v.score <= v.random_mean + v.random_std
    assert v.status == "baseline" and "no dimension set" in v.headline


def test_small_gain_with_wide_interval_is_inconclusive():
    y = _labels(n=60)
    base = _flip(y, 0.3, 3)
    sel = base.copy()
    wrong = np.flatnonzero(sel != y)[:2]
    sel[wrong] = y[wrong]  # two more right answers than the majority-level probe
    maj = np.ones_like(y)
    v = verdict(y, sel, full_pred=_flip(y, 0.1, 4), majority_pred=maj, dims=[5], n_boot=500)
    assert v.vs_majority["diff"] > 0 and v.vs_majority["ci_low"] <= 0
    assert v.status == "inconclusive" and v.headline.startswith("=> inconclusive")


def test_bootstrap_is_paired_and_seeded():
    y = _labels()
    p = _flip(y, 0.2, 5)
    a = verdict(y, p, full_pred=y, majority_pred=np.ones_like(y), seed=3)
    b = verdict(y, p, full_pred=y, majority_pred=np.ones_like(y), seed=3)
    assert a.vs_majority == b.vs_majority
    # identical predictions: a paired difference is exactly 0 on every resample
    c = verdict(y, p, full_pred=y, majority_pred=p)
    assert c.vs_majority == {"diff": 0.0, "ci_low": 0.0, "ci_high": 0.0}


def test_bootstrap_scores_equal_metrics_on_resampled_rows():
    from sklearn.metrics import f1_score, matthews_corrcoef

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    p = rng.integers(0, 2, (2, 50))
    idx = rng.integers(0, 50, 50)
    W = np.bincount(idx, minlength=50)[None, :].astype(float)
    assert bootstrap_scores("f1", y, p, W)[0, 0] == pytest.approx(f1_score(y[idx], p[0][idx]))
    assert bootstrap_scores("mcc", y, p, W)[1, 0] == pytest.approx(
        matthews_corrcoef(y[idx], p[1][idx])
    )
    t = rng.standard_normal(50)
    q = t + rng.standard_normal(50)
    assert bootstrap_scores("pearson", t, q[None], W)[0, 0] == pytest.approx(
        np.corrcoef(t[idx], q[idx])[0, 1]
    )


def test_bad_input_is_refused():
    y = _labels(n=20)
    with pytest.raises(ConfigError, match="predictions must have the shape"):
        verdict(y, y[:5], full_pred=y, majority_pred=y)
    with pytest.raises(ConfigError, match="n_boot >= 10"):
        verdict(y, y, full_pred=y, majority_pred=y, n_boot=1)
