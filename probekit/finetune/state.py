"""What a fine-tuning run must keep to resume bit-identically, and what identifies the run.

:class:`TrainState` gathers the live training objects (network, optimizer, scheduler,
gradient scaler) and the position of the run (epoch, micro-step, optimizer steps, the
epoch's running sums, history, elapsed time, RNG state); ``checkpoint.pt`` holds its
:meth:`TrainState.state_dict`, a plain dict of tensors and Python values (no JSON strings;
checkpoints of probekit 0.1, which had them, are still read).

:func:`run_fingerprint` lists what makes two runs the same run; :func:`run_id` is its hash.
Run ids are hashed from probekit 0.1's record names, so runs started before the renames
keep their ids and resume (regression runs excepted: their targets are now standardised).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._io import atomic_path
from ..errors import ConfigError
from ..provenance import stable_hash
from .config import FinetuneConfig
from .heads import HeadConfig

__all__ = [
    "EpochTally",
    "TrainState",
    "diff_keys",
    "kept_rng",
    "read_checkpoint",
    "rng_state",
    "run_fingerprint",
    "run_id",
    "set_rng_state",
]

#: the format :meth:`TrainState.state_dict` writes (probekit 0.1's checkpoints have none)
STATE_FORMAT = 2


def rng_state(device: torch.device) -> dict[str, Any]:
    """The global torch RNG states: CPU, and ``device``'s (CUDA or MPS)."""
    st: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        st["mps"] = torch.mps.get_rng_state()
    return st


def set_rng_state(st: Mapping[str, Any], device: torch.device) -> None:
    """Restore states saved by :func:`rng_state`."""
    torch.set_rng_state(st["cpu"])
    if device.type == "cuda" and "cuda" in st:
        torch.cuda.set_rng_state(st["cuda"], device)
    elif device.type == "mps" and "mps" in st:
        torch.mps.set_rng_state(st["mps"])


@contextlib.contextmanager
def kept_rng(device: torch.device) -> Iterator[None]:
    """Restore the caller's random state (CPU and ``device``'s) on exit."""
    state = rng_state(device)
    try:
        yield
    finally:
        set_rng_state(state, device)


def run_fingerprint(
    config: FinetuneConfig,
    *,
    model: str,
    mode: str,
    precision: str,
    heads: Mapping[str, HeadConfig],
    train: Mapping[str, str],
) -> dict[str, Any]:
    """What makes two runs the same run (JSON-like; probekit 0.1's key names).

    Args:
        config: the settings (``checkpoint_every`` and ``eval_batch_size`` do not count).
        model: the encoder started from.
        mode: ``alternate`` or ``mixed``.
        precision: ``float32``, ``bfloat16`` or ``float16``.
        heads: ``{task: bound head config}``.
        train: ``{task: TaskData.fingerprint() of the training data}``.
    """
    cfg = config.legacy_dict()
    for k in ("checkpoint_every", "eval_batch_size"):
        del cfg[k]
    fp = {
        "config": cfg,
        "model": model,
        "mode": mode,
        "precision": precision,
        "heads": {n: _head_identity(h) for n, h in heads.items()},
        "train": dict(train),
    }
    return json.loads(json.dumps(fp))


def _head_identity(head: HeadConfig) -> dict[str, Any]:
    """A head's part of the fingerprint: its probekit 0.1 record, and for regression heads
    the target scaling (runs of probekit 0.1 trained on raw targets; their ids differ)."""
    d = head.legacy_dict()
    if head.regression:
        d["targets"] = "standardized on train"
    return d


def run_id(fingerprint: Mapping[str, Any]) -> str:
    """16 hex digits identifying a run (:func:`probekit.provenance.stable_hash`)."""
    return stable_hash(fingerprint, 16)


def diff_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON-like dicts differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new)):
            out += diff_keys(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]


def _plain(obj: Any) -> Any:
    """``obj`` with NumPy scalars as Python numbers (NaN kept), as ``torch.load`` accepts."""
    return json.loads(
        json.dumps(obj, default=lambda o: o.item() if isinstance(o, np.generic) else str(o))
    )


