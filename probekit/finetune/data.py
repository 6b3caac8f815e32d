"""The examples of a fine-tuning run: loading, dropping unlabelled rows, encoding, the order
of each epoch's batches, and turning example indices into a labelled batch.

Tokenising and padding are :mod:`probekit.tokenize`'s (the rules the extraction uses), so a
head sees the tensors the cache's pooled views were computed from.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..tasks import TaskData, load_task
from ..tokenize import Encoded, collate, encode
from .config import FinetuneConfig

logger = logging.getLogger(__name__)

__all__ = [
    "EncodedSplit",
    "encode_split",
    "epoch_schedule",
    "labelled",
    "limited",
    "load_run_data",
    "make_batch",
]


@dataclass
class EncodedSplit:
    """A split's tokenised examples and their labels ``[n_examples]``."""

    enc: Encoded
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.enc)


def labelled(data: TaskData) -> TaskData:
    """``data`` without its unlabelled rows (-1 classes, NaN scores).

    Raises:
        DataError: no row is labelled.
    """
    keep = ~np.isnan(data.labels) if data.task.regression else data.labels >= 0
    if keep.all():
        return data
    if not keep.any():
        raise DataError(f"{data.source}: split {data.split!r} has no labelled examples")
    logger.info("%s: dropping %d unlabelled rows", data.source, int((~keep).sum()))
    return data.subset(np.flatnonzero(keep))


def encode_split(tokenizer: Any, data: TaskData, max_length: int) -> EncodedSplit:
    """Tokenise ``data`` (:func:`probekit.tokenize.encode`) and keep its labels."""
    return EncodedSplit(
        encode(tokenizer, data, max_length, positions=False), np.asarray(data.labels)
    )


def make_batch(
    split: EncodedSplit,
    idx: np.ndarray,
    *,
    pad_id: int,
    token_types: bool,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """Examples ``idx`` as a :func:`probekit.tokenize.collate` batch plus ``labels [batch]``."""
    batch = collate(split.enc, idx, pad_id=pad_id, token_types=token_types, device="cpu")
    batch["labels"] = torch.from_numpy(split.labels[idx])
    # non_blocking only on CUDA, where a copy from pageable memory is staged before returning
    return {k: v.to(device, non_blocking=device.type == "cuda") for k, v in batch.items()}


def epoch_schedule(
    sizes: Sequence[int], batch_size: int, seed: int, epoch: int, mode: str
) -> list[list[tuple[int, np.ndarray]]]:
    """Micro-steps of one epoch: each a list of ``(task index, example indices)``.

    Each task's examples are shuffled with ``numpy.random.default_rng([seed, epoch, task])``
    and cut into batches; ``mixed`` puts one batch of every task in each micro-step,
    ``alternate`` (and a single task) one batch per micro-step, round robin.
    """
    per_task: list[list[np.ndarray]] = []
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
        else:
            steps.extend([r] for r in row)
    return steps


def limited(config: FinetuneConfig, train: TaskData, ev: TaskData) -> tuple[TaskData, TaskData]:
    """``train`` and ``ev`` cut to the config's ``limit`` and ``eval_limit``."""
    return train.head(config.limit), ev.head(config.eval_limit)


def load_run_data(
    config: FinetuneConfig,
    *,
    glue_dir: str | Path | None = None,
    task: str | None = None,
    hub: bool = True,
) -> tuple[TaskData, TaskData]:
    """Train and eval splits of ``task`` (default ``config.task``) with the config's limits."""
    name = task or config.task
    train = load_task(name, "train", glue_dir=glue_dir, limit=config.limit, hub=hub)
    ev = load_task(name, config.eval_split, glue_dir=glue_dir, limit=config.eval_limit, hub=hub)
    return train, ev
