"""Fine-tuning an encoder through selected-dimension heads: a plain PyTorch training loop.

:func:`finetune` trains one task; :mod:`probekit.finetune.multi` trains several heads on one
encoder with the same loop, and :mod:`probekit.finetune.cross` chains two runs. Every run:

* loads the encoder with :func:`probekit.models.load_encoder` and trains it (unless frozen)
  together with one :class:`~probekit.finetune.heads.SelectedDimHead` per task;
* optimises with AdamW (weight decay on weight matrices only), a linear warmup/decay
  schedule, gradient clipping and accumulation, a separate learning rate for the heads, and
  mixed precision on CUDA (bf16 where supported, else fp16 with a gradient scaler);
* evaluates on the task's dev split with its GLUE metrics after every epoch;
* checkpoints (weights, optimizer, scheduler, scaler, RNG state, position in the data) into
  ``OUT/checkpoint.pt`` every ``checkpoint_every`` optimizer steps and at each epoch end, so
  an interrupted run resumes and ends bit-identical to an uninterrupted one (on the CPU,
  same thread count; GPU attention kernels are not deterministic, so GPU runs agree only
  to rounding);
* writes ``OUT/result.json`` (config, versions, per-epoch metrics, wall time, parameter
  counts), ``OUT/model/`` (encoder and tokenizer, readable by ``probekit extract --model``)
  and ``OUT/heads.pt`` (head configs and weights; :func:`load_finetuned` reads both back).

Randomness: the global torch RNG drives dropout inside ``transformers`` models, so the loop
saves the caller's RNG state (CPU and the training device's), seeds its own, and restores the
caller's on return. Data order comes from ``numpy.random.default_rng([seed, epoch, task])``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import platform
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..errors import ConfigError, DataError
from ..metrics import compute_metrics
from ..models import LoadedModel, load_encoder, resolve_device
from ..tasks import TaskData, TaskSpec, load_task
from .heads import HeadConfig, SelectedDimHead, parse_dims

logger = logging.getLogger(__name__)

__all__ = [
    "FinetuneConfig",
    "FinetuneResult",
    "TaskRun",
    "apply_freeze",
    "evaluate",
    "finetune",
    "load_finetuned",
    "load_heads",
    "load_run_data",
    "run_training",
]

RESULT_FILE = "result.json"
CHECKPOINT_FILE = "checkpoint.pt"
HEADS_FILE = "heads.pt"
MODEL_DIR = "model"


@dataclass
class FinetuneConfig:
    """Settings of a fine-tuning run. Defaults are probekit's choices (the paper publishes none).

    Attributes:
        model: ``minilm``, a Hugging Face id or a local model directory.
        task: task name (``sst2``, ``rte``, ``demo``, ...).
        dims: selected dimensions of the head input: ``"all"``, ``"3,17"`` or a list of ints.
        layer: hidden state the head reads (0 = embeddings, -1 = last).
        token: ``cls``, ``max_norm``, ``mean`` or ``max`` (see :mod:`.heads`).
        include_cls: for ``max_norm``, let ``[CLS]`` be chosen too.
        head_layers: 1 (linear) or 2 (linear, activation, linear).
        head_hidden: middle width of 2-layer heads (default: the encoder's hidden size).
        head_activation: ``tanh``, ``relu`` or ``gelu``.
        head_dropout: dropout on the head's (masked) input.
        freeze: ``none``, ``embeddings``, ``encoder`` (all pre-trained weights) or
            ``bottom-K`` (embeddings and the K lowest transformer blocks).
        lr: AdamW learning rate of the encoder.
        head_lr: learning rate of the heads (None: same as ``lr``); tiny heads often
            need a larger one, e.g. 1e-3.
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
        max_train_examples: use only the first N training examples (CPU-sized runs).
        max_eval_examples: evaluate on the first N dev examples only.
        eval_split: split evaluated after each epoch (``dev``; MNLI: ``dev_matched``).
        checkpoint_every: optimizer steps between checkpoints (0: only at epoch ends).
    """

    model: str = "minilm"
    task: str = "demo"
    dims: Any = "all"
    layer: int = -1
    token: str = "cls"
    include_cls: bool = False
    head_layers: int = 1
    head_hidden: int | None = None
    head_activation: str = "tanh"
    head_dropout: float = 0.0
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
    seed: int = 42
    mixed_precision: str = "auto"
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    eval_split: str = "dev"
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        if not isinstance(self.dims, (str, type(None))):
            self.dims = [int(d) for d in self.dims]
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
        for name in ("max_train_examples", "max_eval_examples"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name} must be at least 1, got {v}")
        _parse_freeze(self.freeze)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def head_config(
        self, task: TaskSpec, hidden_size: int, n_layers: int, dims: Any = None
    ) -> HeadConfig:
        """The :class:`HeadConfig` of this run for ``task`` (``dims`` overrides ``self.dims``)."""
        layer = self.layer
        if not -n_layers <= layer < n_layers:
            raise ConfigError(
                f"layer {layer} is out of range for a model with {n_layers} hidden states "
                f"(0 = embeddings .. {n_layers - 1}, or -1 = last)"
            )
        return HeadConfig(
            input_size=hidden_size,
            num_labels=task.num_labels,
            dims=parse_dims(self.dims if dims is None else dims, hidden_size),
            layer=layer % n_layers,
            token=self.token,
            include_cls=self.include_cls,
            n_layers=self.head_layers,
            hidden=self.head_hidden,
            activation=self.head_activation,
            dropout=self.head_dropout,
            is_regression=task.regression,
            task=task.name,
        )


@dataclass
class TaskRun:
    """One task of a training run: its data and its head.

    Attributes:
        name: key of the head (the task name; unique within a run).
        train: training examples (unlabelled rows are dropped).
        eval: examples scored after each epoch (None: no evaluation).
        head: the head's configuration.
        head_state: initial head weights (None: fresh initialisation).
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


# ------------------------------------------------------------------------------------------
# freezing
# ------------------------------------------------------------------------------------------

_BLOCK_RE = re.compile(r"(?:^|\.)(?:layer|layers|block|blocks)\.(\d+)\.")


def _parse_freeze(spec: str) -> tuple[str, int]:
    s = str(spec).strip().lower()
    if s in ("none", "embeddings", "encoder"):
        return s, 0
    m = re.fullmatch(r"bottom-(\d+)", s)
    if m:
        return "bottom", int(m.group(1))
    raise ConfigError(
        f"freeze {spec!r} is not one of none, embeddings, encoder, bottom-K (e.g. bottom-3)"
    )


def apply_freeze(model: nn.Module, spec: str) -> dict[str, Any]:
    """Set ``requires_grad`` of the encoder's parameters according to ``spec``.

    ``none`` trains everything, ``embeddings`` freezes the embedding parameters,
    ``encoder`` freezes every pre-trained weight, ``bottom-K`` freezes the embeddings and
    transformer blocks ``0..K-1``. The pooler (unused by probekit heads) is always frozen.
    Parameters are matched by name (``embeddings.*``, ``*.layer.N.*``), which covers BERT,
    RoBERTa, ELECTRA, DeBERTa and DistilBERT.

    Returns:
        ``{"spec", "frozen": [names], "encoder_total", "encoder_trainable"}``.

    Raises:
        ConfigError: an unknown spec, or K larger than the number of blocks.
    """
    kind, k = _parse_freeze(spec)
    names = [n for n, _ in model.named_parameters()]
    blocks = {int(m.group(1)) for n in names if (m := _BLOCK_RE.search(n))}
    if kind == "bottom" and k > len(blocks):
        raise ConfigError(f"freeze bottom-{k}: the model has only {len(blocks)} transformer blocks")
    frozen = []
    for n, p in model.named_parameters():
        m = _BLOCK_RE.search(n)
        is_emb = n.startswith("embeddings.") or ".embeddings." in n
        if kind == "encoder" or n.startswith("pooler."):
            f = True
        elif kind == "embeddings":
            f = is_emb
        elif kind == "bottom":
            f = is_emb or (m is not None and int(m.group(1)) < k)
        else:
            f = False
        p.requires_grad_(not f)
        if f:
            frozen.append(n)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "spec": str(spec),
        "frozen": frozen,
        "encoder_total": int(total),
        "encoder_trainable": int(trainable),
    }


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------


