"""The report's rank and exact sections, and the verdict / MDL / ablation lines."""

from __future__ import annotations

import dataclasses

import numpy as np

from probekit import search as S
from probekit.report import write_report
from probekit.search import ArraySource, SearchConfig


def _src(n, seed, signal=True):
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, 1, 16)).astype(np.float32)
    z = X[:, 0, 3] + X[:, 0, 11] if signal else r.standard_normal(n)
    return ArraySource(X, (z + 0.3 * r.standard_normal(n) > 0).astype(np.int64))


def test_rank_exact_and_verdicts_in_the_report(tmp_path):
    tr, dv = _src(300, 0), _src(200, 1)
    cfg = SearchConfig(n_random=5)

    S.rank(
        tr,
        dv,
        layer=0,
        method=["mean-diff", "mi"],
        k=3,
        ablation=True,
        config=dataclasses.replace(cfg, out_dir=tmp_path / "rank"),
    )
    S.exact(
        tr,
        dv,
        layer=0,
        k=3,
        m=8,
        mdl=True,
        config=dataclasses.replace(cfg, out_dir=tmp_path / "exact"),
    )
    # noise: the greedy set must not be announced
    S.greedy(
        _src(300, 2, False),
        _src(200, 3, False),
        layer=0,
        k=2,
        config=dataclasses.replace(cfg, out_dir=tmp_path / "noise"),
    )
    rep = write_report(tmp_path, tmp_path / "rep")
    md = rep.markdown.read_text()
    assert "## rank" in md and "| mean-diff | [" in md and "| random k |" in md
    assert (tmp_path / "rep" / "rank_rank_rankings.png").stat().st_size > 1000
    assert "Exact best 3-subset of the top 8 by `mean-diff`: 56 subsets screened" in md
    assert "greedy (greedy_all)" in md and "MDL (online code)" in md
    assert "ablation (accuracy): without the set" in md
    assert "=> 3 dimensions carry" in md  # the planted rank/exact sets win
    noise = md[md.index("## greedy") :]
    assert "**Verdict** (baseline)" in noise or "**Verdict** (inconclusive)" in noise
    assert "carry" not in noise.split("**Verdict**")[1].split("\n")[0]
