"""Settings of a fine-tuning run, what each task brings to it, and what it returns.

:class:`FinetuneConfig` holds the head's settings as one :class:`~.head_config.HeadConfig`
(``config.head``, a template until bound to an encoder and task) next to the optimisation
settings. The flat keywords of probekit 0.1 (``dims``, ``layer``, ``token``,
``include_cls``, ``head_layers``, ``head_hidden``, ``head_activation``, ``head_dropout``,
``max_train_examples``, ``max_eval_examples``) still work for one release, with a
:class:`DeprecationWarning`. ``result.json`` keeps its flat ``config`` record.

Nothing here imports torch: the command line reads these defaults for its ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import DEFAULT_MODEL
from ..errors import ConfigError
from ._aliases import renamed_fields
from .freeze import parse_freeze
from .head_config import HeadConfig

if TYPE_CHECKING:
    from ..tasks import TaskData, TaskSpec

__all__ = [
    "CHECKPOINT_FILE",
    "HEADS_FILE",
    "MODEL_DIR",
    "RESULT_FILE",
    "FinetuneConfig",
    "FinetuneResult",
    "TaskRun",
    "study_recipe",
]

RESULT_FILE = "result.json"
CHECKPOINT_FILE = "checkpoint.pt"
HEADS_FILE = "heads.pt"
MODEL_DIR = "model"

#: flat head keys of the ``config`` record -> fields of ``config.head``
_HEAD_KEYS = {
    "dims": "dims",
    "layer": "layer",
    "pool": "pool",
    "include_cls": "include_cls",
    "head_layers": "head_layers",
    "head_hidden": "hidden",
    "head_activation": "activation",
    "head_dropout": "dropout",
}
#: deprecated names -> new ones (keywords, attributes and keys of the ``config`` record)
_RENAMED = {"token": "pool", "max_train_examples": "limit", "max_eval_examples": "eval_limit"}
_OLD_KEYWORDS = {
    **{k: f"head.{v}" for k, v in _HEAD_KEYS.items() if k != "pool"},
    "token": "head.pool",
    "max_train_examples": "limit",
    "max_eval_examples": "eval_limit",
}
#: the keys of the record that are new (absent from probekit 0.1's, hence from run ids)
_NEW_KEYS = ("pool", "limit", "eval_limit")


#: the optimisation settings every condition of a study shares (see :func:`study_recipe`)
_STUDY_RECIPE = {"lr": 2e-5, "head_lr": 1e-2, "warmup_ratio": 0.1, "weight_decay": 0.01}


def study_recipe() -> dict[str, float]:
    """The :class:`FinetuneConfig` overrides of a study's fine-tuning recipe, one for every
    condition (2-dimension to full-width heads, any task) so that differences between
    conditions come from the head: ``FinetuneConfig(**study_recipe(), ...)``.

    Encoder lr 2e-5; head lr 1e-2 and warm-up 0.1, chosen by measurement
    (``benchmarks/bench_head_lr.py``: MiniLM, CoLA, SST-2 and a regression fixture, 2 epochs,
    2-dimension and full-width heads; README, "Fine-tuning settings for few-dimension heads").
    Regression targets are standardised in every run (:mod:`.heads`).

    Returns:
        a new dict: ``lr``, ``head_lr``, ``warmup_ratio``, ``weight_decay``.
    """
    return dict(_STUDY_RECIPE)


def _template() -> HeadConfig:
    return HeadConfig(dims="all")


@renamed_fields(_OLD_KEYWORDS)
@dataclass
class FinetuneConfig:
    """Settings of a fine-tuning run. Defaults are probekit's choices (the paper publishes none).

    Attributes:
        model: ``minilm`` (:data:`probekit.models.DEFAULT_MODEL`), a Hugging Face id or a
            local model directory.
        task: task name (``sst2``, ``rte``, ``demo``, ...).
        head: the head (:class:`~.head_config.HeadConfig` template: ``dims`` as ``"all"``,
            ``"3,17"``, ``"0-9"`` or ints, ``layer``, ``pool``, ``include_cls``,
            ``head_layers``, ``hidden``, ``activation``, ``dropout``).
        freeze: ``none``, ``embeddings``, ``encoder`` (all pre-trained weights) or
            ``bottom-K`` (embeddings and the K lowest transformer blocks).
        lr: AdamW learning rate of the encoder.
        head_lr: learning rate of the heads (None: same as ``lr``); tiny heads need a
            larger one (:func:`study_recipe` uses 1e-2).
        batch_size: examples per micro-batch (per task in ``mixed`` multi-head runs).
        grad_accum: micro-batches per optimizer step.
        eval_batch_size: examples per evaluation batch.
        epochs: passes over the training data.
        max_length: tokens per example (longer inputs are truncated).
        warmup_ratio: fraction of optimizer steps with linear warmup, then linear decay to 0.
        weight_decay: AdamW weight decay (not applied to biases and LayerNorm weights).
        max_grad_norm: gradient clipping norm (0 disables clipping).
        seed: seeds head initialisation, dropout and data order.
        mixed_precision: ``auto`` (bf16 or fp16 on CUDA, off elsewhere), ``no``, ``bf16``, ``fp16``.
        limit: use only the first N training examples (CPU-sized runs).
        eval_limit: evaluate on the first N examples of the eval split only.
        eval_split: split evaluated after each epoch (``dev``; MNLI: ``dev_matched``).
        checkpoint_every: optimizer steps between checkpoints (0: only at epoch ends).
    """

    model: str = DEFAULT_MODEL
    task: str = "demo"
    head: HeadConfig = field(default_factory=_template)
    freeze: str = "none"
    lr: float = 2e-5
    head_lr: float | None = None
    batch_size: int = 32
    grad_accum: int = 1
    eval_batch_size: int = 64
    epochs: int = 3
    max_length: int = 128
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 0
    mixed_precision: str = "auto"
    limit: int | None = None
    eval_limit: int | None = None
    eval_split: str = "dev"
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        if not isinstance(self.head, HeadConfig):
            raise ConfigError(f"head must be a HeadConfig, got {type(self.head).__name__}")
        for name in ("batch_size", "grad_accum", "eval_batch_size", "epochs", "max_length"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if self.lr <= 0 or (self.head_lr is not None and self.head_lr <= 0):
            raise ConfigError(
                f"learning rates must be positive, got lr={self.lr} head_lr={self.head_lr}"
            )
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.weight_decay < 0 or self.max_grad_norm < 0 or self.checkpoint_every < 0:
            raise ConfigError(
                "weight_decay, max_grad_norm and checkpoint_every must be non-negative"
            )
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ConfigError(
                f"mixed_precision must be auto, no, bf16 or fp16, got {self.mixed_precision!r}"
            )
        for name in ("limit", "eval_limit"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name} must be at least 1, got {v}")
        parse_freeze(self.freeze)

    def to_dict(self) -> dict[str, Any]:
        """The flat ``config`` record of ``result.json``.

        The head's settings appear under their flat keys (``dims``, ``layer``, ``pool``,
        ``head_layers``, ...). Deprecated keys, written for one release for readers of
        probekit 0.1 files: ``token`` (= ``pool``), ``max_train_examples`` (= ``limit``),
        ``max_eval_examples`` (= ``eval_limit``).
        """
        head = self.head.to_dict(deprecated=False)
        out: dict[str, Any] = {"model": self.model, "task": self.task}
        out.update({k: head[v] for k, v in _HEAD_KEYS.items()})
        rest = (f.name for f in fields(self) if f.name not in ("model", "task", "head"))
        out.update({name: getattr(self, name) for name in rest})
        out.update({old: out[new] for old, new in _RENAMED.items()})
        return out

    def legacy_dict(self) -> dict[str, Any]:
        """The record under probekit 0.1's keys only (what run ids are hashed from)."""
        return {k: v for k, v in self.to_dict().items() if k not in _NEW_KEYS}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FinetuneConfig:
        """Read a :meth:`to_dict` record (old keys of probekit 0.1 files accepted)."""
        d = dict(d)
        for old, new in _RENAMED.items():
            if old in d:
                d.setdefault(new, d.pop(old))
        head = {v: d.pop(k) for k, v in _HEAD_KEYS.items() if k in d}
        return cls(head=HeadConfig(**{**_template().to_dict(deprecated=False), **head}), **d)

    def head_config(
        self, task: TaskSpec, hidden_size: int, n_layers: int, dims: Any = None
    ) -> HeadConfig:
        """The head of this run for ``task`` (:meth:`HeadConfig.bind`; ``dims`` overrides)."""
        return self.head.bind(task, hidden_size, n_layers, dims=dims)


