"""The examples a study works on: per task, one random training subset and one random eval
subset, drawn once with the study's seed and shared by every probe and every run (so the
probes' scores and the fine-tuned scores are about the same examples)."""

from __future__ import annotations

import logging

import numpy as np

from ..tasks import TaskData, load_own_files, load_task, normalize_split
from .config import Budget, StudyConfig

logger = logging.getLogger(__name__)

__all__ = ["TaskSplits", "load_study_data", "sample"]

#: ``{task: (train, eval)}``
TaskSplits = dict[str, tuple[TaskData, TaskData]]


def sample(data: TaskData, n: int | None, seed: int) -> TaskData:
    """``n`` examples of ``data`` drawn without replacement (in source order), or all of it.

    GLUE files are often grouped by source (CoLA's first rows are one book), so the first
    ``n`` rows would not be a fair subset; the draw depends only on ``seed`` and the split.
    """
    if n is None or n >= len(data):
        return data
    rng = np.random.default_rng([seed, len(data), 104729])
    return data.subset(np.sort(rng.choice(len(data), size=n, replace=False)))


def load_study_data(cfg: StudyConfig, budget: Budget) -> TaskSplits:
    """The training and eval subsets of every task of ``cfg`` (or of its own files)."""
    out: TaskSplits = {}
    if cfg.files is not None:
        pairs = [load_own_files(cfg.files)]
    else:
        pairs = []
        for name in cfg.tasks:
            train = load_task(name, "train", glue_dir=cfg.glue_dir)
            ev = load_task(name, normalize_split(train.task, "dev"), glue_dir=cfg.glue_dir)
            pairs.append((train, ev))
    for train, ev in pairs:
        tr = sample(train, budget.limit, cfg.seed)
        e = sample(ev, budget.eval_limit, cfg.seed)
        logger.info("%s: %d training and %d eval examples", tr.task.name, len(tr), len(e))
        out[tr.task.name] = (tr, e)
    return out