@dataclass
class EpochTally:
    """Running sums of the epoch in progress (kept in a mid-epoch checkpoint).

    ``loss_sum`` stays a tensor on the training device so that adding each step's loss
    does not synchronise with it.
    """

    loss_sum: torch.Tensor
    n_loss: int = 0
    n_examples: int = 0
    train_seconds: float = 0.0

    @classmethod
    def start(cls, device: torch.device, saved: Mapping[str, Any] | None = None) -> EpochTally:
        saved = saved or {}
        loss = torch.tensor(float(saved.get("loss_sum", 0.0)), dtype=torch.float32, device=device)
        return cls(
            loss,
            int(saved.get("n_loss", 0)),
            int(saved.get("n_examples", 0)),
            float(saved.get("train_seconds", 0.0)),
        )

    def to_dict(self, train_seconds: float) -> dict[str, Any]:
        return {
            "loss_sum": float(self.loss_sum.item()),
            "n_loss": self.n_loss,
            "n_examples": self.n_examples,
            "train_seconds": train_seconds,
        }


@dataclass
class TrainState:
    """The live objects of a run and where it stands.

    Attributes:
        net, optimizer, scheduler, scaler: the training objects (their states are saved).
        device: the training device (whose RNG state is saved).
        run_id, fingerprint: what run this is (:func:`run_fingerprint`).
        initial_hash: weights hash of the encoder the run started from.
        epoch: epochs finished (the one in progress when ``micro > 0``).
        micro: micro-steps done in the epoch in progress.
        global_step: optimizer steps done.
        history: one entry per finished epoch (loss, timings, metrics).
        elapsed_s: wall-clock seconds of the run so far (all calls together).
        partial: running sums of the epoch in progress (:class:`EpochTally`), or empty.
    """

    net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    device: torch.device
    run_id: str
    fingerprint: dict[str, Any]
    initial_hash: str
    epoch: int = 0
    micro: int = 0
    global_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0
    partial: dict[str, Any] = field(default_factory=dict)

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`load_state_dict` needs, as ``torch.load(weights_only=True)`` reads."""
        return {
            "format": STATE_FORMAT,
            "run_id": self.run_id,
            "fingerprint": self.fingerprint,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(self.device),
            "epoch": self.epoch,
            "micro": self.micro,
            "global_step": self.global_step,
            "history": _plain(self.history),
            "elapsed_s": self.elapsed_s,
            "initial_hash": self.initial_hash,
            "partial_epoch": _plain(self.partial),
        }

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (or a probekit 0.1 checkpoint), RNG state last."""
        self.net.load_state_dict(d["model"])
        self.optimizer.load_state_dict(d["optimizer"])
        self.scheduler.load_state_dict(d["scheduler"])
        if d.get("scaler"):  # empty when the scaler was off (CPU, bf16)
            self.scaler.load_state_dict(d["scaler"])
        old = d.get("format") is None  # probekit 0.1: JSON strings inside the torch file
        self.history = json.loads(d["history"]) if old else list(d["history"])
        self.partial = (
            json.loads(d.get("partial_epoch") or "{}") if old else dict(d["partial_epoch"])
        )
        self.elapsed_s = float(d["seconds"] if old else d["elapsed_s"])
        self.epoch, self.micro, self.global_step = d["epoch"], d["micro"], d["global_step"]
        self.initial_hash = d["initial_hash"]
        set_rng_state(d["rng"], self.device)

    def save(self, path: Path) -> None:
        """Write :meth:`state_dict` to ``path`` atomically."""
        with atomic_path(path) as tmp:
            torch.save(self.state_dict(), tmp)


def read_checkpoint(path: Path, fingerprint: dict[str, Any], rid: str) -> dict[str, Any]:
    """The checkpoint at ``path`` when it belongs to run ``rid``.

    Raises:
        ConfigError: it was made with other settings (naming them), or cannot be read.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConfigError(
            f"{path}: cannot read this checkpoint ({type(e).__name__}); "
            "start afresh with --no-resume (resume=False)"
        ) from None
    if ckpt.get("run_id") != rid:
        diff = diff_keys(ckpt.get("fingerprint") or {}, fingerprint)
        raise ConfigError(
            f"{path}: checkpoint was made with other settings "
            f"(differs in: {', '.join(diff) or 'unknown'}); "
            "use another --out directory or start afresh (resume=False / --no-resume)"
        )
    return ckpt
