"""One probe on fixed dimensions of a pair of sources: what ``probekit probe`` writes."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io import write_json
from ..dims import parse_dims
from ..errors import CacheError, DataError
from ..probes import evaluate_probe
from .config import SearchConfig
from .sources import FeatureSource, check_finite, check_pairing, control_types, load_labels

__all__ = ["probe_sources", "write_probe_record"]


def _types(src: FeatureSource) -> list[Hashable]:
    """Control-task input types of every example (first content token; needs token fields)."""
    types = control_types(src)
    if types is None:
        raise CacheError(
            f"{getattr(src, 'path', 'arrays')}: --control needs token fields "
            "(extracted with --no-tokens)"
        )
    return types


def _labels(
    src: FeatureSource, regression: bool, role: str, train: FeatureSource | None = None
) -> np.ndarray:
    """The labels of ``src`` as the probe engine takes them (regression targets as stored)."""
    if regression:
        y = src.labels
        if not np.isfinite(np.asarray(y, dtype=np.float64)).all():
            raise DataError(f"{role} ({getattr(src, 'path', None) or 'arrays'}): NaN targets")
        return y
    return load_labels(src, False, role, train=train)


def _sources(train: FeatureSource, eval: FeatureSource) -> dict[str, Any]:
    mt, me = train.meta, eval.meta
    return {
        "train": str(getattr(train, "path", None) or mt.get("source", "arrays")),
        "eval": str(getattr(eval, "path", None) or me.get("source", "arrays")),
        "model": mt.get("model"),
        "model_hash": mt.get("model_hash"),
        "train_split": mt.get("split"),
        "eval_split": me.get("split"),
    }


def probe_sources(
    train: FeatureSource,
    eval: FeatureSource,
    *,
    layer: int = -1,
    pool: str = "cls",
    dims: str | Sequence[int] | np.ndarray | None = None,
    config: SearchConfig | None = None,
    control: bool = False,
) -> dict[str, Any]:
    """Fit one probe on ``dims`` of one (layer, pool) of ``train`` and score it on ``eval``.

    Reads the features ``[n_examples, hidden]`` of both sources, checks that they pair
    (:func:`~probekit.search.sources.check_pairing`), refuses unlabelled examples, and calls
    :func:`probekit.probes.evaluate_probe` with the settings of ``config`` (``C``,
    ``device``, ``seed``, ``n_random``, ``val_fraction``, ``memory_budget``, ``progress``;
    ``metrics`` default to the task's).

    Args:
        layer: 0 = embeddings, negative from the top; recorded as ``layer`` (resolved) and
            ``layer_arg`` (as given).
        dims: the one ``--dims`` grammar (:func:`probekit.dims.parse_dims`); None = all.
        control: also fit a Hewitt & Liang control task (input type: the first content
            token; needs token fields in both caches) and report selectivity.

    Returns:
        The probe record (``kind: "probe"``, see :func:`~probekit.probes.evaluate_probe`)
        with ``sources`` (paths, model, splits) added.
    """
    t0 = time.perf_counter()
    cfg = (config or SearchConfig()).for_task(train.task)
    check_pairing(train, eval)
    task = train.task
    li = train.layer_index(layer)
    d = parse_dims(dims, train.hidden_size)
    ytr = _labels(train, task.regression, "train")
    yev = _labels(eval, task.regression, "eval", train=train)
    Xtr, Xev = train.features(li, pool), eval.features(li, pool)
    check_finite(Xtr[:, d], train, "train", f"layer {li} ({pool})")
    check_finite(Xev[:, d], eval, "eval", f"layer {li} ({pool})")
    types = (_types(train), _types(eval)) if control else (None, None)
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "out_dir"}
    record = evaluate_probe(
        Xtr,
        ytr,
        Xev,
        yev,
        d,
        metrics=cfg.metrics,
        regression=task.regression,
        C=cfg.C,
        C_grid=cfg.C_grid,
        device=cfg.device,
        seed=cfg.seed,
        n_random=cfg.n_random,
        val_fraction=cfg.val_fraction,
        types_train=types[0],
        types_eval=types[1],
        memory_budget=cfg.memory_budget,
        progress=cfg.progress,
        task=task.name,
        layer=li,
        layer_arg=layer,
        pool=pool,
        config=dict(settings, layer=layer, pool=pool, dims=d.tolist(), control=control),
    )
    record["sources"] = _sources(train, eval)
    elapsed = round(time.perf_counter() - t0, 3)
    record["elapsed_s"] = elapsed
    if "wall_time_s" in record:
        record["wall_time_s"] = elapsed  # deprecated duplicate of elapsed_s
    return record


def write_probe_record(path: str | Path, record: dict[str, Any]) -> Path:
    """Write a probe record as strict JSON, atomically (parent directories created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record)
    return path
