"""exact: the best k-subset (k = 3 or 4) of a prefilter of the top-M dimensions, on validation.

Gurnee et al. need a mixed-integer solver for exact sparse probes; here the scan is two
stages on the one engine:

1. **screen**: every ``C(M, k)`` subset (M = 50: 19,600 triples, 230,300 quadruples) gets the
   closed-form Fisher/LDA criterion ``J(S) = sum_c p_c d_{c,S}' Sw_S^-1 d_{c,S}`` (``d_c`` the
   class mean minus the overall mean, ``Sw`` the pooled within-class covariance; regression:
   the ``R^2`` of least squares), sliced from one set of moments of the fitting part and
   solved as one batch of ``k x k`` systems: no probe is fitted;
2. **refit**: the ``refit`` leaders of the screen (default 200) are fitted exactly by the
   engine on the fitting part and ranked on validation (the same criterion as every search);
   with ``refit >= C(M, k)`` or ``refit=None`` the scan is exhaustive and exact (every
   subset refitted: 19,600 triples over M = 50 take ~5 s on 10,000 examples, 2 CPU cores).
   The screen is a fit-part criterion: where what fits the fitting part does not carry to
   validation (a task with no signal, or adversarial splits such as WNLI's), its leaders can
   all miss the validation optimum, and greedy (which ranks on validation) can beat it; the
   result's ``greedy.val_gap`` then comes out negative: use ``refit=None``.

The winner is refitted on all of train and scored on eval, and greedy forward selection of
the same ``k`` (over the same prefilter and over all dimensions) is run on the same split, so
the result says how far greedy is from the optimum.
"""

from __future__ import annotations

import time
from itertools import combinations
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..probes import class_moments
from .config import SearchConfig, resolve_call
from .driver import Driver
from .extras import c_record, extras
from .greedy import greedy_select
from .problem import Problem
from .rank import METHODS, rank_order
from .result import SearchResult
from .sources import FeatureSource
from .verdict import judge

__all__ = ["exact", "fisher_scores", "subsets"]


def subsets(m: int, k: int) -> np.ndarray:
    """``[C(m, k), k]`` int64: every k-subset of ``range(m)``, lexicographic."""
    return np.fromiter((i for c in combinations(range(m), k) for i in c), dtype=np.int64).reshape(
        -1, k
    )


def fisher_scores(
    X: np.ndarray, y: np.ndarray, sets: np.ndarray, *, regression: bool = False, chunk: int = 65536
) -> np.ndarray:
    """``[B]`` closed-form LDA criterion of each subset ``sets [B, k]`` of the columns of
    ``X [n, D]`` (larger is better; see the module docstring). Moments in float64, once."""
    mo = class_moments(X, y, regression=regression)
    D = len(mo.mean)
    ridge = 1e-8 * max(float(np.trace(mo.cov)) / D, 1e-300)
    if regression:
        S, rhs, w = mo.cov, mo.cov_xy[:, None], np.ones(1)
    else:
        present = np.flatnonzero(mo.counts > 0)
        p = mo.counts[present] / mo.n
        S = np.einsum("c,cij->ij", p, mo.class_cov[present])  # pooled within-class
        rhs = (mo.class_mean[present] - mo.mean).T  # [D, C]
        w = p
    S = S + ridge * np.eye(D)
    out = np.empty(len(sets))
    for i in range(0, len(sets), chunk):
        idx = sets[i : i + chunk]
        A = S[idx[:, :, None], idx[:, None, :]]  # [b, k, k]
        r = rhs[idx]  # [b, k, C]
        sol = np.linalg.solve(A, r)
        out[i : i + chunk] = np.einsum("bkc,bkc,c->b", r, sol, w)
    return out


def _check(k: int, m: int, refit: int | None, prefilter: str) -> None:
    if k < 2:
        raise ConfigError(f"exact: k must be >= 2, got {k}")
    if m < k:
        raise ConfigError(f"exact: the prefilter size m={m} must be >= k={k}")
    if refit is not None and refit < 1:
        raise ConfigError(f"exact: refit must be >= 1 (or None: every subset), got {refit}")
    if prefilter not in METHODS:
        raise ConfigError(
            f"exact: prefilter must be one of {', '.join(METHODS)}, got {prefilter!r}"
        )


