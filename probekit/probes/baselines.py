"""Honest splits, baselines, control tasks, and the whole record of one fixed-dims probe.

* :func:`train_val_split`: a seeded, stratified split of the training data; selection sees
  the validation part only, and the eval split is reported on;
* :func:`majority_baseline`, :func:`random_dims_baseline` (a distribution over random
  dimension sets of the same size);
* control tasks in the sense of Hewitt & Liang (2019): :func:`input_types`,
  :func:`control_task_labels`, :func:`control_task_baseline`, :func:`selectivity`;
* :func:`evaluate_probe`: one probe on fixed dimensions with all of the above, as the result
  record ``probekit probe`` writes (``"kind": "probe"``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import torch

from .._io import to_jsonable
from ..dims import parse_dims
from ..errors import ConfigError, DataError
from ..metrics import batch_metrics
from ..provenance import versions
from .cselect import AUTO, CSelection, parse_C, refit_wide, select_C
from .engine import ProbeEngine
from .splits import train_val_split
from .standardize import as_features

__all__ = [
    "control_task_baseline",
    "control_task_labels",
    "evaluate_probe",
    "input_types",
    "majority_baseline",
    "random_dims_baseline",
    "selectivity",
    "train_val_split",
]

logger = logging.getLogger(__name__)


def majority_baseline(
    y_train, y_eval, metrics: Sequence[str] = ("accuracy",), regression: bool = False
) -> dict[str, float]:
    """Scores of a constant predictor on ``y_eval [m]``: the most frequent training label
    (ties: the smallest), or the training mean for regression (whose correlations are
    undefined: NaN)."""
    y_train = np.asarray(y_train)
    y_eval = np.asarray(y_eval)
    if regression:
        pred = np.full(len(y_eval), float(np.mean(y_train)))
    else:
        vals, counts = np.unique(y_train, return_counts=True)
        dtype = y_eval.dtype if y_eval.size else vals.dtype
        pred = np.full(len(y_eval), vals[np.argmax(counts)], dtype=dtype)
    # batch_metrics (tested equal to the scikit-learn reference, compute_metrics): a
    # search's start-up pays no scikit-learn import
    return {m: float(v[0]) for m, v in batch_metrics(metrics, y_eval, pred[None, :]).items()}


def random_dims_baseline(
    engine: ProbeEngine,
    X_train,
    y_train,
    X_eval,
    y_eval,
    k: int,
    n_draws: int = 20,
    seed: int = 0,
    metrics: Sequence[str] = ("accuracy",),
) -> dict[str, Any]:
    """Scores of probes on ``n_draws`` random dimension sets of size ``k`` (a distribution,
    not one draw). Each set is ``k`` distinct dimensions drawn uniformly with
    ``np.random.default_rng(seed)``.

    Returns:
        ``{"k", "n_draws", "seed", "dims": [n_draws][k], "mean": {metric: float},
        "std": {metric: float}, "median": {...}, "scores": {metric: [n_draws] list}}``.
    """
    D = np.asarray(X_train).shape[1]
    if not 1 <= k <= D:
        raise ConfigError(f"random_dims_baseline: k must lie in [1, {D}], got {k}")
    if n_draws < 1:
        raise ConfigError(f"random_dims_baseline: n_draws must be >= 1, got {n_draws}")
    rng = np.random.default_rng(seed)
    dims = np.stack([np.sort(rng.choice(D, size=k, replace=False)) for _ in range(n_draws)])
    sc = engine.fit_score(X_train, y_train, X_eval, y_eval, dims, metrics=metrics)
    names = list(metrics) if not isinstance(metrics, str) else [metrics]
    return {
        "k": int(k),
        "n_draws": int(n_draws),
        "seed": int(seed),
        "dims": dims.tolist(),
        "mean": {mn: float(np.nanmean(sc[mn])) for mn in names},
        "std": {mn: float(np.nanstd(sc[mn])) for mn in names},
        "median": {mn: float(np.nanmedian(sc[mn])) for mn in names},
        "scores": {mn: sc[mn].tolist() for mn in names},
    }


def input_types(
    input_ids: np.ndarray,
    offsets: np.ndarray,
    special_mask: np.ndarray | None = None,
    *,
    mode: str = "first_content",
) -> list[Hashable]:
    """The "input type" of each example, for control tasks on sentence-level probes.

    Hewitt & Liang give each *word type* a random label, so a control probe must memorise
    the type from the representation. A sentence-level probe has no single word; probekit
    defines the type of an example as:

    * ``"first_content"`` (default): the token id of its first non-special token. Types
      recur across train and eval (as word types do in H&L), so a probe that reads lexical
      identity from the selected dimensions can score above chance on the control task;
    * ``"sequence"``: its whole token-id sequence (special tokens excluded). Only exact
      duplicates share a type, so on eval the control task is near chance by construction.

    Args:
        input_ids: ``[n_tokens]`` token ids of all examples, concatenated.
        offsets: ``[n_examples + 1]`` example boundaries in ``input_ids``.
        special_mask: ``[n_tokens]`` 1 for special tokens ([CLS], [SEP], padding), or None.
        mode: ``"first_content"`` or ``"sequence"``.

    Returns:
        ``[n_examples]`` hashable types.
    """
    ids = np.asarray(input_ids)
    off = np.asarray(offsets)
    if special_mask is None:
        sm = np.zeros(len(ids), dtype=bool)
    else:
        sm = np.asarray(special_mask).astype(bool)
    if mode not in ("first_content", "sequence"):
        raise ConfigError(f"input_types: mode must be 'first_content' or 'sequence', got {mode!r}")
    types: list[Hashable] = []
    for i in range(len(off) - 1):
        seg = ids[off[i] : off[i + 1]][~sm[off[i] : off[i + 1]]]
        if mode == "first_content":
            types.append(int(seg[0]) if len(seg) else -1)
        else:
            types.append(tuple(int(t) for t in seg))
    return types


def control_task_labels(
    types_train: Sequence[Hashable],
    y_train,
    types_eval: Sequence[Hashable] | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Hewitt & Liang control-task labels: every distinct input type gets one label drawn at
    random from the empirical training label distribution (for regression, one target value
    drawn from the training targets); each example then takes its type's label.

    Types are visited in sorted order of their string form so the result depends only on
    ``seed``, not on example order.

    Args:
        types_train: ``[n]`` hashable types (see :func:`input_types`).
        y_train: ``[n]`` real labels (only their distribution is used).
        types_eval: ``[m]`` types of the evaluation examples (optional); types unseen in
            train draw labels too.
        seed: random seed.

    Returns:
        ``(y_control_train [n], y_control_eval [m] or None)``.
    """
    y_train = np.asarray(y_train)
    if len(types_train) != len(y_train):
        raise DataError(f"control_task_labels: {len(types_train)} types but {len(y_train)} labels")
    all_types = list(types_train) + (list(types_eval) if types_eval is not None else [])
    uniq = sorted(set(all_types), key=lambda t: (str(type(t)), str(t)))
    rng = np.random.default_rng(seed)
    draw = rng.choice(y_train, size=len(uniq), replace=True)
    table = dict(zip(uniq, draw))
    yc_train = np.asarray([table[t] for t in types_train], dtype=y_train.dtype)
    yc_eval = None
    if types_eval is not None:
        yc_eval = np.asarray([table[t] for t in types_eval], dtype=y_train.dtype)
    return yc_train, yc_eval


