"""greedy: forward selection of dimensions, one batch of candidates per step, on validation."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from . import fanout
from .checkpoint import Checkpoint
from .config import SearchConfig, resolve_call
from .driver import Driver, metric_cells
from .extras import add_verdict
from .pairs import candidate_dims
from .problem import RESAMPLES, Problem, ProblemData
from .result import SearchResult
from .screen import Screen
from .sources import FeatureSource
from .stability import stability

__all__ = ["greedy", "greedy_select"]


def _step(pb: Problem, selected: list[int], cand: np.ndarray, scr: Screen | None, screen):
    """One forward step: the best addition to ``selected`` among ``cand``, as a record."""
    t0 = time.perf_counter()
    rest = np.setdiff1d(cand, selected)
    n_rest = len(rest)
    if scr is not None and len(rest) > screen:
        st_ = scr.stats(selected, rest)
        rest = np.sort(rest[np.argsort(-st_, kind="stable")[:screen]])
    prefix = np.tile(np.asarray(selected, dtype=np.int64), (len(rest), 1))
    s, l = pb.select(np.concatenate([prefix, rest[:, None]], axis=1))
    b = int(pb.rank(s, l)[0])
    return {
        "step": len(selected) + 1,
        "dim": int(rest[b]),
        "val_score": float(s[b]),
        "val_loss": float(l[b]),
        "n_candidates": int(n_rest),
        "n_fitted": len(rest),
        "seconds": time.perf_counter() - t0,
    }


def greedy_select(
    pb: Problem,
    k: int,
    *,
    candidates: np.ndarray | None = None,
    within: float | None = None,
    full_val: float | None = None,
    checkpoint: Checkpoint | None = None,
    unit: str = "greedy",
    progress: bool = False,
    screen: int | None = None,
) -> dict[str, Any]:
    """Forward selection on validation; one batch of candidates per step; checkpoint per step.

    Args:
        pb: the problem (selection uses its fitting and validation parts only).
        k: at most this many dimensions.
        candidates: ``[m]`` dimensions to choose from (default: all).
        within: stop once the validation score reaches ``full_val - within * |full_val|``.
        full_val: the full-width validation score (needed with ``within``).
        checkpoint: where each step is saved as ``unit`` (and resumed from).
        screen: fit only the ``screen`` candidates with the largest score-test statistic
            (:class:`Screen`) per step instead of all of them.

    Returns:
        ``{"selected": [dims in order], "steps": [one record per step], "done": True,
        "stopped": "k" | "within"}``.
    """
    ckpt = checkpoint or Checkpoint(None, "greedy", {})
    cand = np.arange(pb.n_dims) if candidates is None else np.asarray(candidates, dtype=np.int64)
    state = ckpt.load(unit) or {"selected": [], "steps": [], "done": False}
    if state["done"]:
        return state
    selected, steps = list(state["selected"]), list(state["steps"])
    k = min(k, len(cand))
    target = None if within is None or full_val is None else full_val - within * abs(full_val)
    scr = Screen(pb) if screen else None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=k, initial=len(selected), desc="greedy", unit="dim")
    while len(selected) < k:
        if target is not None and steps and steps[-1]["val_score"] >= target:
            break
        steps.append(_step(pb, selected, cand, scr, screen))
        selected.append(steps[-1]["dim"])
        ckpt.save(unit, {"selected": selected, "steps": steps, "done": False})
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    stopped = "within" if len(selected) < k else "k"
    state = {"selected": selected, "steps": steps, "done": True, "stopped": stopped}
    ckpt.save(unit, state)
    return state


@dataclass(frozen=True)
class _Options:
    """What one greedy repeat needs besides its data (picklable, for a worker)."""

    k: int
    within: float | None
    candidates: int | list[int] | None
    screen: int | None
    resample: str
    progress: bool


def _repeat(data: ProblemData, r: int, opt: _Options, ckpt: Checkpoint) -> dict[str, Any]:
    pb = data.repeat(r, opt.resample)
    full_val = None
    if opt.within is not None:
        fv = ckpt.load(f"full-val-{r}")
        full_val = fv["value"] if fv is not None else pb.full_val()
        ckpt.save(f"full-val-{r}", {"value": full_val})
    out = greedy_select(
        pb,
        opt.k,
        candidates=candidate_dims(pb, opt.candidates),
        within=opt.within,
        full_val=full_val,
        checkpoint=ckpt,
        unit=f"repeat-{r}",
        progress=opt.progress,
        screen=opt.screen,
    )
    return dict(out, full_val=full_val)


def _check(k: int, within, repeats: int, resample: str, screen) -> None:
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    if within is not None and not 0 <= within < 1:
        raise ConfigError(f"within must lie in [0, 1), got {within}")
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    if resample not in RESAMPLES:
        raise ConfigError(f"resample must be 'split' or 'bootstrap', got {resample!r}")
    if screen is not None and screen < 1:
        raise ConfigError(f"screen must be >= 1 (candidates fitted per step), got {screen}")


def _curve_rows(curve: list[dict[str, Any]], selected: list[int], primary: str) -> list:
    rows = []
    for c in curve:
        row = {
            "step": c["step"],
            "dim": c["dim"],
            f"val_{primary}": c["val_score"],
            "val_loss": c["val_loss"],
            "selected": selected[: c["step"]],
        }
        row.update(metric_cells("dev_", c["dev"]))
        row.update(metric_cells("random_mean_", c["random_mean"]))
        row.update(metric_cells("random_std_", c["random_std"]))
        rows.append(row)
    return rows


def greedy(
    train: FeatureSource,
    eval: FeatureSource | None = None,
    *,
    layer: int = -1,
    pool: str = "cls",
    k: int = 10,
    within: float | None = None,
    candidates: int | Sequence[int] | None = None,
    screen: int | None = None,
    repeats: int = 1,
    resample: str = "split",
    mdl: bool = False,
    ablation: bool = False,
    config: SearchConfig | None = None,
    **legacy: Any,
) -> SearchResult:
    """Greedy forward selection of dimensions.

    Each step adds the dimension whose probe (together with those already chosen) scores best
    on the validation split; all candidates of a step are fitted as one batch.

    Args:
        k: at most this many dimensions.
        within: stop early once the validation score reaches ``(1 - within)`` times the
            full-dimension validation score (e.g. ``0.02``).
        candidates: restrict candidates (an int: the best by stump score; a list: those dims).
        screen: fit only the ``screen`` most promising candidates per step, ranked by the
            score-test statistic of adding them to the probe fitted so far (cheap: one pass
            over the data); the final choice among them is still by exact fits on validation.
            Default None: every candidate is fitted (exhaustive).
        repeats: rerun the selection ``repeats`` times (repeat 0 is the main result) and
            report stability.
        resample: ``split`` (another validation split per repeat) or ``bootstrap``
            (a bootstrap resample of the fitting part).
        config: the shared settings.
        mdl, ablation: add the ``mdl`` and ``ablation`` blocks of the selected set
            (:mod:`probekit.search.extras`; a few extra fits each).
        **legacy: deprecated: ``dev=`` and the :class:`SearchConfig` fields as keywords.

    Returns:
        ``SearchResult``: ``selected`` (in order), ``verdict`` (against the majority and
        random-k baselines, :func:`probekit.search.verdict`), ``metrics`` (eval, selected set),
        ``full_metrics``, ``random_baseline`` (same size), ``curve`` (per step: the dimension
        added, validation score, eval metrics of the prefix, random baseline of that size),
        ``stability`` (with ``repeats > 1``), ``elapsed_s``.
    """
    eval, config = resolve_call("greedy", eval, config, legacy)
    _check(k, within, repeats, resample, screen)
    li = int(train.layer_index(layer))
    cand = candidates if candidates is None or isinstance(candidates, int) else list(candidates)
    opts = dict(
        layer=li,
        pool=pool,
        k=k,
        within=within,
        candidates=cand,
        screen=screen,
        repeats=repeats,
        resample=resample,
    )
    run = Driver("greedy", train, eval, opts, config)
    cfg = run.config
    data = run.data(li, pool)
    opt = _Options(k, within, cand, screen, resample, cfg.progress and repeats == 1)
    jobs = (fanout.delayed(_repeat)(data, r, opt, run.ckpt) for r in range(repeats))
    n_jobs, show = (cfg.n_jobs, cfg.progress) if repeats > 1 else (1, False)
    reps = fanout.run_units(jobs, repeats, n_jobs=n_jobs, show=show, desc="repeats")
    main = reps[0]
    pb = run.main_problem(data)
    selected = main["selected"]
    curve = []
    for t, step in enumerate(main["steps"], start=1):
        rb = pb.random(t)
        curve.append(
            dict(
                step, dev=pb.report_one(selected[:t]), random_mean=rb["mean"], random_std=rb["std"]
            )
        )
    out = {
        "layer": li,
        "pool": pool,
        "k": k,
        "within": within,
        "selected": selected,
        "metrics": curve[-1]["dev"] if curve else {},
        "val_score": main["steps"][-1]["val_score"] if curve else None,
        "full_val_score": main["full_val"],
        "stopped": main.get("stopped"),
        "full_metrics": pb.full(),
        "random_baseline": pb.random(len(selected)),
        "majority_baseline": pb.majority(),
        "curve": curve,
        "n_fit": len(pb.idx_fit),
        "n_val": len(pb.idx_val),
        "n_eval": len(run.y_eval),
    }
    if repeats > 1:
        out["stability"] = dict(stability([r["selected"] for r in reps]), resample=resample)
    types = run.control_types() if mdl else None
    add_verdict(out, pb, train.task.name, mdl=mdl, ablation=ablation, types=types)
    return run.finish(out, _curve_rows(curve, selected, run.primary))
