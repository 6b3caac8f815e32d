"""Sweeps: per layer (:func:`layers`) or per pooling (:func:`tokens`), the full-width score
and the greedy ``k``-dimension score, each with random baselines."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._io import to_jsonable
from ..errors import ConfigError
from . import fanout
from .checkpoint import Checkpoint
from .config import SearchConfig, resolve_call
from .driver import Driver, layer_list, metric_cells
from .greedy import greedy_select
from .pairs import UNIT_PAIRS, candidate_dims, score_pairs
from .problem import ProblemData
from .result import SearchResult
from .sources import FeatureSource

__all__ = ["layers", "tokens"]


def _best_greedy(per: Sequence[Mapping[str, Any]], metric: str) -> Mapping[str, Any]:
    """The unit (layer or pool) whose greedy-k set scores best on eval; missing scores last."""
    return max(
        per,
        key=lambda r: (
            r["greedy_metrics"][metric] if r["greedy_metrics"][metric] is not None else -np.inf
        ),
    )


def _greedy_cells(r: Mapping[str, Any], k: int) -> dict[str, Any]:
    """CSV cells of a unit's greedy-k result and its random-k baseline."""
    cells: dict[str, Any] = {"greedy_selected": r["greedy_selected"]}
    cells.update(metric_cells(f"greedy{k}_", r["greedy_metrics"]))
    cells.update(metric_cells(f"random{k}_mean_", r["random_baseline"]["mean"]))
    cells.update(metric_cells(f"random{k}_std_", r["random_baseline"]["std"]))
    return cells


def _layer_unit(
    data: ProblemData, layer: int, k: int, pair_candidates: int | None, ckpt: Checkpoint
) -> dict[str, Any]:
    done = ckpt.load(f"layer-{layer}")
    if done is not None:
        return done
    t0 = time.perf_counter()
    pb = data.problem()
    full = pb.full()
    cand = candidate_dims(pb, pair_candidates)
    ps = score_pairs(pb, cand, ckpt, prefix=f"layer-{layer}-", chunk=UNIT_PAIRS, n_jobs=1)
    b = int(pb.rank(ps.score, ps.loss)[0])
    pair = [int(x) for x in ps.pairs[b]]
    g = greedy_select(pb, k, checkpoint=ckpt, unit=f"layer-{layer}-greedy")
    out = {
        "layer": layer,
        "full_metrics": full,
        "best_pair": pair,
        "pair_val": float(ps.score[b]),
        "pair_metrics": pb.report_one(pair),
        "pair_candidates": len(cand),
        "greedy_selected": g["selected"],
        "greedy_val": g["steps"][-1]["val_score"],
        "greedy_metrics": pb.report_one(g["selected"]),
        "random_baseline": pb.random(k),
        "random_baseline_pair": pb.random(2),
        "elapsed_s": time.perf_counter() - t0,
    }
    out = to_jsonable(out)
    ckpt.save(f"layer-{layer}", out)
    return out


