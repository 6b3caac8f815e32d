"""rank: the peers' dimension rankings (and ours) on one engine, scored top-k for k = 1..K.

Every method orders the dimensions of one (layer, pool) from the **fitting part** of the
validation split (as every selection does): ``mean-diff``, ``f-stat``, ``l1``, ``lca``, ``mi``
(:func:`probekit.probes.rank_dimensions`), ``stump`` (the exact-threshold stump of each
dimension, ranked on validation, as :func:`probekit.search.singles`) and ``greedy`` (the
order of :func:`probekit.search.greedy_select`). The top-``k`` of each ranking is then scored
with the same probe (refitted on all of train, scored on eval) for ``k = 1..K``, next to the
random-``k`` band (mean +- std over ``n_random`` draws per ``k``) and the majority baseline.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..metrics import batch_metrics
from ..probes import RANKING_METHODS, class_moments, rank_dimensions
from ..stumps import fit_stumps, predict_stumps
from .config import SearchConfig, resolve_call
from .driver import Driver, metric_cells
from .extras import c_record, extras
from .greedy import greedy_select
from .problem import Problem
from .result import SearchResult
from .sources import FeatureSource
from .verdict import judge

__all__ = ["METHODS", "rank", "rank_order"]

#: every ranking ``probekit search rank --method`` knows (``all``: each of them)
METHODS = (*RANKING_METHODS, "stump", "greedy")


def rank_order(pb: Problem, method: str, k: int, moments=None) -> np.ndarray:
    """``[m]`` dimensions best first by ``method``, from the fitting part of ``pb`` only
    (``m >= k``; ``greedy`` and ``mi`` give exactly ``k``)."""
    if method == "greedy":
        return np.asarray(greedy_select(pb, k)["selected"], dtype=np.int64)
    if method == "stump":
        sf = fit_stumps(pb.X_fit, pb.y_fit, regression=pb.regression, metric=pb.primary)
        s = batch_metrics((pb.primary,), pb.y_val, predict_stumps(sf, pb.X_val))[pb.primary]
        return pb.rank(s, -sf.train_score).astype(np.int64)
    r = rank_dimensions(
        pb.X_fit,
        pb.y_fit,
        method,
        regression=pb.regression,
        max_k=k,
        seed=pb.config.seed,
        moments=moments,
    )
    return r.order


def _methods(method: str | Sequence[str]) -> list[str]:
    ms = list(METHODS) if method == "all" else [method] if isinstance(method, str) else list(method)
    bad = [m for m in ms if m not in METHODS]
    if bad or not ms:
        raise ConfigError(f"rank: method must be 'all' or one of {', '.join(METHODS)}; got {bad}")
    return ms


def _curve(pb: Problem, order: np.ndarray, k: int) -> list[dict[str, float]]:
    return [pb.report_one(order[:t]) for t in range(1, k + 1)]


def _rows(rankings: dict[str, Any], band: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CSV rows: one per (method, k) with the eval metrics and the random band of that k."""
    rows = []
    for m, r in rankings.items():
        for t, sc in enumerate(r["curve"], start=1):
            row = {"method": m, "k": t, "dims": r["order"][:t]}
            row.update(metric_cells("dev_", sc))
            row.update(metric_cells("random_mean_", band[t - 1]["mean"]))
            row.update(metric_cells("random_std_", band[t - 1]["std"]))
            rows.append(row)
    return rows


def rank(
    train: FeatureSource,
    eval: FeatureSource | None = None,
    *,
    layer: int = -1,
    pool: str = "cls",
    method: str | Sequence[str] = "all",
    k: int = 10,
    mdl: bool = False,
    ablation: bool = False,
    config: SearchConfig | None = None,
    **legacy: Any,
) -> SearchResult:
    """Rank the dimensions of one layer by each method and score its top-k, k = 1..``k``.

    Args:
        method: one of :data:`METHODS`, a list of them, or ``all``.
        k: the largest top-k scored (``K``).
        **legacy: deprecated: ``dev=`` and the :class:`SearchConfig` fields as keywords.
        mdl, ablation: add the :mod:`~probekit.search.extras` blocks of each method's top-k.

    Returns:
        ``SearchResult`` with ``methods``, ``rankings`` (per method: ``order`` (first ``K``
        at least), ``seconds``, ``curve`` (eval metrics of the top-1..K), ``verdict``,
        optional ``mdl`` / ``ablation``, also at the top level for the best method),
        ``random_band`` (per k: mean and std), majority
        and full-width scores; ``selected`` / ``metrics`` are those of the best method's top-K
        (by validation score of the top-K). Rows: one per (method, k).
    """
    eval, config = resolve_call("rank", eval, config, legacy)
    if k < 1:
        raise ConfigError(f"rank: k must be >= 1, got {k}")
    methods = _methods(method)
    li = int(train.layer_index(layer))
    opts = dict(layer=li, pool=pool, method=methods, k=k, mdl=mdl, ablation=ablation)
    run = Driver("rank", train, eval, opts, config)
    pb = run.problem(li, pool)
    k = min(k, pb.n_dims)
    need_moments = any(m in RANKING_METHODS for m in methods)
    moments = class_moments(pb.X_fit, pb.y_fit, regression=pb.regression) if need_moments else None
    band = [pb.random(t) for t in range(1, k + 1)]
    rankings: dict[str, Any] = {}
    for m in methods:
        t0 = time.perf_counter()
        order = rank_order(pb, m, k, moments)
        secs = time.perf_counter() - t0
        top = order[:k]
        val, _ = pb.select(top[None, :])
        rankings[m] = {
            "order": order[: max(k, min(len(order), 50))].tolist(),
            "seconds": secs,
            "val_score": float(val[0]),
            "curve": _curve(pb, order, len(top)),
            "verdict": judge(pb, top, task=train.task.name, random_dims=band[-1]["dims"]).to_dict(),
        }
        types = run.control_types() if mdl else None
        rankings[m].update(extras(pb, top.tolist(), mdl=mdl, ablation=ablation, types=types))
    best = max(methods, key=lambda m: rankings[m]["val_score"])
    data = {
        "layer": li,
        "pool": pool,
        "k": k,
        "methods": methods,
        "rankings": rankings,
        "best_method": best,
        "selected": rankings[best]["order"][:k],
        "metrics": rankings[best]["curve"][-1],
        "verdict": rankings[best]["verdict"],
        "full_metrics": pb.full(),
        "random_baseline": band[-1],
        "random_band": [{"k": b["k"], "mean": b["mean"], "std": b["std"]} for b in band],
        "majority_baseline": pb.majority(),
        "C": c_record(pb),
        "n_fit": len(pb.idx_fit),
        "n_val": len(pb.idx_val),
        "n_eval": len(run.y_eval),
    }
    data.update({b: rankings[best][b] for b in ("mdl", "ablation") if b in rankings[best]})
    return run.finish(data, _rows(rankings, band))
