"""The run's final line is the verdict's headline: dimensions are named only when they win."""

from __future__ import annotations

import argparse

import numpy as np

from probekit.cli.run import _conclusion
from probekit.search import verdict


def _summary(v) -> dict:
    g = {
        "selected": [1, 2, 3],
        "metrics": {"f1": v.score},
        "random_baseline": {"mean": {"f1": 0.5}, "std": {"f1": 0.01}},
    }
    e = {"steps": [], "best_pair": v.dims, "pair_metrics": {"f1": v.score}, "verdict": v.to_dict()}
    return {
        "primary_metric": "f1",
        "greedy": g,
        "eliminate": e,
        "full_metrics": {"f1": v.full},
        "majority_baseline": {"f1": v.majority},
        "headline": v.headline,
    }


def test_at_majority_the_run_does_not_name_dimensions():
    y = (np.random.default_rng(0).random(300) < 0.7).astype(np.int64)
    ones = np.ones_like(y)
    v = verdict(y, ones, full_pred=ones, majority_pred=ones, metric="f1", dims=[4, 9], task="QNLI")
    args = argparse.Namespace(k=3, layer=-1, pool="cls", task="QNLI")
    text = "\n".join(_conclusion(_summary(v), args))
    assert "=> no dimension set beats the baselines on QNLI" in text
    assert "carry" not in text
    # the old headline would have said "=> 2 dimensions carry QNLI: [4, 9] (... 100% of full)"
    assert "0% of the majority-to-full gap" in text or "n/a of the majority-to-full gap" in text
