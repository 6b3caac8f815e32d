"""Scoring heads: predictions over a split, their GLUE metrics, and reading a finished run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from ..metrics import compute_metrics
from ..models import LoadedModel, load_encoder, resolve_device
from ..tasks import TaskData, TaskSpec
from ..tokenize import pad_id, uses_token_types
from .config import HEADS_FILE, MODEL_DIR
from .data import EncodedSplit, encode_split, labelled, make_batch
from .heads import HeadConfig, SelectedDimHead, load_heads
from .network import EncoderWithHeads, Precision, autocast, precision_settings

__all__ = ["evaluate", "load_finetuned", "predict", "score"]


@torch.no_grad()
def predict(
    net: EncoderWithHeads,
    name: str,
    split: EncodedSplit,
    *,
    pad: int,
    token_types: bool,
    batch_size: int,
    device: torch.device,
    precision: Precision,
) -> np.ndarray:
    """``[n_examples, num_labels]`` float32 outputs of head ``name`` (length-sorted batches)."""
    order = np.argsort(split.enc.lengths, kind="stable")
    outs = np.empty((len(split), int(net.head(name).config.num_labels or 1)), dtype=np.float32)
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        batch = make_batch(split, idx, pad_id=pad, token_types=token_types, device=device)
        with autocast(device, precision):
            logits = net(batch, [name])[name]
        outs[idx] = logits.float().cpu().numpy()
    return outs


def score(
    head: HeadConfig, task: TaskSpec, logits: np.ndarray, labels: np.ndarray
) -> dict[str, float]:
    """The task's metrics of ``logits [n_examples, num_labels]`` against ``labels``."""
    pred = logits[:, 0] if head.regression else logits.argmax(1)
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
    if isinstance(data, TaskData):
        name = data.task.name if data.task.name in heads else None
        if name is None and len(heads) == 1:
            name = next(iter(heads))
        if name is None:
            raise ConfigError(f"no head for task {data.task.name!r}; heads: {', '.join(heads)}")
        splits = {name: data}
    else:
        splits = dict(data)
    net = EncoderWithHeads(loaded.model, {n: heads[n] for n in splits}, loaded.n_layers)
    net = net.to(loaded.device).eval()
    precision = precision_settings(mixed_precision, loaded.device)
    types = uses_token_types(loaded.model)
    out = {}
    for n, d in splits.items():
        d = labelled(d)
        split = encode_split(loaded.tokenizer, d, max_length)
        logits = predict(
            net,
            n,
            split,
            pad=pad_id(loaded.tokenizer),
            token_types=types,
            batch_size=batch_size,
            device=loaded.device,
            precision=precision,
        )
        out[n] = score(heads[n].config, d.task, logits, d.labels)
    return out[next(iter(out))] if single else out


def load_finetuned(
    run_dir: str | Path, *, device: str | torch.device = "cpu"
) -> tuple[LoadedModel, dict[str, SelectedDimHead]]:
    """Encoder (``RUN/model``) and heads (``RUN/heads.pt``) of a finished run, in eval mode."""
    run_dir = Path(run_dir)
    dev = resolve_device(device)
    loaded = load_encoder(str(run_dir / MODEL_DIR), device=dev)
    return loaded, load_heads(run_dir / HEADS_FILE, device=dev)
