"""The ``result.json`` record of a fine-tuning run (built from a :class:`~.loop.Trainer`).

Keys: ``kind``, ``complete``, ``run_id``, ``config`` (:meth:`FinetuneConfig.to_dict`),
``mode``, ``heads``, ``versions``, ``device``, ``mixed_precision``, ``torch_threads``,
``model``, ``data``, ``freeze``, ``params``, ``steps``, ``epochs``, ``metrics``,
``elapsed_s``, ``train_examples_per_second``, ``paths`` (and ``final_weights_hash`` once
complete; ``targets``, ``{task: {"mean", "std"}}``, when a head is a regression head's).
Deprecated, written for one release: ``wall_seconds`` (= ``elapsed_s``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..provenance import versions
from ..tasks import TaskData
from .config import HEADS_FILE, MODEL_DIR

if TYPE_CHECKING:
    from .loop import Trainer

__all__ = ["data_record", "param_counts", "run_record"]


def _split(d: TaskData, *, split: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(d)}
    if split:
        out["split"] = d.split
    out.update(source=d.source, fingerprint=d.fingerprint())
    return out


def data_record(
    names: list[str], train: dict[str, TaskData], ev: dict[str, TaskData]
) -> dict[str, Any]:
    """``{task: {"task", "train": {n, source, fingerprint}, "eval": {n, split, ...}}}``."""
    return {
        n: {
            "task": (train.get(n) or ev[n]).task.name,
            "train": _split(train[n], split=False) if n in train else None,
            "eval": _split(ev[n], split=True) if n in ev else None,
        }
        for n in names
    }


def param_counts(trainer: Trainer) -> dict[str, Any]:
    """Encoder and head parameters: totals, trainable, and reachable through the dims."""
    info = trainer.freeze_info
    heads = {n: h.parameter_counts() for n, h in trainer.heads.items()}
    trained = {t.name for t in trainer.tasks if t.train_head}
    return {
        "encoder_total": info["encoder_total"],
        "encoder_trainable": info["encoder_trainable"],
        "heads": heads,
        "trainable_total": int(sum(p.numel() for p in trainer.trainable)),
        "trainable_effective": int(
            info["encoder_trainable"]
            + sum(c["effective"] for n, c in heads.items() if n in trained)
        ),
    }


def run_record(trainer: Trainer, *, complete: bool, elapsed_s: float) -> dict[str, Any]:
    """The record of ``trainer``'s run as it stands (see the module docstring)."""
    st, names, lm = trainer.state, trainer.names, trainer.loaded
    history = st.history
    last = history[-1]["metrics"] if history else {}
    train_s = sum(e.get("train_seconds", 0.0) for e in history)
    rec: dict[str, Any] = {
        "kind": trainer.kind,
        "complete": complete,
        "run_id": trainer.run_id,
        "fingerprint": trainer.fingerprint,
        "config": trainer.config.to_dict(),
        "mode": trainer.mode if len(names) > 1 else None,
        "heads": {n: h.config.to_dict() for n, h in trainer.heads.items()},
        "versions": versions(),
        "device": str(trainer.device),
        "mixed_precision": trainer.precision.name or "no",
        "torch_threads": torch.get_num_threads(),
        "model": {
            "name": trainer.model_name,
            "path": lm.path,
            "n_layers": lm.n_layers,
            "hidden_size": lm.hidden_size,
            "initial_weights_hash": trainer.initial_hash,
        },
        "data": data_record(names, trainer.train_sets, trainer.eval_sets),
        "freeze": {k: v for k, v in trainer.freeze_info.items() if k != "frozen"},
        "params": param_counts(trainer),
        "steps": {
            "per_epoch": trainer.steps_per_epoch,
            "total": trainer.total_steps,
            "done": st.global_step,
        },
        "epochs": history,
        "metrics": last.get(names[0], {}) if len(names) == 1 else last,
        "elapsed_s": elapsed_s,
        "wall_seconds": elapsed_s,
        "train_examples_per_second": (
            sum(e.get("train_examples", 0) for e in history) / max(train_s, 1e-9)
            if history
            else None
        ),
        "paths": {
            "model": MODEL_DIR if complete else None,
            "heads": HEADS_FILE if complete else None,
        },
    }
    targets = {
        n: {"mean": float(h.target_mean[0]), "std": float(h.target_std[0])}
        for n, h in trainer.heads.items()
        if h.config.regression
    }
    if targets:
        rec["targets"] = targets
    if trainer.extra_record:
        rec.update(trainer.extra_record)
    return rec
