"""Fine-tuning an encoder through heads that see only selected dimensions.

Where things are:

* :mod:`.config`: :class:`FinetuneConfig` (run settings holding a :class:`HeadConfig`),
  :class:`TaskRun` (one task's data and head), :class:`FinetuneResult`,
  :func:`study_recipe` (the measured optimisation settings a study shares).
* :mod:`.head_config`: :class:`HeadConfig` (pooling ``cls`` / ``max_norm`` / ``mean`` /
  ``max``; any layer; 1- or 2-layer heads).
* :mod:`.heads`: :class:`SelectedDimHead` (fixed 0/1 mask on the head input), ``heads.pt``
  (:func:`save_heads`, :func:`load_heads`).
* :mod:`.freeze`: :func:`apply_freeze` (``none``, ``embeddings``, ``encoder``, ``bottom-K``).
* :mod:`.data`: loading, unlabelled rows, encoding (:mod:`probekit.tokenize`), the epoch's
  batch order, labelled batches.
* :mod:`.network`: the encoder with its heads, losses, mixed precision.
* :mod:`.state`: :class:`TrainState` (what ``checkpoint.pt`` holds), run ids, RNG state.
* :mod:`.loop`: the :class:`Trainer` (build, optimizer, restore, train an epoch, evaluate,
  checkpoint, write results) and :func:`run_training`; :mod:`.record`: ``result.json``.
* :mod:`.evaluation`: :func:`evaluate`, :func:`load_finetuned`.
* :mod:`.single`: :func:`finetune` (one task).
* :mod:`.cross`: :func:`cross_finetune`, sequential fine-tuning on two tasks (forgetting).
* :mod:`.multi`: :func:`multihead_finetune`, one encoder with one head per task on disjoint dims.

``probekit.finetune.train`` re-exports the names that lived there in probekit 0.1.

Importing the package is cheap: each public name is imported from its module on first use
(PEP 562), so reading the settings (:mod:`.config`, :mod:`.head_config`, :mod:`.freeze`:
what ``probekit finetune --help`` shows) imports no torch; the other modules do.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import FinetuneConfig, FinetuneResult, TaskRun, study_recipe
    from .cross import CrossResult, choose_disjoint_dims, cross_finetune
    from .data import epoch_schedule, load_run_data
    from .evaluation import evaluate, load_finetuned
    from .freeze import apply_freeze, parse_freeze
    from .head_config import POOLS, TOKENS, HeadConfig
    from .heads import SelectedDimHead, load_heads, parse_dims, pool_tokens, save_heads
    from .loop import Trainer, run_training
    from .multi import assign_dims, multihead_finetune
    from .network import precision_settings
    from .single import finetune
    from .state import TrainState, run_fingerprint, run_id

#: public name -> the module it is imported from on first use
_HOMES = {
    **dict.fromkeys(("FinetuneConfig", "FinetuneResult", "TaskRun", "study_recipe"), "config"),
    **dict.fromkeys(("CrossResult", "choose_disjoint_dims", "cross_finetune"), "cross"),
    **dict.fromkeys(("epoch_schedule", "load_run_data"), "data"),
    **dict.fromkeys(("evaluate", "load_finetuned"), "evaluation"),
    **dict.fromkeys(("apply_freeze", "parse_freeze"), "freeze"),
    **dict.fromkeys(("POOLS", "TOKENS", "HeadConfig"), "head_config"),
    **dict.fromkeys(
        ("SelectedDimHead", "load_heads", "parse_dims", "pool_tokens", "save_heads"), "heads"
    ),
    **dict.fromkeys(("Trainer", "run_training"), "loop"),
    **dict.fromkeys(("assign_dims", "multihead_finetune"), "multi"),
    "precision_settings": "network",
    "finetune": "single",
    **dict.fromkeys(("TrainState", "run_fingerprint", "run_id"), "state"),
}


def __getattr__(name: str) -> Any:
    """``probekit.finetune.NAME``: the public ``NAME`` from its module, imported now."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


__all__ = [
    "POOLS",
    "TOKENS",
    "CrossResult",
    "FinetuneConfig",
    "FinetuneResult",
    "HeadConfig",
    "SelectedDimHead",
    "TaskRun",
    "TrainState",
    "Trainer",
    "apply_freeze",
    "assign_dims",
    "choose_disjoint_dims",
    "cross_finetune",
    "epoch_schedule",
    "evaluate",
    "finetune",
    "load_finetuned",
    "load_heads",
    "load_run_data",
    "multihead_finetune",
    "parse_dims",
    "parse_freeze",
    "pool_tokens",
    "precision_settings",
    "run_fingerprint",
    "run_id",
    "run_training",
    "save_heads",
    "study_recipe",
]
