"""Compatibility module: the fine-tuning loop moved to :mod:`.loop` (the :class:`Trainer`),
:mod:`.config`, :mod:`.data`, :mod:`.evaluation`, :mod:`.freeze` and :mod:`.single`.
``from probekit.finetune.train import ...`` keeps working for one release."""

from __future__ import annotations

from .config import (
    CHECKPOINT_FILE,
    HEADS_FILE,
    MODEL_DIR,
    RESULT_FILE,
    FinetuneConfig,
    FinetuneResult,
    TaskRun,
)
from .data import load_run_data
from .evaluation import evaluate, load_finetuned
from .freeze import apply_freeze
from .heads import load_heads, save_heads
from .loop import Trainer, run_training
from .single import finetune

__all__ = [
    "CHECKPOINT_FILE",
    "HEADS_FILE",
    "MODEL_DIR",
    "RESULT_FILE",
    "FinetuneConfig",
    "FinetuneResult",
    "TaskRun",
    "Trainer",
    "apply_freeze",
    "evaluate",
    "finetune",
    "load_finetuned",
    "load_heads",
    "load_run_data",
    "run_training",
    "save_heads",
]
