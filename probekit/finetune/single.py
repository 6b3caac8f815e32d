"""Fine-tuning on one task: :func:`finetune`, the function behind ``probekit finetune``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..tasks import TaskData
from .config import FinetuneConfig, FinetuneResult, TaskRun
from .data import limited, load_run_data
from .loop import Trainer

__all__ = ["encoder_shape", "finetune"]


def encoder_shape(model: str) -> tuple[int, int]:
    """``(hidden_size, n_layers)`` of an encoder from its config alone (hidden states,
    embeddings included), without loading its weights."""
    from transformers import AutoConfig

    from ..models import resolve_model_path

    mc = AutoConfig.from_pretrained(resolve_model_path(model))
    return int(mc.hidden_size), int(mc.num_hidden_layers) + 1


def finetune(
    config: FinetuneConfig,
    *,
    device: str | torch.device,
    out_dir: str | Path,
    train_data: TaskData | None = None,
    eval_data: TaskData | None = None,
    glue_dir: str | Path | None = None,
    model: str | None = None,
    dims: Any = None,
    head_state: dict | None = None,
    resume: bool = True,
    progress: bool = True,
    stop_after_steps: int | None = None,
    extra_record: dict | None = None,
) -> FinetuneResult:
    """Fine-tune ``config.model`` on ``config.task`` through one selected-dimension head.

    Args:
        config: the run's settings (:class:`FinetuneConfig`).
        device: where to train.
        out_dir: writes ``result.json``, ``model/``, ``heads.pt`` (``checkpoint.pt`` meanwhile).
        train_data, eval_data: the splits (default: loaded with :func:`load_run_data` from
            ``glue_dir``, the demo task or the hub); ``config.limit`` and
            ``config.eval_limit`` apply to them too.
        model: start from this encoder instead of ``config.model`` (e.g. a run's ``model/``).
        dims: override ``config.head.dims``.
        head_state: initial head weights.
        resume, stop_after_steps: see :meth:`Trainer.run`; progress: tqdm bars.
        extra_record: more fields for ``result.json``.

    Returns:
        :class:`FinetuneResult`; ``result.metrics`` is ``{metric: value}`` on the eval split
        after the last epoch.
    """
    if train_data is None or eval_data is None:
        tr, ev = load_run_data(config, glue_dir=glue_dir)
        train_data = train_data if train_data is not None else tr
        eval_data = eval_data if eval_data is not None else ev
    else:
        train_data, eval_data = limited(config, train_data, eval_data)
    task = train_data.task
    hidden, n_layers = encoder_shape(model or config.model)
    head = config.head.bind(task, hidden, n_layers, dims=dims)
    run = TaskRun(task.name, train_data, eval_data, head, head_state)
    trainer = Trainer(
        config,
        [run],
        device=device,
        out_dir=out_dir,
        model=model,
        kind="finetune",
        extra_record=extra_record,
        progress=progress,
    )
    return trainer.run(resume=resume, stop_after_steps=stop_after_steps)
