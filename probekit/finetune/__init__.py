"""Fine-tuning an encoder through heads that see only selected dimensions.

* :mod:`.heads`: :class:`SelectedDimHead` (fixed 0/1 mask on the head input; token choice
  ``cls`` / ``max_norm`` / ``mean`` / ``max``; any layer; 1- or 2-layer heads).
* :mod:`.train`: :func:`finetune` (one task) and :func:`run_training` (the loop: AdamW,
  warmup/decay, clipping, accumulation, CUDA mixed precision, per-epoch GLUE evaluation,
  resumable checkpoints, ``result.json`` + ``model/`` + ``heads.pt``), freezing.
* :mod:`.cross`: :func:`cross_finetune`, sequential fine-tuning on two tasks (forgetting).
* :mod:`.multi`: :func:`multihead_finetune`, one encoder with one head per task on disjoint dims.
"""

from __future__ import annotations

from .cross import CrossResult, choose_disjoint_dims, cross_finetune
from .heads import TOKENS, HeadConfig, SelectedDimHead, parse_dims, pool_tokens
from .multi import assign_dims, multihead_finetune
from .train import (
    FinetuneConfig,
    FinetuneResult,
    TaskRun,
    apply_freeze,
    evaluate,
    finetune,
    load_finetuned,
    load_heads,
    load_run_data,
    run_training,
)

__all__ = [
    "TOKENS",
    "CrossResult",
    "FinetuneConfig",
    "FinetuneResult",
    "HeadConfig",
    "SelectedDimHead",
    "TaskRun",
    "apply_freeze",
    "assign_dims",
    "choose_disjoint_dims",
    "cross_finetune",
    "evaluate",
    "finetune",
    "load_finetuned",
    "load_heads",
    "load_run_data",
    "multihead_finetune",
    "parse_dims",
    "pool_tokens",
    "run_training",
]