@dataclass
class _Encoded:
    ids: list[np.ndarray]
    type_ids: list[np.ndarray] | None
    special: list[np.ndarray]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def _encode(
    tokenizer: Any, data: TaskData, max_length: int, use_token_types: bool = True
) -> _Encoded:
    kw = dict(
        truncation=True,
        max_length=max_length,
        return_special_tokens_mask=True,
        return_attention_mask=False,
    )
    enc = (
        tokenizer(data.texts, data.pairs, **kw)
        if data.pairs is not None
        else tokenizer(data.texts, **kw)
    )
    use_types = use_token_types and "token_type_ids" in enc
    return _Encoded(
        [np.asarray(x, dtype=np.int64) for x in enc["input_ids"]],
        [np.asarray(x, dtype=np.int64) for x in enc["token_type_ids"]] if use_types else None,
        [np.asarray(x, dtype=np.int64) for x in enc["special_tokens_mask"]],
        np.asarray(data.labels),
    )


def _uses_token_types(model: nn.Module) -> bool:
    """Whether the encoder has segment (token type) embeddings worth feeding (as in extract)."""
    return int(getattr(model.config, "type_vocab_size", 0) or 0) > 1


def _collate(
    enc: _Encoded, idx: np.ndarray, pad_id: int, device: torch.device
) -> dict[str, torch.Tensor]:
    from torch.nn.utils.rnn import pad_sequence

    ids = pad_sequence(
        [torch.from_numpy(enc.ids[i]) for i in idx], batch_first=True, padding_value=pad_id
    )
    lengths = torch.tensor([len(enc.ids[i]) for i in idx])
    attn = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
    special = pad_sequence(
        [torch.from_numpy(enc.special[i]) for i in idx], batch_first=True, padding_value=1
    )
    batch = {"input_ids": ids, "attention_mask": attn, "special_tokens_mask": special}
    if enc.type_ids is not None:
        batch["token_type_ids"] = pad_sequence(
            [torch.from_numpy(enc.type_ids[i]) for i in idx], batch_first=True, padding_value=0
        )
    batch["labels"] = torch.from_numpy(enc.labels[idx])
    # non_blocking only on CUDA, where a copy from pageable memory is staged before returning
    return {k: v.to(device, non_blocking=device.type == "cuda") for k, v in batch.items()}


