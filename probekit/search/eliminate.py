"""eliminate: the remove-one procedure of Fukuhata & Kano (2025), then all pairs of the
survivors."""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._io import to_jsonable
from ..errors import ConfigError
from . import fanout
from .checkpoint import Checkpoint
from .config import SearchConfig, resolve_call
from .driver import Driver
from .extras import add_verdict
from .problem import RESAMPLES, Problem, ProblemData
from .result import SearchResult
from .sources import FeatureSource
from .stability import stability

logger = logging.getLogger(__name__)

__all__ = ["eliminate"]

Start = int | str | list[int]


@dataclass(frozen=True)
class _Options:
    """What one elimination repeat needs besides its data (picklable, for a worker)."""

    start: Start
    k: int
    tol: float | None
    exact_max: int
    resample: str


def _start_set(start: Start, D: int, seed: int) -> list[int]:
    if start == "all":
        return list(range(D))
    if isinstance(start, int):
        if not 1 <= start <= D:
            raise ConfigError(f"start: need 1..{D} random dimensions, got {start}")
        rng = np.random.default_rng(seed)
        return sorted(int(x) for x in rng.choice(D, size=start, replace=False))
    S = [int(x) for x in start]
    if len(set(S)) != len(S) or min(S) < 0 or max(S) >= D:
        raise ConfigError(f"start: dimensions must be distinct and in 0..{D - 1}, got {S}")
    return S


def _weights_step(pb: Problem, S: list[int], exact_max: int) -> dict[str, Any]:
    """Coarse phase for large sets: drop the dims with the smallest weights of a probe on S
    (at the ``C`` of ``|S|`` dimensions)."""
    t0 = time.perf_counter()
    fit = pb.engine_for(len(S)).fit(pb.X_fit, pb.y_fit, np.asarray(S)[None, :])
    w = np.sqrt((fit.coef[0] ** 2).sum(axis=0))  # [|S|] on standardised features
    m = max(1, min(len(S) - exact_max, math.ceil(0.1 * len(S))))
    out = np.argsort(w, kind="stable")[:m]
    return {
        "size": len(S),
        "method": "weights",
        "removed": [S[i] for i in out],
        "weights": {int(S[i]): float(w[i]) for i in out},
        "seconds": time.perf_counter() - t0,
    }


def _without_each(S: list[int]) -> np.ndarray:
    """``[|S|, |S|-1]``: ``S`` without each of its members."""
    return np.array([[d for d in S if d != x] for x in S], dtype=np.int64)


def _exact_step(pb: Problem, S: list[int], tol: float | None) -> dict[str, Any]:
    """Score ``S`` without each member; remove the one whose removal hurts least (or stop
    with ``stopped: "tol"`` when every removal costs more than ``tol``)."""
    t0 = time.perf_counter()
    base, base_l = pb.select(np.asarray(S)[None, :])
    s, l = pb.select(_without_each(S))
    drops = float(base[0]) - s
    b = int(pb.rank(s, l)[0])  # the best score without it
    step: dict[str, Any] = {"size": len(S), "method": "exact", "score": float(base[0])}
    if tol is not None and drops[b] > tol:
        step["stopped"] = "tol"
    else:
        step["loss"] = float(base_l[0])
    step["drops"] = {int(S[i]): float(drops[i]) for i in range(len(S))}
    if "stopped" not in step:
        step["removed"] = [int(S[b])]
        step["score_after"] = float(s[b])
    step["seconds"] = time.perf_counter() - t0
    return step


def _final(pb: Problem, S: list[int]) -> dict[str, Any]:
    """The drop each survivor's removal causes, and all pairs among the survivors."""
    base, _ = pb.select(np.asarray(S)[None, :])
    drops = {}
    if len(S) >= 2:
        s, _ = pb.select(_without_each(S))
        drops = {int(S[i]): float(base[0] - s[i]) for i in range(len(S))}
    pair_scores = []
    if len(S) >= 2:
        Pp = np.array(list(itertools.combinations(sorted(S), 2)), dtype=np.int64)
        ps, pl = pb.select(Pp)
        for i in pb.rank(ps, pl):
            pair_scores.append(
                {
                    "dims": [int(x) for x in Pp[i]],
                    "val_score": float(ps[i]),
                    "val_loss": float(pl[i]),
                }
            )
    return {
        "selected": sorted(S, key=lambda d: (-drops.get(d, 0.0), d)),
        "final_score": float(base[0]),
        "final_drops": drops,
        "pairs": pair_scores,
    }


