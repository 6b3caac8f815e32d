"""Sequential (cross-task) fine-tuning: how much does training on task B make the encoder forget A?

:func:`cross_finetune` runs three fine-tuning runs with the same settings, each in its own
sub-directory of ``OUT``:

1. ``single_A/``: fine-tune the pre-trained encoder on A (head ``h_A`` on ``dims``);
2. ``single_B/``: fine-tune the pre-trained encoder on B (head on ``dims_b``): B's
   single-task score;
3. ``A_then_B/``: start from stage 1's fine-tuned encoder, train a new head on B (``dims_b``),
   keeping ``h_A`` aside; then score A with ``h_A`` on the new encoder.

``OUT/result.json`` puts A (with its own head) and B after the second stage next to their
single-task scores; ``forgetting`` is ``single - after`` for A's primary metric (positive =
forgotten), ``transfer`` is ``after - single`` for B. ``disjoint=True`` gives B dimensions
disjoint from A's (drawn at random with the config's seed unless ``dims_b`` names them).
``elapsed_s`` is the wall-clock time (``wall_seconds``, its old name, is written too).
Each stage resumes and a finished stage is reused, so re-running the command continues.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import write_json
from ..dims import head_dims
from ..errors import ConfigError
from ..models import resolve_device
from ..provenance import versions
from ..tasks import TaskData
from .config import RESULT_FILE, FinetuneConfig, FinetuneResult
from .data import load_run_data
from .evaluation import evaluate, load_finetuned
from .heads import load_heads
from .single import encoder_shape, finetune

logger = logging.getLogger(__name__)

__all__ = ["CrossResult", "choose_disjoint_dims", "cross_finetune"]


@dataclass
class CrossResult:
    """Scores of a cross-task run; ``record`` is ``OUT/result.json``.

    Attributes:
        single: ``{task: {metric: value}}`` single-task eval scores of A and B.
        after: ``{task: {metric: value}}`` after the second stage (A with its own head).
        forgetting: A's primary metric, single minus after.
        transfer: B's primary metric, after (starting from A's encoder) minus single.
    """

    out_dir: Path
    single: dict
    after: dict
    forgetting: float
    transfer: float
    record: dict


def choose_disjoint_dims(
    dims_a: tuple[int, ...] | None, hidden_size: int, k: int | None = None, *, seed: int = 0
) -> tuple[int, ...]:
    """``k`` (default ``len(dims_a)``) dimensions not in ``dims_a``, drawn with ``seed``."""
    if dims_a is None:
        raise ConfigError(
            "disjoint dims need a selected-dimension head for the first task (dims is 'all')"
        )
    k = len(dims_a) if k is None else k
    rest = np.setdiff1d(np.arange(hidden_size), np.asarray(dims_a))
    if k > len(rest):
        raise ConfigError(f"cannot choose {k} dims disjoint from {len(dims_a)} of {hidden_size}")
    rng = np.random.default_rng([seed, 7919])
    return tuple(sorted(int(d) for d in rng.choice(rest, size=k, replace=False)))


def _dims_of_b(
    dims_a: tuple[int, ...] | None, dims_b: Any, hidden: int, *, disjoint: bool, seed: int
) -> tuple[int, ...] | None:
    """B's head dims: given, A's, or (``disjoint``) drawn disjoint from A's."""
    if dims_b is None:
        return choose_disjoint_dims(dims_a, hidden, seed=seed) if disjoint else dims_a
    db = head_dims(dims_b, hidden)
    if disjoint and (dims_a is None or db is None or set(dims_a) & set(db)):
        raise ConfigError(f"disjoint: B dims {db} overlap A dims {dims_a}")
    return db


def _elapsed(t0: float) -> dict[str, float]:
    """``elapsed_s`` since ``t0`` (and ``wall_seconds``, its deprecated name)."""
    elapsed = time.perf_counter() - t0
    return {"elapsed_s": elapsed, "wall_seconds": elapsed}


def _as_list(dims: tuple[int, ...] | None) -> list[int] | None:
    return None if dims is None else list(dims)