def layers(
    train: FeatureSource,
    eval: FeatureSource | None = None,
    *,
    layers: Sequence[int] | None = None,
    pool: str = "cls",
    k: int = 3,
    pair_candidates: int | None = None,
    config: SearchConfig | None = None,
    **legacy: Any,
) -> SearchResult:
    """Layer sweep: for every layer (embeddings and each block) the full-dimension score, the
    best pair (all pairs, or pairs among the ``pair_candidates`` best single dimensions) and the
    greedy ``k``-dimension score, each with random baselines. Layers fan out over joblib.

    Returns:
        ``SearchResult``: ``per_layer`` (one entry per layer), ``selected``/``metrics`` of the
        layer with the best greedy-k eval score (its ``layer``), ``full_metrics`` and
        ``random_baseline`` of that layer; rows: one per layer.
    """
    eval, config = resolve_call("layers", eval, config, legacy)
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    lays = layer_list(train, layers)
    opts = dict(layers=lays, pool=pool, k=k, pair_candidates=pair_candidates)
    run = Driver("layers", train, eval, opts, config)
    cfg = run.config
    jobs = (
        fanout.delayed(_layer_unit)(run.data(l, pool), l, k, pair_candidates, run.ckpt)
        for l in lays
    )
    per = fanout.run_units(jobs, len(lays), n_jobs=cfg.n_jobs, show=cfg.progress, desc="layers")
    best = _best_greedy(per, run.primary)
    rows = []
    for r in per:
        row = {"layer": r["layer"], **metric_cells("full_", r["full_metrics"])}
        row["best_pair"] = r["best_pair"]
        row.update(metric_cells("pair_", r["pair_metrics"]))
        row.update(_greedy_cells(r, k))
        rows.append(row)
    data = {
        "pool": pool,
        "k": k,
        "layers": lays,
        "per_layer": per,
        "layer": best["layer"],
        "selected": best["greedy_selected"],
        "metrics": best["greedy_metrics"],
        "full_metrics": best["full_metrics"],
        "random_baseline": best["random_baseline"],
        "majority_baseline": run.majority(),
    }
    return run.finish(data, rows)


def _pool_unit(data: ProblemData, pool: str, k: int, ckpt: Checkpoint) -> dict[str, Any]:
    done = ckpt.load(f"pool-{pool}")
    if done is not None:
        return done
    t0 = time.perf_counter()
    pb = data.problem()
    g = greedy_select(pb, k, checkpoint=ckpt, unit=f"pool-{pool}-greedy")
    out = to_jsonable(
        {
            "pool": pool,
            "full_metrics": pb.full(),
            "greedy_selected": g["selected"],
            "greedy_val": g["steps"][-1]["val_score"],
            "greedy_metrics": pb.report_one(g["selected"]),
            "random_baseline": pb.random(k),
            "elapsed_s": time.perf_counter() - t0,
        }
    )
    ckpt.save(f"pool-{pool}", out)
    return out


def tokens(
    train: FeatureSource,
    eval: FeatureSource | None = None,
    *,
    layer: int = -1,
    pools: Sequence[str] = ("cls", "mean", "max_norm"),
    k: int = 3,
    config: SearchConfig | None = None,
    **legacy: Any,
) -> SearchResult:
    """Token comparison: ``cls`` vs ``mean`` vs ``max_norm`` pooling of one layer, at full
    width and with ``k`` greedily chosen dimensions (chosen on validation, scored on eval).

    Returns:
        ``SearchResult``: ``per_pool``; ``selected``/``metrics``/``full_metrics``/
        ``random_baseline`` of the pool with the best k-dimension eval score (its ``pool``);
        rows: one per pool.
    """
    eval, config = resolve_call("tokens", eval, config, legacy)
    pools = list(pools)
    missing = [p for p in pools if p not in train.pools or p not in eval.pools]
    if missing:
        raise ConfigError(
            f"pools {missing} are not in both sources (train has {list(train.pools)}, "
            f"eval has {list(eval.pools)})"
        )
    li = int(train.layer_index(layer))
    run = Driver("tokens", train, eval, dict(layer=li, pools=pools, k=k), config)
    cfg = run.config
    jobs = (fanout.delayed(_pool_unit)(run.data(li, p), p, k, run.ckpt) for p in pools)
    per = fanout.run_units(jobs, len(pools), n_jobs=cfg.n_jobs, show=cfg.progress, desc="pools")
    best = _best_greedy(per, run.primary)
    rows = []
    for r in per:
        row = {"pool": r["pool"], **metric_cells("full_", r["full_metrics"])}
        row.update(_greedy_cells(r, k))
        rows.append(row)
    data = {
        "layer": li,
        "k": k,
        "pools": pools,
        "per_pool": per,
        "pool": best["pool"],
        "selected": best["greedy_selected"],
        "metrics": best["greedy_metrics"],
        "full_metrics": best["full_metrics"],
        "random_baseline": best["random_baseline"],
        "majority_baseline": run.majority(),
    }
    return run.finish(data, rows)