def selectivity(task_scores: dict[str, Any], control_scores: dict[str, Any]) -> dict[str, Any]:
    """Selectivity (Hewitt & Liang): task score minus control-task score, per metric
    (arrays element-wise)."""
    return {
        mn: np.asarray(task_scores[mn]) - np.asarray(control_scores[mn])
        for mn in task_scores
        if mn in control_scores and mn != "loss"
    }


def control_task_baseline(
    engine: ProbeEngine,
    X_train,
    y_train,
    X_eval,
    y_eval,
    dims,
    types_train,
    types_eval,
    *,
    seed: int = 0,
    metrics: Sequence[str] = ("accuracy",),
) -> dict[str, Any]:
    """Fit the same probes on the task and on its control task; return both scores and the
    selectivity. ``dims [B, k]``; returns ``{"task": {metric: [B]}, "control": {...},
    "selectivity": {...}}`` (arrays)."""
    task = engine.fit_score(X_train, y_train, X_eval, y_eval, dims, metrics=metrics)
    yc_tr, yc_ev = control_task_labels(types_train, y_train, types_eval, seed=seed)
    if not engine.regression and len(np.unique(yc_tr)) < 2:
        raise DataError(
            "control task: every type drew the same label; use more examples or another seed"
        )
    ctrl = engine.fit_score(X_train, yc_tr, X_eval, yc_ev, dims, metrics=metrics)
    return {"task": task, "control": ctrl, "selectivity": selectivity(task, ctrl)}


# ----------------------------------------------------------------------------- the probe record