def _stage(
    config: FinetuneConfig,
    out: Path,
    split: tuple[TaskData, TaskData],
    dims: tuple[int, ...] | None,
    *,
    device: torch.device,
    resume: bool,
    progress: bool,
    model: str | None = None,
) -> FinetuneResult:
    """One stage: fine-tune on ``split`` with a head on ``dims``, into ``out``."""
    tr, ev = split
    logger.info("cross: stage %s (%s)", out.name, tr.task.name)
    spec = "all" if dims is None else list(dims)
    stage_cfg = replace(config, task=tr.task.name, head=replace(config.head, dims=spec))
    return finetune(
        stage_cfg,
        device=device,
        out_dir=out,
        train_data=tr,
        eval_data=ev,
        model=model,
        dims=spec,
        resume=resume,
        progress=progress,
        extra_record={"cross_stage": out.name},
    )


def _score_with(
    run_dir: Path,
    heads_path: Path,
    name: str,
    ev: TaskData,
    config: FinetuneConfig,
    device: torch.device,
) -> dict[str, float]:
    """Head ``name`` of ``heads_path`` scored on ``ev`` with the encoder of ``run_dir``."""
    loaded, _ = load_finetuned(run_dir, device=device)
    return evaluate(
        loaded,
        load_heads(heads_path, device=device),
        {name: ev.head(config.eval_limit)},
        max_length=config.max_length,
        batch_size=config.eval_batch_size,
        mixed_precision=config.mixed_precision,
    )[name]


def cross_finetune(
    config: FinetuneConfig,
    tasks: tuple[str, str],
    *,
    device: str | torch.device,
    out_dir: str | Path,
    glue_dir: str | Path | None = None,
    data: dict[str, tuple[TaskData, TaskData]] | None = None,
    dims_b: Any = None,
    disjoint: bool = False,
    resume: bool = True,
    progress: bool = True,
) -> CrossResult:
    """Fine-tune on ``tasks[0]``, then on ``tasks[1]`` with a new head; measure forgetting.

    Args:
        config: settings of every stage (``config.task`` is ignored; ``config.head.dims``
            are A's).
        tasks: ``(A, B)`` task names.
        device: where to train.
        out_dir: the run's directory (three stage sub-directories and ``result.json``).
        glue_dir: where GLUE lives (``data`` overrides it per task).
        data: ``{task: (train, eval)}`` splits to use instead of loading them.
        dims_b: B's dimensions (default: A's, or disjoint ones with ``disjoint=True``).
        disjoint: require (or draw) B dims disjoint from A's.
        resume, progress: see :meth:`~probekit.finetune.loop.Trainer.run`.

    Returns:
        :class:`CrossResult`.
    """
    if len(tasks) != 2 or tasks[0] == tasks[1]:
        raise ConfigError(f"cross needs two different tasks, got {list(tasks)}")
    a, b = tasks
    dev = resolve_device(device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hidden, _ = encoder_shape(config.model)
    dims_a = head_dims(config.head.dims, hidden)
    db = _dims_of_b(dims_a, dims_b, hidden, disjoint=disjoint, seed=config.seed)
    data = dict(data or {})
    splits = {
        t: data[t] if t in data else load_run_data(config, glue_dir=glue_dir, task=t)
        for t in (a, b)
    }
    t0 = time.perf_counter()
    run = functools.partial(_stage, config, device=dev, resume=resume, progress=progress)
    ra = run(out / f"single_{a}", splits[a], dims_a)
    rb = run(out / f"single_{b}", splits[b], db)
    rab = run(out / f"{a}_then_{b}", splits[b], db, model=str(ra.model_dir))
    a_after = _score_with(rab.out_dir, ra.heads_path, a, splits[a][1], config, dev)
    single = {a: ra.metrics, b: rb.metrics}
    after = {a: a_after, b: rab.metrics}
    primary = {a: splits[a][0].task.primary_metric, b: splits[b][0].task.primary_metric}
    forgetting = float(single[a][primary[a]] - after[a][primary[a]])
    transfer = float(after[b][primary[b]] - single[b][primary[b]])
    record = {
        "kind": "cross",
        "complete": True,
        "tasks": [a, b],
        "dims": {a: _as_list(dims_a), b: _as_list(db)},
        "disjoint": bool(disjoint),
        "config": config.to_dict(),
        "versions": versions(),
        "device": str(dev),
        "single": single,
        "after_second_stage": after,
        "primary_metric": primary,
        "forgetting": {a: forgetting},
        "transfer": {b: transfer},
        "stages": {
            "single_a": ra.out_dir.name,
            "single_b": rb.out_dir.name,
            "a_then_b": rab.out_dir.name,
        },
        **_elapsed(t0),
    }
    write_json(out / RESULT_FILE, record)
    return CrossResult(out, single, after, forgetting, transfer, record)