def exact_select(pb: Problem, k: int, pool_dims: np.ndarray, refit: int | None) -> dict[str, Any]:
    """Screen every k-subset of ``pool_dims [m]`` and refit the ``refit`` leaders (None: all)
    on validation."""
    t0 = time.perf_counter()
    sets = pool_dims[subsets(len(pool_dims), k)]
    J = fisher_scores(pb.X_fit, pb.y_fit, sets, regression=pb.regression)
    screen_s = time.perf_counter() - t0
    lead = np.argsort(-J, kind="stable")[: len(sets) if refit is None else min(refit, len(sets))]
    s, l = pb.select(sets[lead])
    order = pb.rank(s, l)
    b = int(order[0])
    return {
        "selected": sorted(int(d) for d in sets[lead[b]]),
        "val_score": float(s[b]),
        "val_loss": float(l[b]),
        "screen_rank": int(b) + 1,
        "n_subsets": len(sets),
        "n_refit": len(lead),
        "exhaustive": len(lead) == len(sets),
        "screen_s": screen_s,
        "refit_s": time.perf_counter() - t0 - screen_s,
        "leaders": [
            {"dims": sorted(int(d) for d in sets[lead[i]]), "val_score": float(s[i])}
            for i in order[:10]
        ],
    }


def _greedy_gap(pb: Problem, k: int, cand: np.ndarray | None, best: dict) -> dict[str, Any]:
    g = greedy_select(pb, k, candidates=cand)
    sel = g["selected"]
    val = g["steps"][-1]["val_score"]
    return {
        "selected": sel,
        "val_score": val,
        "metrics": pb.report_one(sel),
        "val_gap": best["val_score"] - val,
        "same_set": sorted(sel) == best["selected"],
    }


def exact(
    train: FeatureSource,
    eval: FeatureSource | None = None,
    *,
    layer: int = -1,
    pool: str = "cls",
    k: int = 3,
    prefilter: str = "mean-diff",
    m: int = 50,
    refit: int | None = 200,
    mdl: bool = False,
    ablation: bool = False,
    config: SearchConfig | None = None,
    **legacy: Any,
) -> SearchResult:
    """The best ``k``-subset of the top-``m`` dimensions by ``prefilter`` (see the module).

    Returns:
        ``SearchResult``: ``selected`` (the optimum, sorted), ``metrics`` (eval),
        ``val_score``, ``prefilter_dims``, ``leaders`` (top 10 refits), ``greedy`` (same k,
        same prefilter: ``val_gap`` = optimum minus greedy validation score) and
        ``greedy_all`` (over all dimensions), baselines, ``verdict``, optional ``mdl`` /
        ``ablation``.
    """
    eval, config = resolve_call("exact", eval, config, legacy)
    _check(k, m, refit, prefilter)
    li = int(train.layer_index(layer))
    opts = dict(layer=li, pool=pool, k=k, prefilter=prefilter, m=m, refit=refit)
    opts.update(mdl=mdl, ablation=ablation)
    run = Driver("exact", train, eval, opts, config)
    pb = run.problem(li, pool)
    if m > pb.n_dims:
        raise ConfigError(f"exact: m={m} exceeds the layer's {pb.n_dims} dimensions")
    t0 = time.perf_counter()
    cand = np.sort(rank_order(pb, prefilter, m)[:m])
    prefilter_s = time.perf_counter() - t0
    best = exact_select(pb, k, cand, refit)
    rb = pb.random(k)
    data = {
        "layer": li,
        "pool": pool,
        "k": k,
        **best,
        "prefilter": prefilter,
        "m": m,
        "prefilter_dims": cand.tolist(),
        "prefilter_s": prefilter_s,
        "metrics": pb.report_one(best["selected"]),
        "greedy": _greedy_gap(pb, k, cand, best),
        "greedy_all": _greedy_gap(pb, k, None, best),
        "full_metrics": pb.full(),
        "random_baseline": rb,
        "majority_baseline": pb.majority(),
        "verdict": judge(
            pb, best["selected"], task=train.task.name, random_dims=rb["dims"]
        ).to_dict(),
        "C": c_record(pb),
        "n_fit": len(pb.idx_fit),
        "n_val": len(pb.idx_val),
        "n_eval": len(run.y_eval),
    }
    types = run.control_types() if mdl else None
    data.update(extras(pb, best["selected"], mdl=mdl, ablation=ablation, types=types))
    rows = [dict(rank=i + 1, **r) for i, r in enumerate(best["leaders"])]
    return run.finish(data, rows)
