"""singles: every dimension of every layer on its own, as an exact-threshold stump and as a
one-dimension probe; ranked on validation."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._io import to_jsonable
from ..metrics import batch_metrics
from ..stumps import fit_stumps, predict_stumps
from . import fanout
from .checkpoint import Checkpoint
from .config import SearchConfig, resolve_call
from .driver import Driver, layer_list
from .problem import ProblemData, best_first
from .result import SearchResult
from .sources import FeatureSource

__all__ = ["singles"]


def _layer(data: ProblemData, layer: int, probe: bool, ckpt: Checkpoint) -> dict[str, Any]:
    """Stumps (and 1-d probes) of every dimension of one layer; one checkpointed unit."""
    done = ckpt.load(f"layer-{layer}")
    if done is not None:
        return done
    t0 = time.perf_counter()
    pb = data.problem()
    p, mets, reg = pb.primary, pb.metrics, pb.regression
    n_classes = None if reg else int(max(pb.y_train.max(), pb.y_eval.max()) + 1)
    # thresholds chosen on the fitting part (ranked on validation), refitted on all train for eval
    sf = fit_stumps(pb.X_fit, pb.y_fit, regression=reg, metric=p, n_classes=n_classes)
    stump_val = batch_metrics((p,), pb.y_val, predict_stumps(sf, pb.X_val))[p]
    sa = fit_stumps(pb.X_train, pb.y_train, regression=reg, metric=p, n_classes=n_classes)
    out: dict[str, Any] = {
        "layer": layer,
        "stump_threshold": sa.threshold,
        "stump_train": sa.train_score,
        "stump_val": stump_val,
        "stump_dev": batch_metrics(mets, pb.y_eval, predict_stumps(sa, pb.X_eval)),
        "stump_s": time.perf_counter() - t0,
    }
    if probe:
        dims = np.arange(pb.n_dims)[:, None]
        out["probe_val"], out["probe_val_loss"] = pb.select(dims)
        out["probe_dev"] = pb.report(dims)
    out["full_metrics"] = pb.full()
    out["random_baseline"] = pb.random(1)
    out["elapsed_s"] = time.perf_counter() - t0
    out = to_jsonable(out)
    ckpt.save(f"layer-{layer}", out)
    return out


def _floats(res: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if v is None else v for r in res for v in r[key]], dtype=np.float64)


def _rows(res: list[dict[str, Any]], probe: bool, primary: str, metrics) -> list[dict[str, Any]]:
    rows = []
    for r in res:
        for d in range(len(r["stump_val"])):
            row = {
                "layer": r["layer"],
                "dim": d,
                "stump_threshold": r["stump_threshold"][d],
                f"stump_val_{primary}": r["stump_val"][d],
            }
            row.update({f"stump_dev_{m}": r["stump_dev"][m][d] for m in metrics})
            if probe:
                row[f"probe_val_{primary}"] = r["probe_val"][d]
                row["probe_val_loss"] = r["probe_val_loss"][d]
                row.update({f"probe_dev_{m}": r["probe_dev"][m][d] for m in metrics})
            rows.append(row)
    return rows


def _rank(rows, res, probe: bool, criterion: str) -> np.ndarray:
    """Set ``rank`` (by probe, or stump) and ``rank_stump`` on every row; the order."""
    score = _floats(res, "probe_val" if probe else "stump_val")
    loss = _floats(res, "probe_val_loss") if probe else -_floats(res, "stump_train")
    order = best_first(score, loss, criterion if probe else "metric")
    for rank, i in enumerate(order):
        rows[i]["rank"] = rank + 1
    stump_score = _floats(res, "stump_val")
    for rank, i in enumerate(best_first(stump_score, np.zeros_like(stump_score))):
        rows[i]["rank_stump"] = rank + 1
    return order


def _best_per_layer(rows, res, pref: str, primary: str, metrics) -> list[dict[str, Any]]:
    out = []
    for r in res:
        b = min((row for row in rows if row["layer"] == r["layer"]), key=lambda row: row["rank"])
        out.append(
            {
                "layer": r["layer"],
                "dim": b["dim"],
                "rank": b["rank"],
                "val": b[f"{pref}_val_{primary}"],
                "dev": {m: b[f"{pref}_dev_{m}"] for m in metrics},
                "full_metrics": r["full_metrics"],
                "random_baseline": r["random_baseline"],
                "stump_s": r["stump_s"],
            }
        )
    return out


def singles(
    train: FeatureSource,
    eval: FeatureSource | None = None,
    *,
    layers: Sequence[int] | None = None,
    pool: str = "cls",
    probe: bool = True,
    top: int = 20,
    config: SearchConfig | None = None,
    **legacy: Any,
) -> SearchResult:
    """Every dimension of every layer on its own: an exact-threshold stump and a 1-d probe.

    Args:
        train, eval: sources; selection uses a validation split of ``train``, reported scores
            are on ``eval``.
        layers: layer indices (default: all, embeddings included).
        pool: ``cls``, ``mean`` or ``max_norm``.
        probe: also fit a one-dimension probe per dimension (else stumps only).
        top: rows in the ranked ``top`` list of the JSON (the CSV has every dimension).
        config: the shared settings (``n_jobs``: workers over layers).
        **legacy: deprecated: ``dev=`` and the :class:`SearchConfig` fields as keywords.

    Returns:
        ``SearchResult`` whose ``data`` has ``top`` (ranked by the validation score of the
        probe, or of the stump with ``probe=False``), ``best_per_layer``, ``selected`` (the
        best dimension), ``layer``, ``metrics``, ``full_metrics`` and ``random_baseline``
        (of the best dimension's layer), ``per_layer`` baselines; rows: one per (layer, dim).
    """
    eval, config = resolve_call("singles", eval, config, legacy)
    opts = dict(layers=None if layers is None else list(layers), pool=pool, probe=probe, top=top)
    run = Driver("singles", train, eval, opts, config)
    cfg, p = run.config, run.primary
    lays = layer_list(train, layers)
    jobs = (fanout.delayed(_layer)(run.data(l, pool), l, probe, run.ckpt) for l in lays)
    res = fanout.run_units(jobs, len(lays), n_jobs=cfg.n_jobs, show=cfg.progress, desc="layers")
    rows = _rows(res, probe, p, cfg.metrics)
    order = _rank(rows, res, probe, cfg.criterion)
    pref = "probe" if probe else "stump"
    best = rows[order[0]]
    bl = next(r for r in res if r["layer"] == best["layer"])
    data = {
        "layers": lays,
        "pool": pool,
        "layer": best["layer"],
        "selected": [best["dim"]],
        "metrics": {m: best[f"{pref}_dev_{m}"] for m in cfg.metrics},
        "full_metrics": bl["full_metrics"],
        "random_baseline": bl["random_baseline"],
        "majority_baseline": run.majority(),
        "ranked_by": f"{pref}_val_{p}",
        "top": [rows[i] for i in order[:top]],
        "best_per_layer": _best_per_layer(rows, res, pref, p, cfg.metrics),
        "stump_seconds": float(sum(r["stump_s"] for r in res)),
    }
    return run.finish(data, rows)