def _repeat(data: ProblemData, r: int, opt: _Options, ckpt: Checkpoint) -> dict[str, Any]:
    unit = f"repeat-{r}"
    state = ckpt.load(unit)
    if state is not None and state.get("done"):
        return state
    pb = data.repeat(r, opt.resample)
    if state is None:
        S = _start_set(opt.start, pb.n_dims, data.config.seed + r)
        state = {"start": list(S), "survivors": list(S), "steps": [], "done": False}
    S, steps = list(state["survivors"]), list(state["steps"])
    while len(S) > opt.k:
        if len(S) > opt.exact_max:
            steps.append(_weights_step(pb, S, opt.exact_max))
        else:
            steps.append(_exact_step(pb, S, opt.tol))
            if "stopped" in steps[-1]:
                break
        gone = set(steps[-1]["removed"])
        S = [d for d in S if d not in gone]
        state = {"start": state["start"], "survivors": S, "steps": steps, "done": False}
        ckpt.save(unit, state)
    fin = _final(pb, S)
    state = {
        "start": state["start"],
        "survivors": S,
        "selected": fin["selected"],
        "final_score": fin["final_score"],
        "final_drops": fin["final_drops"],
        "steps": steps,
        "pairs": fin["pairs"],
        "done": True,
    }
    state = json.loads(json.dumps(to_jsonable(state)))  # the same types whether fresh or resumed
    ckpt.save(unit, state)
    return state


def _parse_start(start: int | str | Sequence[int]) -> Start:
    if isinstance(start, str):
        if start.strip().lower() == "all":
            return "all"
        try:
            dims = [int(t) for t in start.replace(" ", "").split(",") if t]
        except ValueError:
            raise ConfigError(
                f"start: expected an int, 'all' or a list like '5,17,203', got {start!r}"
            ) from None
        return dims[0] if len(dims) == 1 else dims
    if isinstance(start, int):
        return start
    return [int(x) for x in start]


def _rows(main: dict[str, Any], primary: str) -> list[dict[str, Any]]:
    rows = []
    for s_ in main["steps"]:
        row = {
            "size": s_["size"],
            "method": s_["method"],
            "removed": s_.get("removed", []),
            f"val_{primary}": s_.get("score"),
            "score_after": s_.get("score_after"),
        }
        if "drops" in s_:
            row["drops"] = ";".join(f"{d}:{v:.4f}" for d, v in s_["drops"].items())
        rows.append(row)
    rows.append(
        {
            "size": len(main["selected"]),
            "method": "final",
            "removed": [],
            f"val_{primary}": main["final_score"],
            "drops": ";".join(f"{d}:{v:.4f}" for d, v in main["final_drops"].items()),
        }
    )
    return rows


def _check(k: int, exact_max: int, resample: str) -> None:
    """Refuse a ``k``, ``exact_max`` or ``resample`` out of range (before any data is read)."""
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    if exact_max < 2:
        raise ConfigError(f"exact_max must be >= 2, got {exact_max}")
    if resample not in RESAMPLES:
        raise ConfigError(f"resample must be 'split' or 'bootstrap', got {resample!r}")


def _run_repeats(
    run: Driver, data: ProblemData, opt: _Options, repeats: int
) -> list[dict[str, Any]]:
    """The final states of repeats ``0..repeats-1`` (each one checkpointed unit), in order;
    fanned out over ``n_jobs`` with a progress bar only when there is more than one."""
    cfg = run.config
    jobs = (fanout.delayed(_repeat)(data, r, opt, run.ckpt) for r in range(repeats))
    n_jobs, show = (cfg.n_jobs, cfg.progress) if repeats > 1 else (1, False)
    return fanout.run_units(jobs, repeats, n_jobs=n_jobs, show=show, desc="repeats")


