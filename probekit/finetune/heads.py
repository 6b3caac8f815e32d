"""Selected-dimension classification heads and their file (``heads.pt``).

A head reads one hidden state of the encoder (``layer``; 0 = embeddings, -1 = last), turns
the token vectors of each example into one vector (``pool``), multiplies it by a fixed 0/1
mask so that only the selected dimensions reach the classifier (a DropConnect-style mask
on the columns of the first weight matrix, fixed rather than random), and applies one or
two linear layers. Its settings, :class:`HeadConfig`, live in :mod:`.head_config` (no
torch) and stay importable from here.

Because the mask zeroes the unselected inputs, the head's output does not depend on them
and the encoder receives gradient only through the selected dimensions: fine-tuning the
whole encoder "through" two or three dimensions, as in Fukuhata & Kano (2025).

Pooling choices (``pool``, :mod:`probekit.pooling`, the same definitions as the cache's
pooled views): ``cls`` (the first token), ``max_norm`` (per example, the token of largest
L2 norm over all hidden dimensions among non-special, non-padding tokens;
``include_cls=True`` also lets ``[CLS]`` win), ``mean`` and ``max`` (element-wise) over
non-special, non-padding tokens. An example without any non-special token uses all its
real tokens.

Regression heads predict in the targets' units but learn on standardised targets: a run
sets the head's ``target_mean`` and ``target_std`` buffers from its training labels
(:meth:`SelectedDimHead.standardize_targets`), ``forward`` returns ``out(x) * std + mean``
and the loss is the squared error over ``std**2`` (:func:`~.network.head_loss`). A head
of few dimensions then starts at the training mean and its output layer learns unit-scale
values; otherwise Adam, moving the bias about one learning rate per step, would need
thousands of steps at ``head_lr`` 1e-3 just to reach a target mean of 2 or 3. Heads saved
without these buffers (probekit 0.1) load with mean 0 and std 1, how they were trained.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._io import atomic_path
from ..dims import head_dims
from ..errors import ConfigError
from ..pooling import content_mask, pool
from .head_config import POOLS, TOKENS, HeadConfig

logger = logging.getLogger(__name__)

__all__ = [
    "ACTIVATIONS",
    "POOLS",
    "TOKENS",
    "HeadConfig",
    "SelectedDimHead",
    "load_heads",
    "parse_dims",
    "pool_tokens",
    "save_heads",
]

#: the module of each activation a 2-layer head can use (the names: ``ACTIVATION_NAMES``)
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}

#: a head's dimension selection (:func:`probekit.dims.head_dims`): sorted, None for all.
#: The old name of :func:`probekit.dims.head_dims`, kept importable from here.
parse_dims = head_dims


def pool_tokens(
    hidden: torch.Tensor,
    attention_mask: torch.Tensor,
    special_tokens_mask: torch.Tensor | None,
    pool_name: str,
    *,
    include_cls: bool = False,
) -> torch.Tensor:
    """One vector per example from its token vectors (:func:`probekit.pooling.pool`).

    Args:
        hidden: ``[batch, seq, hidden]`` one layer's hidden states.
        attention_mask: ``[batch, seq]`` 1 for real tokens, 0 for padding.
        special_tokens_mask: ``[batch, seq]`` 1 for special tokens (``[CLS]``, ``[SEP]``,
            padding); None treats every real token as content.
        pool_name: one of :data:`POOLS`.
        include_cls: for ``max_norm``, let position 0 (``[CLS]``) compete too.

    Returns:
        ``[batch, hidden]``.
    """
    mask = content_mask(attention_mask, special_tokens_mask)
    return pool(hidden, mask, pool_name, include_cls=include_cls)[0]


#: the buffers of a regression head and their values in heads saved without them
_TARGET_BUFFERS = {"target_mean": 0.0, "target_std": 1.0}


def _fill_target_buffers(module: nn.Module, state_dict: dict, prefix: str, *args: Any) -> None:
    """Load-state-dict pre-hook: a regression head's state without ``target_mean`` and
    ``target_std`` (saved before they existed) gets 0 and 1, the scale it was trained on."""
    for name, value in _TARGET_BUFFERS.items():
        if prefix + name not in state_dict:
            state_dict[prefix + name] = torch.full_like(getattr(module, name), value)


class SelectedDimHead(nn.Module):
    """A classifier/regressor that sees only ``config.dims`` of its input vector.

    ``mask`` is a registered, non-trainable buffer ``[input_size]`` (1 for selected
    dimensions). ``forward`` takes the pooled vector ``[batch, input_size]`` and returns
    ``[batch, num_labels]``; use :meth:`pool` to get that vector from hidden states.
    Regression heads also hold ``target_mean`` and ``target_std`` ``[1]`` (buffers, saved
    in ``heads.pt``): ``forward`` returns ``out(x) * target_std + target_mean``, in the
    targets' units (see the module docstring).
    """

    mask: torch.Tensor
    target_mean: torch.Tensor
    target_std: torch.Tensor

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        if not config.bound:
            raise ConfigError("a head needs input_size and num_labels (HeadConfig.bind)")
        self.config = config
        h = int(config.input_size)  # type: ignore[arg-type]
        n_out = int(config.num_labels)  # type: ignore[arg-type]
        mask = torch.zeros(h)
        if config.dims is None:
            mask[:] = 1.0
        else:
            mask[list(config.dims)] = 1.0
        self.register_buffer("mask", mask)
        self.dropout = nn.Dropout(config.dropout)
        if config.head_layers == 1:
            self.dense = None
            self.act = None
            self.out = nn.Linear(h, n_out)
        else:
            mid = config.hidden or h
            self.dense = nn.Linear(h, mid)
            self.act = ACTIVATIONS[config.activation]()
            self.out = nn.Linear(mid, n_out)
        if config.regression:
            for name, value in _TARGET_BUFFERS.items():
                self.register_buffer(name, torch.full((n_out,), value))
            self.register_load_state_dict_pre_hook(_fill_target_buffers)

    def standardize_targets(self, labels: np.ndarray) -> tuple[float, float]:
        """Set ``target_mean``/``target_std`` to the mean and standard deviation of the
        training ``labels [n_examples]`` (a std below 1e-6 becomes 1); returns them.

        Raises:
            ConfigError: the head is not a regression head, or ``labels`` is empty.
        """
        if not self.config.regression:
            raise ConfigError(f"head {self.config.task!r} is not a regression head")
        y = np.asarray(labels, dtype=np.float64)
        if y.size == 0:
            raise ConfigError("no training labels to standardise the targets with")
        mean, std = float(y.mean()), float(y.std())
        std = std if std >= 1e-6 else 1.0
        self.target_mean.fill_(mean)
        self.target_std.fill_(std)
        return mean, std

    @property
    def n_selected(self) -> int:
        return len(self.mask) if self.config.dims is None else len(self.config.dims)

    def pool(
        self,
        hidden_states: Sequence[torch.Tensor] | Mapping[int, torch.Tensor],
        attention_mask: torch.Tensor,
        special_tokens_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """``[batch, input_size]`` from the hidden states (each ``[batch, seq, hidden]``),
        indexed by layer (a sequence of all of them, or a mapping holding the head's)."""
        return pool_tokens(
            hidden_states[self.config.layer],
            attention_mask,
            special_tokens_mask,
            self.config.pool,
            include_cls=self.config.include_cls,
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features [batch, input_size]`` -> logits ``[batch, num_labels]`` (or scores)."""
        x = self.dropout(features * self.mask.to(features.dtype))
        if self.dense is not None and self.act is not None:
            x = self.dropout(self.act(self.dense(x)))
        y = self.out(x)
        if self.config.regression:
            return y * self.target_std.to(y.dtype) + self.target_mean.to(y.dtype)
        return y

    def parameter_counts(self) -> dict[str, int]:
        """Nominal trainable parameters, and the effective ones (weights that reach the output)."""
        nominal = sum(p.numel() for p in self.parameters() if p.requires_grad)
        k = self.n_selected
        if self.dense is None:
            effective = k * self.out.out_features + self.out.out_features
        else:
            mid = self.dense.out_features
            effective = k * mid + mid + mid * self.out.out_features + self.out.out_features
        return {"nominal": int(nominal), "effective": int(effective), "selected_dims": int(k)}


def save_heads(heads: dict[str, SelectedDimHead], path: str | Path) -> None:
    """Write ``{task: head}`` configs and weights to ``path`` (``heads.pt``) atomically."""
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
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


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