@dataclass
class TaskRun:
    """One task of a training run: its data and its head.

    Attributes:
        name: key of the head (the task name; unique within a run).
        train: training examples (unlabelled rows are dropped).
        eval: examples scored after each epoch (None: no evaluation).
        head: the head's configuration (bound).
        head_state: initial head weights (None: fresh initialisation, and a regression
            head's targets standardised on ``train``, :meth:`SelectedDimHead.standardize_targets`).
        train_head: False keeps the head fixed (used for evaluation-only heads).
    """

    name: str
    train: TaskData | None
    eval: TaskData | None
    head: HeadConfig
    head_state: dict | None = None
    train_head: bool = True


@dataclass
class FinetuneResult:
    """What a run returns; ``record`` is the content of ``result.json``.

    Attributes:
        out_dir: the run's directory.
        metrics: final eval metrics (``{metric: value}`` for one task, else ``{task: {...}}``).
        record: the full JSON record.
        complete: False when the run stopped early (``stop_after_steps``) and can be resumed.
    """

    out_dir: Path
    metrics: dict
    record: dict
    complete: bool

    @property
    def model_dir(self) -> Path:
        return self.out_dir / MODEL_DIR

    @property
    def heads_path(self) -> Path:
        return self.out_dir / HEADS_FILE

    @property
    def result_path(self) -> Path:
        return self.out_dir / RESULT_FILE