def _summary(
    main: dict[str, Any], pb: Problem, li: int, pool: str, k: int, tol: float | None
) -> dict[str, Any]:
    """The result's fields from the main repeat's state: its survivors and pairs, with their
    eval metrics and the full-width, random and majority baselines of the main problem."""
    selected = main["selected"]
    best_pair = main["pairs"][0]["dims"] if main["pairs"] else None
    return {
        "layer": li,
        "pool": pool,
        "start": main["start"],
        "k": k,
        "tol": tol,
        "selected": selected,
        "metrics": pb.report_one(selected),
        "val_score": main["final_score"],
        "final_drops": main["final_drops"],
        "steps": main["steps"],
        "pairs": main["pairs"],
        "best_pair": best_pair,
        "pair_metrics": pb.report_one(best_pair) if best_pair else None,
        "full_metrics": pb.full(),
        "random_baseline": pb.random(len(selected)),
        "random_baseline_pair": pb.random(2) if best_pair and len(selected) != 2 else None,
        "majority_baseline": pb.majority(),
    }


def _stability(reps: list[dict[str, Any]], resample: str) -> dict[str, Any]:
    """How often each dimension survives across the repeats, and each repeat's best pair."""
    return dict(
        stability([r["selected"] for r in reps]),
        resample=resample,
        best_pairs=[r["pairs"][0]["dims"] if r["pairs"] else None for r in reps],
    )


def eliminate(
    train: FeatureSource,
    eval: FeatureSource | None = None,
    *,
    layer: int = -1,
    pool: str = "cls",
    start: int | str | Sequence[int] = 3,
    k: int = 2,
    tol: float | None = None,
    exact_max: int = 64,
    repeats: int = 1,
    resample: str = "split",
    mdl: bool = False,
    ablation: bool = False,
    config: SearchConfig | None = None,
    **legacy: Any,
) -> SearchResult:
    """Backward elimination, the paper's remove-one procedure, then all pairs of the survivors.

    Starting from ``start`` (an int: that many random dimensions drawn with ``seed``; a list:
    those dimensions; ``"all"``: every dimension), each step scores, as one batch, the set
    without each of its members on the validation split, records the drop every removal
    causes, and removes the dimension whose removal hurts least. It stops at ``k`` survivors,
    or earlier when ``tol`` is given and every removal would cost more than ``tol``. Finally
    all pairs among the survivors are scored.

    Sets larger than ``exact_max`` (only with ``start="all"`` or long lists) are first cut down
    to ``exact_max`` by repeatedly dropping the ~10% of dimensions with the smallest weights of
    a probe fitted on the whole set (recorded as ``method: "weights"`` steps); exact remove-one
    scoring of hundreds of dimensions would refit ``|S|`` probes of ``|S|-1`` dimensions per step.

    ``repeats > 1`` reruns the elimination on other validation splits or bootstrap resamples
    (``resample``), each repeat ``r`` drawing a random ``start`` with seed ``seed + r``.

    Returns:
        ``SearchResult``: ``selected`` (survivors, most important first: largest drop when
        removed), ``metrics`` (eval), ``steps`` (with every candidate's drop), ``final_drops``,
        ``pairs`` among survivors with the best pair's eval ``pair_metrics``, ``full_metrics``,
        ``random_baseline``, ``stability`` with ``repeats > 1``, ``verdict`` (against the
        majority and random-k baselines); ``mdl`` / ``ablation`` blocks when asked for.
    """
    eval, config = resolve_call("eliminate", eval, config, legacy)
    _check(k, exact_max, resample)
    start = _parse_start(start)
    li = int(train.layer_index(layer))
    opts = dict(
        layer=li,
        pool=pool,
        start=start,
        k=k,
        tol=tol,
        exact_max=exact_max,
        repeats=repeats,
        resample=resample,
    )
    run = Driver("eliminate", train, eval, opts, config)
    data = run.data(li, pool)
    if isinstance(start, int) and k >= start:
        logger.warning("eliminate: k=%d >= start=%d; nothing will be removed", k, start)
    reps = _run_repeats(run, data, _Options(start, k, tol, exact_max, resample), repeats)
    main = reps[0]
    pb = run.main_problem(data)
    out = _summary(main, pb, li, pool, k, tol)
    if repeats > 1:
        out["stability"] = _stability(reps, resample)
    types = run.control_types() if mdl else None
    add_verdict(out, pb, train.task.name, mdl=mdl, ablation=ablation, types=types)
    return run.finish(out, _rows(main, run.primary))
