"""Multi-head fine-tuning (beyond the paper): one encoder, one head per task on disjoint dims.

If two or three dimensions suffice for a task, one encoder can serve several tasks at once,
each read off its own few dimensions. :func:`multihead_finetune` makes that concrete: it
trains the encoder together with one :class:`~probekit.finetune.heads.SelectedDimHead` per
task, the heads' dimension sets disjoint, and reports each task's eval score.

Batches: ``alternate`` gives each micro-step one task's batch, round robin over the tasks
(a task that runs out of batches drops out for the rest of the epoch); ``mixed`` gives each
micro-step one batch of every task and sums their losses. Either way every training example
is seen once per epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..dims import head_dims
from ..errors import ConfigError
from ..tasks import TaskData, get_task
from .config import FinetuneConfig, FinetuneResult, TaskRun
from .data import limited, load_run_data
from .loop import Trainer
from .single import encoder_shape

logger = logging.getLogger(__name__)

__all__ = ["assign_dims", "multihead_finetune"]


def assign_dims(
    tasks: Sequence[str],
    hidden_size: int,
    *,
    dims: Mapping[str, Any] | None = None,
    dims_per_task: int | None = None,
    seed: int = 0,
    allow_overlap: bool = False,
) -> dict[str, tuple[int, ...] | None]:
    """Dimension set of each task's head.

    Args:
        tasks: task names.
        hidden_size: encoder width.
        dims: explicit ``{task: "3,17"}`` (or lists); tasks missing from it draw theirs.
        dims_per_task: how many dims to draw for each task without explicit ones (drawn
            at random with ``seed``, disjoint from each other and from the explicit ones).
        allow_overlap: accept explicit sets that overlap (else :class:`ConfigError`).

    Returns:
        ``{task: sorted dims}`` (``None`` = all dims, possible only with ``allow_overlap``).
    """
    dims = dict(dims or {})
    unknown = set(dims) - set(tasks)
    if unknown:
        raise ConfigError(
            f"dims given for task(s) {sorted(unknown)} not in the run's tasks {list(tasks)}"
        )
    out: dict[str, tuple[int, ...] | None] = {
        t: head_dims(dims[t], hidden_size) for t in tasks if t in dims
    }
    missing = [t for t in tasks if t not in out]
    if missing:
        if dims_per_task is None or dims_per_task < 1:
            raise ConfigError(f"no dims for task(s) {missing}: give dims per task or dims_per_task")
        used = set().union(*[set(d) for d in out.values() if d is not None]) if out else set()
        free = np.setdiff1d(
            np.arange(hidden_size), np.fromiter(used, dtype=np.int64, count=len(used))
        )
        need = dims_per_task * len(missing)
        if need > len(free):
            raise ConfigError(
                f"{len(missing)} tasks x {dims_per_task} dims do not fit in {len(free)} free dims"
            )
        drawn = np.random.default_rng([seed, 104729]).choice(free, size=need, replace=False)
        for i, t in enumerate(missing):
            out[t] = tuple(
                sorted(int(d) for d in drawn[i * dims_per_task : (i + 1) * dims_per_task])
            )
    if not allow_overlap:
        seen: dict[int, str] = {}
        for t in tasks:
            d = out[t]
            if d is None:
                if len(tasks) > 1:
                    raise ConfigError(
                        f"task {t!r} uses all dims, which overlaps the other heads "
                        "(use allow_overlap to permit it)"
                    )
                continue
            for x in d:
                if x in seen:
                    raise ConfigError(
                        f"dim {x} is selected by both {seen[x]!r} and {t!r} (dims must be disjoint)"
                    )
                seen[x] = t
    return {t: out[t] for t in tasks}


def multihead_finetune(
    config: FinetuneConfig,
    tasks: Sequence[str],
    *,
    device: str | torch.device,
    out_dir: str | Path,
    dims: Mapping[str, Any] | None = None,
    dims_per_task: int | None = None,
    mode: str = "alternate",
    glue_dir: str | Path | None = None,
    data: Mapping[str, tuple[TaskData, TaskData]] | None = None,
    allow_overlap: bool = False,
    resume: bool = True,
    progress: bool = True,
    stop_after_steps: int | None = None,
) -> FinetuneResult:
    """Train one encoder with a head per task on disjoint dimension sets.

    Args:
        config: shared settings (``config.task``/``config.head.dims`` are not read).
        tasks: task names (two or more; one also works).
        device, out_dir: as in :func:`~probekit.finetune.single.finetune`.
        dims, dims_per_task, allow_overlap: see :func:`assign_dims`.
        mode: ``alternate`` or ``mixed`` batches.
        glue_dir, data: where the splits come from (``data``: ``{task: (train, eval)}``).

    Returns:
        :class:`FinetuneResult`; ``metrics`` is ``{task: {metric: value}}``, and
        ``record["dims"]`` the dims of each head.
    """
    data = dict(data or {})
    tasks = list(dict.fromkeys(t if t in data else get_task(t).name for t in tasks))
    if not tasks:
        raise ConfigError("multihead needs at least one task")
    hidden, n_layers = encoder_shape(config.model)
    chosen = assign_dims(
        tasks,
        hidden,
        dims=dims,
        dims_per_task=dims_per_task,
        seed=config.seed,
        allow_overlap=allow_overlap,
    )
    runs = []
    for t in tasks:
        if t in data:
            tr, ev = limited(config, *data[t])
        else:
            tr, ev = load_run_data(config, glue_dir=glue_dir, task=t)
        d = chosen[t]
        head = config.head.bind(tr.task, hidden, n_layers, dims="all" if d is None else list(d))
        runs.append(TaskRun(t, tr, ev, head))
    logger.info("multihead dims: %s", chosen)
    extra = {"dims": {t: None if d is None else list(d) for t, d in chosen.items()}}
    config = replace(
        config, task=",".join(tasks), head=replace(config.head, dims="per task (see dims)")
    )
    trainer = Trainer(
        config,
        runs,
        device=device,
        out_dir=out_dir,
        mode=mode,
        kind="multihead",
        extra_record=extra,
        progress=progress,
    )
    return trainer.run(resume=resume, stop_after_steps=stop_after_steps)