def _labelled(data: TaskData) -> TaskData:
    if data.task.regression:
        keep = ~np.isnan(data.labels)
    else:
        keep = data.labels >= 0
    if keep.all():
        return data
    if not keep.any():
        raise DataError(f"{data.source}: split {data.split!r} has no labelled examples")
    logger.info("%s: dropping %d unlabelled rows", data.source, int((~keep).sum()))
    return data.subset(np.flatnonzero(keep))


def load_run_data(
    config: FinetuneConfig,
    *,
    glue_dir: str | Path | None = None,
    task: str | None = None,
    hub: bool = True,
) -> tuple[TaskData, TaskData]:
    """Train and eval splits of ``task`` (default ``config.task``) with the config's limits."""
    name = task or config.task
    train = load_task(name, "train", glue_dir=glue_dir, limit=config.max_train_examples, hub=hub)
    ev = load_task(
        name, config.eval_split, glue_dir=glue_dir, limit=config.max_eval_examples, hub=hub
    )
    return train, ev


def _epoch_schedule(
    sizes: Sequence[int], batch_size: int, seed: int, epoch: int, mode: str
) -> list[list[tuple[int, np.ndarray]]]:
    """Micro-steps of one epoch: each a list of ``(task index, example indices)``."""
    per_task = []
    for t, n in enumerate(sizes):
        if n == 0:
            per_task.append([])
            continue
        perm = np.random.default_rng([seed, epoch, t]).permutation(n)
        per_task.append([perm[i : i + batch_size] for i in range(0, n, batch_size)])
    steps: list[list[tuple[int, np.ndarray]]] = []
    longest = max((len(b) for b in per_task), default=0)
    for j in range(longest):
        row = [(t, b[j]) for t, b in enumerate(per_task) if j < len(b)]
        if mode == "mixed":
            steps.append(row)
        else:  # alternate (and single task): one task per micro-step, round robin
            steps.extend([r] for r in row)
    return steps


# ------------------------------------------------------------------------------------------
# model
# ------------------------------------------------------------------------------------------


class _Model(nn.Module):
    """Encoder plus one head per task (an ``nn.ModuleDict``)."""

    def __init__(
        self, encoder: nn.Module, heads: dict[str, SelectedDimHead], n_layers: int
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)
        self.n_layers = n_layers

    def features(
        self, batch: dict[str, torch.Tensor], names: Sequence[str], *, encoder_grad: bool = True
    ) -> dict[str, torch.Tensor]:
        """Pooled head inputs ``{name: [batch, hidden]}`` of one encoder pass."""
        layers = {self.heads[n].config.layer for n in names}
        need_all = any(layer != self.n_layers - 1 for layer in layers)
        inputs = {
            k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch
        }
        with torch.set_grad_enabled(encoder_grad and torch.is_grad_enabled()):
            out = self.encoder(**inputs, output_hidden_states=need_all, return_dict=True)
        hs = out.hidden_states if need_all else {self.n_layers - 1: out.last_hidden_state}
        return {
            n: self.heads[n].pool(hs, batch["attention_mask"], batch["special_tokens_mask"])
            for n in names
        }

    def forward(
        self, batch: dict[str, torch.Tensor], names: Sequence[str], *, encoder_grad: bool = True
    ) -> dict[str, torch.Tensor]:
        """Logits ``{name: [batch, num_labels]}``."""
        feats = self.features(batch, names, encoder_grad=encoder_grad)
        return {n: self.heads[n](feats[n]) for n in names}