def evaluate_probe(
    X_train,
    y_train,
    X_eval,
    y_eval,
    dims,
    *,
    metrics: Sequence[str],
    regression: bool = False,
    C: float | str = AUTO,
    C_grid: Sequence[float] | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    n_random: int = 20,
    val_fraction: float = 0.2,
    types_train: Sequence[Hashable] | None = None,
    types_eval: Sequence[Hashable] | None = None,
    memory_budget: int = 2 * 2**30,
    progress: bool = False,
    task: str | None = None,
    layer: int | None = None,
    layer_arg: Any = None,
    pool: str | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One probe on fixed dimensions, with its baselines: the record ``probekit probe`` writes.

    The probe is fitted on all of ``X_train [n, D]`` and scored on ``X_eval [m, D]`` (the
    reported ``metrics``); ``val_metrics`` comes from a probe fitted on a seeded, stratified
    ``1 - val_fraction`` part of train and scored on the rest (what a selection would see).
    Baselines: the majority class, probes on ``n_random`` random dimension sets of the same
    size (a distribution; omitted when ``dims`` is the full width, where every draw is the
    full probe), and, when ``types_train``/``types_eval`` are given, a Hewitt & Liang
    control task with its selectivity.

    Args:
        dims: the selection, in the one ``--dims`` grammar (:func:`probekit.dims.parse_dims`:
            ``"3,17"``, ``"0-9"``, ``"all"``, or ``[k]`` ints).
        metrics: metric names, primary first.
        C: ``"auto"`` (default: chosen by :func:`probekit.probes.select_C` on the same
            validation split as ``val_metrics``, from ``C_grid``, then refitted on all of
            train) or a number.
        C_grid: the grid of ``C="auto"`` (default ``np.logspace(-4, 2, 10)``).
        task, layer, layer_arg, pool: where the features came from (the task name, the
            layer index, the layer as asked for, e.g. ``-1``, and the token vector); each is
            recorded when given (the caller that reads the caches knows them).
        config: the settings to record (default: this call's settings).

    Returns:
        A JSON-ready dict (``None`` for undefined values): ``kind`` (``"probe"``), those of
        ``task``, ``layer``, ``layer_arg``, ``pool`` that were given, ``metrics``, ``loss``,
        ``val_metrics``, ``val_fraction``, ``dims``, ``k``, ``n_train``, ``n_eval``, ``converged``,
        ``n_iter``, ``majority_baseline``, ``random_baseline``, optionally ``control``, then
        ``C`` (``{"mode": "auto", "chosen", "chosen_on", "grid", "val_curve", "val_loss",
        ...}`` or ``{"mode": "fixed", "chosen"}``), ``probe`` (``kind``, ``C`` the value used,
        ``standardized``), ``seed``, ``config``, ``versions``
        and ``elapsed_s``. Deprecated duplicates, kept for one release: ``command``
        (= ``"probe"``; use ``kind``) and ``wall_time_s`` (use ``elapsed_s``).
    """
    t0 = time.perf_counter()
    X_train = as_features(X_train, "X_train")
    dims = parse_dims(dims, X_train.shape[1])
    names = list(metrics)
    y_train = np.asarray(y_train)
    eng = ProbeEngine(
        regression=regression, device=device, memory_budget=memory_budget, progress=progress
    )
    C = parse_C(C)
    sel = _auto_C(eng, X_train, y_train, dims, names, C_grid, val_fraction, seed, C)
    eng.C = sel.C if sel is not None else C
    data = (X_train, y_train, X_eval, y_eval)
    res = _probe_scores(eng, data, dims, names, seed=seed, val_fraction=val_fraction, sel=sel)
    res["random_baseline"] = _random_part(eng, data, dims, names, res, n_random, seed)
    with_control = types_train is not None and types_eval is not None
    if with_control:
        res["control"] = _control_part(eng, data, dims, names, types_train, types_eval, seed)
    if config is None:
        config = {
            "metrics": names,
            "regression": regression,
            "C": C,
            "C_grid": list(sel.grid) if sel is not None else None,
            "device": str(device),
            "seed": seed,
            "n_random": n_random,
            "val_fraction": val_fraction,
            "memory_budget": memory_budget,
            "control": with_control,
        }
    where = {"task": task, "layer": layer, "layer_arg": layer_arg, "pool": pool}
    elapsed = round(time.perf_counter() - t0, 3)
    return _record(res, where, eng, sel, regression, seed, config, elapsed)


def _control_part(
    eng: ProbeEngine,
    data: tuple[Any, Any, Any, Any],
    dims: np.ndarray,
    names,
    types_train,
    types_eval,
    seed: int,
) -> dict[str, Any]:
    """The control block of the record: :func:`control_task_baseline` on ``dims [k]`` (one
    probe, ``[1, k]``), its control-task scores and selectivity per metric."""
    cb = control_task_baseline(
        eng, *data, dims[None, :], types_train, types_eval, seed=seed, metrics=names
    )
    return {
        "input_type": "first content token id (see probekit.probes.input_types)",
        "metrics": {mn: cb["control"][mn][0] for mn in names},
        "selectivity": {mn: cb["selectivity"][mn][0] for mn in names},
    }


def _record(
    res: dict[str, Any],
    where: dict[str, Any],
    eng: ProbeEngine,
    sel: CSelection | None,
    regression: bool,
    seed: int,
    config: dict[str, Any],
    elapsed: float,
) -> dict[str, Any]:
    """The JSON-ready record: ``kind``, the given ``where`` keys, the scores ``res``, then the
    ``C`` block, the probe, seed, config, versions and ``elapsed_s`` (with the deprecated
    ``command`` and ``wall_time_s``)."""
    record = {
        "kind": "probe",
        "command": "probe",  # deprecated: use "kind"
        **{key: v for key, v in where.items() if v is not None},
        **res,
        "C": sel.record() if sel is not None else {"mode": "fixed", "chosen": eng.C},
        "probe": {
            "kind": "ridge" if regression else "logistic",
            "C": eng.C,
            "standardized": "train mean/std",
        },
        "seed": seed,
        "config": config,
        "versions": versions(),
        "elapsed_s": elapsed,
        "wall_time_s": elapsed,  # deprecated: use "elapsed_s"
    }
    return to_jsonable(record)


def _auto_C(
    eng: ProbeEngine, X, y, dims, names, grid, val_fraction: float, seed: int, C: float | str
) -> CSelection | None:
    """The :func:`select_C` choice for ``dims [k]`` when ``C`` is ``"auto"`` (else None), on
    the split that ``val_metrics`` uses."""
    if C != AUTO:
        return None
    split = train_val_split(y, val_fraction=val_fraction, seed=seed)
    return select_C(eng, X, y, dims, grid=grid, metrics=names, split=split)


def _probe_scores(
    eng: ProbeEngine,
    data: tuple,
    dims: np.ndarray,
    names: list[str],
    *,
    seed,
    val_fraction,
    sel=None,
) -> dict[str, Any]:
    """The probe on ``dims [k]`` fitted on all of train and scored on eval, the same probe
    fitted on the train part of :func:`train_val_split` and scored on its validation part,
    and the majority baseline. Both fits by :func:`refit_wide` (a wide logistic probe in the
    eigenbasis of its ``C`` selection ``sel``, when given)."""
    X_train, y_train, X_eval, y_eval = data
    sc = refit_wide(
        eng, X_train, y_train, X_eval, y_eval, dims, eng.C, metrics=names, selection=sel
    )
    itr, iva = train_val_split(y_train, val_fraction=val_fraction, seed=seed)
    vs = refit_wide(
        eng,
        X_train[itr],
        y_train[itr],
        X_train[iva],
        y_train[iva],
        dims,
        eng.C,
        metrics=names,
        selection=sel,
    )
    return {
        "metrics": {mn: sc[mn][0] for mn in names},
        "loss": sc["loss"][0],
        "val_metrics": {mn: vs[mn][0] for mn in names},
        "val_fraction": val_fraction,
        "dims": dims.tolist(),
        "k": len(dims),
        "n_train": int(X_train.shape[0]),
        "n_eval": int(np.asarray(X_eval).shape[0]),
        "converged": bool(sc.stats.converged[0]),
        "n_iter": int(sc.stats.n_iter[0]),
        "majority_baseline": majority_baseline(y_train, y_eval, names, eng.regression),
    }


def _random_part(
    eng: ProbeEngine,
    data: tuple[Any, Any, Any, Any],
    dims: np.ndarray,
    names,
    res: dict,
    n_random: int,
    seed: int,
) -> dict[str, Any]:
    """The random-dimensions baseline of the record; at full width (where every draw is the
    full probe) or with ``n_random = 0``, a note with the probe's own scores."""
    if len(dims) < data[0].shape[1] and n_random > 0:
        return random_dims_baseline(
            eng, *data, len(dims), n_draws=n_random, seed=seed, metrics=names
        )
    return {
        "k": len(dims),
        "n_draws": 0,
        "seed": seed,
        "note": "dims is the full width: every random draw is the full probe",
        "mean": dict(res["metrics"]),
        "std": {mn: 0.0 for mn in names},
    }