def _loss(head: SelectedDimHead, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if head.config.is_regression:
        return nn.functional.mse_loss(logits.float().squeeze(-1), labels.float())
    return nn.functional.cross_entropy(logits.float(), labels.long())


def _amp_settings(mode: str, device: torch.device) -> tuple[bool, torch.dtype | None, bool]:
    """(autocast enabled, autocast dtype, use grad scaler)."""
    if mode == "no":
        return False, None, False
    if device.type != "cuda":
        if mode == "auto":
            return False, None, False
        raise ConfigError(f"mixed_precision={mode!r} needs a CUDA device (device is {device})")
    if (
        mode == "auto"
    ):  # native bf16 from Ampere (compute capability 8) on; older cards get fp16 + loss scaling
        mode = "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp16"
    if mode == "bf16":
        return True, torch.bfloat16, False
    return True, torch.float16, True


def _autocast(device: torch.device, amp: tuple[bool, torch.dtype | None, bool]) -> Any:
    """Autocast when mixed precision is on; otherwise no context at all (some torch versions
    reject ``torch.autocast(device_type="mps", enabled=False)``)."""
    if not amp[0]:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp[1])


# ------------------------------------------------------------------------------------------
# evaluation
# ------------------------------------------------------------------------------------------


@torch.no_grad()
def _predict(
    model: _Model,
    name: str,
    enc: _Encoded,
    pad_id: int,
    batch_size: int,
    device: torch.device,
    amp: tuple[bool, torch.dtype | None, bool],
) -> np.ndarray:
    order = np.argsort([len(x) for x in enc.ids], kind="stable")
    outs = np.empty((len(enc), model.heads[name].config.num_labels), dtype=np.float32)
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        batch = _collate(enc, idx, pad_id, device)
        with _autocast(device, amp):
            logits = model(batch, [name])[name]
        outs[idx] = logits.float().cpu().numpy()
    return outs


def _score(
    head_cfg: HeadConfig, task: TaskSpec, logits: np.ndarray, labels: np.ndarray
) -> dict[str, float]:
    pred = logits[:, 0] if head_cfg.is_regression else logits.argmax(1)
    return compute_metrics(task.metrics, labels, pred)


def evaluate(
    loaded: LoadedModel,
    heads: dict[str, SelectedDimHead],
    data: TaskData | dict[str, TaskData],
    *,
    max_length: int = 128,
    batch_size: int = 64,
    mixed_precision: str = "auto",
) -> dict:
    """Score heads on data with the encoder of ``loaded`` (e.g. from :func:`load_finetuned`).

    Args:
        loaded: the encoder and tokenizer.
        heads: ``{task: head}``.
        data: one split (scored with the head of its task name, or the only head) or
            ``{head name: split}``.

    Returns:
        ``{metric: value}`` for a single split, else ``{name: {metric: value}}``.
    """
    single = isinstance(data, TaskData)
    if single:
        name = (
            data.task.name
            if data.task.name in heads
            else (next(iter(heads)) if len(heads) == 1 else None)
        )
        if name is None:
            raise ConfigError(f"no head for task {data.task.name!r}; heads: {', '.join(heads)}")
        data = {name: data}
    model = (
        _Model(loaded.model, {n: heads[n] for n in data}, loaded.n_layers).to(loaded.device).eval()
    )
    amp = _amp_settings(mixed_precision, loaded.device)
    pad_id = loaded.tokenizer.pad_token_id or 0
    out = {}
    for n, d in data.items():
        d = _labelled(d)
        enc = _encode(loaded.tokenizer, d, max_length, _uses_token_types(loaded.model))
        logits = _predict(model, n, enc, pad_id, batch_size, loaded.device, amp)
        out[n] = _score(heads[n].config, d.task, logits, d.labels)
    return out[next(iter(out))] if single else out


def load_finetuned(
    run_dir: str | Path, *, device: str | torch.device = "cpu"
) -> tuple[LoadedModel, dict[str, SelectedDimHead]]:
    """Encoder (``RUN/model``) and heads (``RUN/heads.pt``) of a finished run, in eval mode."""
    run_dir = Path(run_dir)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    loaded = load_encoder(str(run_dir / MODEL_DIR), device=dev)
    return loaded, load_heads(run_dir / HEADS_FILE, device=dev)


def load_heads(
    path: str | Path, *, device: str | torch.device = "cpu"
) -> dict[str, SelectedDimHead]:
    """Heads saved by a run (``heads.pt``): ``{task: head}`` in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no heads file (is this a finished probekit fine-tuning run?)")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    heads = {}
    for name, h in blob["heads"].items():
        head = SelectedDimHead(HeadConfig.from_dict(h["config"]))
        head.load_state_dict(h["state_dict"])
        heads[name] = head.to(device).eval()
    return heads


def save_heads(heads: dict[str, SelectedDimHead], path: Path) -> None:
    blob = {
        "format": 1,
        "heads": {
            n: {
                "config": h.config.to_dict(),
                "state_dict": {k: v.detach().cpu() for k, v in h.state_dict().items()},
            }
            for n, h in heads.items()
        },
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------
# the loop
# ------------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    import transformers

    return {
        "probekit": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
    }


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(type(o).__name__)


def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(
        json.dumps(obj, sort_keys=True, default=_json_default).encode()
    ).hexdigest()[:16]


def _rng_state(device: torch.device) -> dict[str, Any]:
    st: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        st["mps"] = torch.mps.get_rng_state()
    return st


def _set_rng_state(st: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(st["cpu"])
    if device.type == "cuda" and "cuda" in st:
        torch.cuda.set_rng_state(st["cuda"], device)
    elif device.type == "mps" and "mps" in st:
        torch.mps.set_rng_state(st["mps"])


@contextlib.contextmanager
def _kept_rng(device: torch.device) -> Iterator[None]:
    """Restore the caller's random state (CPU and ``device``'s) on exit."""
    state = _rng_state(device)
    try:
        yield
    finally:
        _set_rng_state(state, device)


def run_training(
    config: FinetuneConfig,
    tasks: Sequence[TaskRun],
    *,
    device: str | torch.device,
    out_dir: str | Path,
    model: str | None = None,
    mode: str = "alternate",
    kind: str = "finetune",
    extra_record: dict | None = None,
    resume: bool = True,
    progress: bool = True,
    stop_after_steps: int | None = None,
) -> FinetuneResult:
    """Train one encoder with one head per task (the engine behind every fine-tuning verb).

    Args:
        config: optimisation and head settings (``config.task``/``config.dims`` are not read
            here: each :class:`TaskRun` carries its data and head).
        tasks: the tasks, with unique names; at least one with training data.
        device: where to train (``"cpu"``, ``"cuda"``, a ``torch.device``; ``"auto"`` logs its choice).
        out_dir: the run's directory (created).
        model: encoder to start from (default ``config.model``).
        mode: with several tasks, ``alternate`` (one task's batch per micro-step, round robin)
            or ``mixed`` (one batch of every task per micro-step, losses summed).
        kind: recorded in ``result.json``.
        extra_record: more fields for ``result.json``.
        resume: continue from ``OUT/checkpoint.pt`` when it exists (its settings must match);
            False starts afresh.
        progress: show tqdm bars.
        stop_after_steps: stop after this many optimizer steps in this call, leaving a
            checkpoint to resume from (for time-boxed jobs and tests); the result then has
            ``complete=False`` and no ``model/``.

    Returns:
        A :class:`FinetuneResult`.
    """
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    if mode not in ("alternate", "mixed"):
        raise ConfigError(f"mode must be 'alternate' or 'mixed', got {mode!r}")
    names = [t.name for t in tasks]
    if len(set(names)) != len(names) or not names:
        raise ConfigError(f"task names must be unique and non-empty, got {names}")
    if not any(t.train is not None and t.train_head for t in tasks):
        raise ConfigError("no task has training data")
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    amp = _amp_settings(config.mixed_precision, dev)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_name = model or config.model
    t_start = time.perf_counter()

    train_sets = {t.name: _labelled(t.train) for t in tasks if t.train is not None and t.train_head}
    eval_sets = {t.name: _labelled(t.eval) for t in tasks if t.eval is not None}
    fp = {
        "config": {
            k: v
            for k, v in config.to_dict().items()
            if k not in ("checkpoint_every", "eval_batch_size")
        },
        "model": model_name,
        "mode": mode,
        "precision": str(amp[1]).replace("torch.", "") if amp[0] else "float32",
        "heads": {t.name: t.head.to_dict() for t in tasks},
        "train": {n: d.fingerprint() for n, d in train_sets.items()},
    }
    run_id = _fingerprint(fp)
    ckpt_path = out / CHECKPOINT_FILE
    ckpt = None
    if ckpt_path.is_file():
        if resume:
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
            if ckpt.get("run_id") != run_id:
                old = ckpt.get("fingerprint") or {}
                new = json.loads(json.dumps(fp, default=_json_default))
                diff = _diff_keys(old, new)
                raise ConfigError(
                    f"{ckpt_path}: checkpoint was made with other settings (differs in: {', '.join(diff) or 'unknown'}); "
                    "use another --out directory or start afresh (resume=False / --no-resume)"
                )
            logger.info(
                "resuming %s from epoch %d, step %d", out, ckpt["epoch"], ckpt["global_step"]
            )
        else:
            ckpt_path.unlink()
    if ckpt is None:
        done = _completed_record(out, run_id) if resume else None
        if done is not None:
            logger.info("%s: run already complete (run id %s); returning its result", out, run_id)
            return FinetuneResult(out, done["metrics"], done, True)
        if (out / RESULT_FILE).exists():
            (out / RESULT_FILE).unlink()

    with _kept_rng(dev):
        torch.manual_seed(config.seed)
        loaded = load_encoder(model_name, device=dev)
        tok = loaded.tokenizer
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
        initial_hash = loaded.weights_hash
        freeze_info = apply_freeze(loaded.model, config.freeze)
        encoder_trains = freeze_info["encoder_trainable"] > 0
        heads: dict[str, SelectedDimHead] = {}
        for t in tasks:
            if t.head.input_size != loaded.hidden_size:
                raise ConfigError(
                    f"head {t.name!r}: input size {t.head.input_size} != hidden size "
                    f"{loaded.hidden_size} of {model_name}"
                )
            if not 0 <= t.head.layer < loaded.n_layers:
                raise ConfigError(
                    f"head {t.name!r}: layer {t.head.layer} out of range (model has {loaded.n_layers})"
                )
            h = SelectedDimHead(t.head)
            if t.head_state is not None:
                h.load_state_dict(t.head_state)
            h.requires_grad_(t.train_head)
            heads[t.name] = h
        net = _Model(loaded.model, heads, loaded.n_layers).to(dev)

        # optimizer: AdamW, no decay on 1-d parameters (biases, LayerNorm), separate head lr
        head_lr = config.head_lr or config.lr
        groups = []
        for label, mod, lr in (("encoder", net.encoder, config.lr), ("heads", net.heads, head_lr)):
            ps = [(n, p) for n, p in mod.named_parameters() if p.requires_grad]
            decay = [p for n, p in ps if p.ndim >= 2]
            no_decay = [p for n, p in ps if p.ndim < 2]
            if decay:
                groups.append(
                    {
                        "params": decay,
                        "lr": lr,
                        "weight_decay": config.weight_decay,
                        "name": f"{label}",
                    }
                )
            if no_decay:
                groups.append(
                    {"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": f"{label}_no_decay"}
                )
        trainable = [p for g in groups for p in g["params"]]
        optimizer = torch.optim.AdamW(groups, lr=config.lr)

        types = _uses_token_types(loaded.model)
        encs = {n: _encode(tok, d, config.max_length, types) for n, d in train_sets.items()}
        order = [n for n in names if n in encs]
        sizes = [len(encs[n]) for n in order]
        steps_per_epoch_micro = len(_epoch_schedule(sizes, config.batch_size, config.seed, 0, mode))
        opt_steps_per_epoch = math.ceil(steps_per_epoch_micro / config.grad_accum)
        total_steps = opt_steps_per_epoch * config.epochs
        scheduler = get_linear_schedule_with_warmup(
            optimizer, int(config.warmup_ratio * total_steps), total_steps
        )
        scaler = torch.amp.GradScaler("cuda", enabled=amp[2])
        eval_encs = {n: _encode(tok, d, config.max_length, types) for n, d in eval_sets.items()}

        history: list[dict] = []
        partial0: dict = {}
        start_epoch, start_micro, global_step = 0, 0, 0
        prior_seconds = 0.0
        if ckpt is not None:
            net.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            if ckpt.get("scaler"):  # empty when the scaler was off (CPU, bf16)
                scaler.load_state_dict(ckpt["scaler"])
            history = json.loads(ckpt["history"])
            start_epoch, start_micro, global_step = (
                ckpt["epoch"],
                ckpt["micro"],
                ckpt["global_step"],
            )
            prior_seconds = float(ckpt["seconds"])
            initial_hash = ckpt["initial_hash"]
            partial0 = json.loads(ckpt.get("partial_epoch") or "{}")
            _set_rng_state(ckpt["rng"], dev)

        head_counts = {n: h.parameter_counts() for n, h in heads.items()}
        params = {
            "encoder_total": freeze_info["encoder_total"],
            "encoder_trainable": freeze_info["encoder_trainable"],
            "heads": head_counts,
            "trainable_total": int(sum(p.numel() for p in trainable)),
            "trainable_effective": int(
                freeze_info["encoder_trainable"]
                + sum(
                    c["effective"]
                    for n, c in head_counts.items()
                    if tasks[names.index(n)].train_head
                )
            ),
        }

        def save_checkpoint(
            epoch: int, micro: int, seconds: float, partial: dict | None = None
        ) -> None:
            state = {
                "run_id": run_id,
                "fingerprint": json.loads(json.dumps(fp, default=_json_default)),
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": _rng_state(dev),
                "epoch": epoch,
                "micro": micro,
                "global_step": global_step,
                "history": json.dumps(history, default=_json_default),
                "seconds": seconds,
                "initial_hash": initial_hash,
                "partial_epoch": json.dumps(partial or {}),
            }
            tmp = ckpt_path.with_name(ckpt_path.name + ".tmp")
            torch.save(state, tmp)
            os.replace(tmp, ckpt_path)

        def record(complete: bool, seconds: float) -> dict:
            last = history[-1]["metrics"] if history else {}
            rec = {
                "kind": kind,
                "complete": complete,
                "run_id": run_id,
                "config": config.to_dict(),
                "mode": mode if len(tasks) > 1 else None,
                "heads": {n: h.config.to_dict() for n, h in heads.items()},
                "versions": _versions(),
                "device": str(dev),
                "mixed_precision": (str(amp[1]).replace("torch.", "") if amp[0] else "no"),
                "torch_threads": torch.get_num_threads(),
                "model": {
                    "name": model_name,
                    "path": loaded.path,
                    "n_layers": loaded.n_layers,
                    "hidden_size": loaded.hidden_size,
                    "initial_weights_hash": initial_hash,
                },
                "data": {
                    n: {
                        "task": (train_sets.get(n) or eval_sets[n]).task.name,
                        "train": (
                            {
                                "n": len(train_sets[n]),
                                "source": train_sets[n].source,
                                "fingerprint": train_sets[n].fingerprint(),
                            }
                            if n in train_sets
                            else None
                        ),
                        "eval": (
                            {
                                "n": len(eval_sets[n]),
                                "split": eval_sets[n].split,
                                "source": eval_sets[n].source,
                                "fingerprint": eval_sets[n].fingerprint(),
                            }
                            if n in eval_sets
                            else None
                        ),
                    }
                    for n in names
                },
                "freeze": {k: v for k, v in freeze_info.items() if k != "frozen"},
                "params": params,
                "steps": {
                    "per_epoch": opt_steps_per_epoch,
                    "total": total_steps,
                    "done": global_step,
                },
                "epochs": history,
                "metrics": (last.get(names[0], {}) if len(names) == 1 else last),
                "wall_seconds": seconds,
                "train_examples_per_second": (
                    sum(e.get("train_examples", 0) for e in history)
                    / max(sum(e.get("train_seconds", 0.0) for e in history), 1e-9)
                    if history
                    else None
                ),
                "paths": {
                    "model": MODEL_DIR if complete else None,
                    "heads": HEADS_FILE if complete else None,
                },
            }
            if extra_record:
                rec.update(extra_record)
            return rec

        net.train()
        if not encoder_trains:
            net.encoder.eval()  # frozen encoder: a fixed feature extractor, dropout off
        steps_this_call = 0
        stopped = False
        for epoch in range(start_epoch, config.epochs):
            schedule = _epoch_schedule(sizes, config.batch_size, config.seed, epoch, mode)
            micro0 = start_micro if epoch == start_epoch else 0
            t_ep = time.perf_counter()
            resumed_epoch = epoch == start_epoch and micro0 > 0
            part = partial0 if resumed_epoch else {}
            loss_sum = torch.tensor(
                float(part.get("loss_sum", 0.0)), dtype=torch.float32, device=dev
            )
            n_loss = int(part.get("n_loss", 0))
            n_examples = int(part.get("n_examples", 0))
            train_before = float(part.get("train_seconds", 0.0))
            bar = tqdm(
                total=opt_steps_per_epoch,
                initial=micro0 // config.grad_accum,
                desc=f"epoch {epoch + 1}/{config.epochs}",
                disable=not progress,
                leave=False,
            )
            micro = micro0
            while micro < len(schedule):
                group = schedule[micro : micro + config.grad_accum]
                for step_items in group:
                    with _autocast(dev, amp):
                        loss = torch.zeros((), device=dev)
                        for t_idx, idx in step_items:
                            n = order[t_idx]
                            batch = _collate(encs[n], idx, pad_id, dev)
                            logits = net(batch, [n], encoder_grad=encoder_trains)[n]
                            loss = loss + _loss(heads[n], logits, batch["labels"])
                            n_examples += len(idx)
                    scaler.scale(loss / len(group)).backward()
                    loss_sum += loss.detach().float()
                    n_loss += 1
                if config.max_grad_norm > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                micro += len(group)
                global_step += 1
                steps_this_call += 1
                bar.update(1)
                stop_now = stop_after_steps is not None and steps_this_call >= stop_after_steps
                if micro < len(schedule) and (
                    stop_now
                    or (config.checkpoint_every and global_step % config.checkpoint_every == 0)
                ):
                    save_checkpoint(
                        epoch,
                        micro,
                        prior_seconds + time.perf_counter() - t_start,
                        {
                            "loss_sum": float(loss_sum.item()),
                            "n_loss": n_loss,
                            "n_examples": n_examples,
                            "train_seconds": train_before + time.perf_counter() - t_ep,
                        },
                    )
                    if stop_now:
                        stopped = True
                        break
            bar.close()
            if stopped:
                break
            train_seconds = train_before + time.perf_counter() - t_ep
            # evaluation
            metrics = {}
            net.eval()
            for n, enc in eval_encs.items():
                logits = _predict(net, n, enc, pad_id, config.eval_batch_size, dev, amp)
                metrics[n] = _score(heads[n].config, eval_sets[n].task, logits, eval_sets[n].labels)
            net.train()
            if not encoder_trains:
                net.encoder.eval()
            entry = {
                "epoch": epoch + 1,
                "steps": global_step,
                "train_loss": float(loss_sum.item() / max(n_loss, 1)),
                "train_examples": n_examples,
                "train_seconds": train_seconds,
                "eval_seconds": time.perf_counter() - t_ep - (train_seconds - train_before),
                "metrics": metrics,
            }
            if resumed_epoch:
                entry["resumed_at_step"] = micro0 // config.grad_accum
            history.append(entry)
            logger.info(
                "epoch %d/%d: loss %.4f %s",
                epoch + 1,
                config.epochs,
                entry["train_loss"],
                json.dumps(metrics, default=_json_default),
            )
            seconds = prior_seconds + time.perf_counter() - t_start
            save_checkpoint(epoch + 1, 0, seconds)
            _write_json(out / RESULT_FILE, record(False, seconds))
            if (
                stop_after_steps is not None
                and steps_this_call >= stop_after_steps
                and epoch + 1 < config.epochs
            ):
                stopped = True
                break

        seconds = prior_seconds + time.perf_counter() - t_start
        if stopped:
            rec = record(False, seconds)
            _write_json(out / RESULT_FILE, rec)
            return FinetuneResult(out, rec["metrics"], rec, False)

        # finished: save encoder, tokenizer, heads; drop the checkpoint
        net.eval()
        mdir = out / MODEL_DIR
        loaded.model.save_pretrained(mdir)
        tok.save_pretrained(mdir)
        save_heads(heads, out / HEADS_FILE)
        rec = record(True, seconds)
        rec["final_weights_hash"] = _weights_hash(loaded.model)
        _write_json(out / RESULT_FILE, rec)
        if ckpt_path.exists():
            ckpt_path.unlink()
        return FinetuneResult(out, rec["metrics"], rec, True)


def _completed_record(out: Path, run_id: str) -> dict | None:
    """The ``result.json`` of a finished run with this run id, if all its files are there."""
    try:
        rec = json.loads((out / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        rec.get("complete")
        and rec.get("run_id") == run_id
        and (out / HEADS_FILE).is_file()
        and (out / MODEL_DIR / "config.json").is_file()
    ):
        return rec
    return None


def _diff_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON-like dicts differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new)):
            out += _diff_keys(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]


def _weights_hash(model: nn.Module) -> str:
    from ..models import weights_hash

    return weights_hash(model)


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
        out_dir: writes ``result.json``, ``model/``, ``heads.pt`` (and ``checkpoint.pt`` while running).
        train_data, eval_data: the splits (default: loaded with :func:`load_run_data` from
            ``glue_dir``, the demo task or the hub); ``config.max_*_examples`` apply to them too.
        model: start from this encoder instead of ``config.model`` (e.g. a previous run's ``model/``).
        dims: override ``config.dims``.
        head_state: initial head weights.
        resume, progress, stop_after_steps: see :func:`run_training`.

    Returns:
        :class:`FinetuneResult`; ``result.metrics`` is ``{metric: value}`` on the eval split
        after the last epoch.
    """
    from transformers import AutoConfig

    from ..models import resolve_model_path

    if train_data is None or eval_data is None:
        tr, ev = load_run_data(config, glue_dir=glue_dir)
        train_data = train_data if train_data is not None else tr
        eval_data = eval_data if eval_data is not None else ev
    else:
        train_data = train_data.head(config.max_train_examples)
        eval_data = eval_data.head(config.max_eval_examples)
    task = train_data.task
    mc = AutoConfig.from_pretrained(resolve_model_path(model or config.model))
    head = config.head_config(task, int(mc.hidden_size), int(mc.num_hidden_layers) + 1, dims=dims)
    run = TaskRun(task.name, train_data, eval_data, head, head_state)
    return run_training(
        config,
        [run],
        device=device,
        out_dir=out_dir,
        model=model,
        kind="finetune",
        resume=resume,
        progress=progress,
        stop_after_steps=stop_after_steps,
        extra_record=extra_record,
    )
