"""Selected-dimension classification heads.

A head reads one hidden state of the encoder (``layer``; 0 = embeddings, -1 = last), turns
the token vectors of each example into one vector (``token``), multiplies it by a fixed 0/1
mask so that only the selected dimensions reach the classifier (a DropConnect-style mask
on the columns of the first weight matrix, fixed rather than random), and applies one or
two linear layers.

Because the mask zeroes the unselected inputs, the head's output does not depend on them
and the encoder receives gradient only through the selected dimensions: fine-tuning the
whole encoder "through" two or three dimensions, as in Fukuhata & Kano (2025).

Token choices (``token``):

* ``cls``: the first token (``[CLS]``).
* ``max_norm``: per example, the token vector of largest L2 norm (over all hidden
  dimensions, not only the selected ones) among non-special, non-padding tokens;
  ``include_cls=True`` also lets ``[CLS]`` win.
* ``mean``: mean over non-special, non-padding tokens.
* ``max``: element-wise max over non-special, non-padding tokens.

These match the cache's pooled views (:mod:`probekit.extract`): an example without any
non-special token uses all its real tokens.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..pooling import TOKENS, content_mask, pool

logger = logging.getLogger(__name__)

__all__ = ["ACTIVATIONS", "TOKENS", "HeadConfig", "SelectedDimHead", "parse_dims", "pool_tokens"]

_RANGE = re.compile(r"^(\d+)-(\d+)$")
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


def parse_dims(spec: str | Sequence[int] | None, hidden_size: int) -> tuple[int, ...] | None:
    """Parse a dimension selection.

    Args:
        spec: ``None`` / ``"all"`` (every dimension), a comma-separated string ``"3,17"``
            (ranges ``"0-9"`` allowed), or a sequence of ints. Negative indices count from
            the end.
        hidden_size: width of the hidden state the dimensions index.

    Returns:
        Sorted unique dimension indices, or ``None`` meaning all dimensions.

    Raises:
        ConfigError: non-integers, out-of-range or empty selections (naming the value).
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        s = spec.strip().lower()
        if s == "all":
            return None
        out: list[int] = []
        for part in s.split(","):
            part = part.strip()
            if not part:
                continue
            m = _RANGE.match(part)
            try:
                if m:
                    lo, hi = int(m.group(1)), int(m.group(2))
                    if hi < lo:
                        raise ConfigError(f"dims: range {part!r} is empty")
                    out.extend(range(lo, hi + 1))
                else:
                    out.append(int(part))
            except ValueError:
                raise ConfigError(
                    f"dims: {part!r} is not an integer or range (expected e.g. '3,17' or 'all')"
                ) from None
        values: Sequence[int] = out
    else:
        values = [int(v) for v in spec]
    if not values:
        raise ConfigError("dims: empty selection (use 'all' for every dimension)")
    norm = []
    for v in values:
        w = v + hidden_size if v < 0 else v
        if not 0 <= w < hidden_size:
            raise ConfigError(f"dims: dimension {v} is out of range for hidden size {hidden_size}")
        norm.append(w)
    dims = tuple(sorted(set(norm)))
    if len(dims) == hidden_size:
        return None
    return dims


def pool_tokens(
    hidden: torch.Tensor,
    attention_mask: torch.Tensor,
    special_tokens_mask: torch.Tensor | None,
    token: str,
    *,
    include_cls: bool = False,
) -> torch.Tensor:
    """One vector per example from its token vectors (:func:`probekit.pooling.pool`).

    Args:
        hidden: ``[batch, seq, hidden]`` one layer's hidden states.
        attention_mask: ``[batch, seq]`` 1 for real tokens, 0 for padding.
        special_tokens_mask: ``[batch, seq]`` 1 for special tokens (``[CLS]``, ``[SEP]``,
            padding); None treats every real token as content.
        token: one of :data:`TOKENS`.
        include_cls: for ``max_norm``, let position 0 (``[CLS]``) compete too.

    Returns:
        ``[batch, hidden]``.
    """
    return pool(
        hidden, content_mask(attention_mask, special_tokens_mask), token, include_cls=include_cls
    )[0]


@dataclass
class HeadConfig:
    """Everything that defines a head (saved next to its weights).

    Attributes:
        input_size: hidden size of the encoder.
        num_labels: classes, or 1 for regression.
        dims: selected dimensions (sorted), or None for all.
        layer: hidden state read (0 = embeddings, -1 = last).
        token: one of :data:`TOKENS`.
        include_cls: for ``max_norm``, whether ``[CLS]`` may be chosen.
        n_layers: 1 (linear) or 2 (linear, activation, linear).
        hidden: width of the 2-layer head's middle layer (default: ``input_size``).
        activation: ``tanh``, ``relu`` or ``gelu`` (2-layer heads).
        dropout: dropout on the (masked) head input and, for 2-layer heads, the middle layer.
        is_regression: the task is regression (MSE on one output).
        task: name of the task the head is for.
    """

    input_size: int
    num_labels: int
    dims: tuple[int, ...] | None = None
    layer: int = -1
    token: str = "cls"
    include_cls: bool = False
    n_layers: int = 1
    hidden: int | None = None
    activation: str = "tanh"
    dropout: float = 0.0
    is_regression: bool = False
    task: str = ""

    def __post_init__(self) -> None:
        if self.dims is not None:
            self.dims = parse_dims(list(self.dims), self.input_size)
        if self.token not in TOKENS:
            raise ConfigError(f"token {self.token!r} is not one of {', '.join(TOKENS)}")
        if self.n_layers not in (1, 2):
            raise ConfigError(f"head_layers must be 1 or 2, got {self.n_layers}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"head activation {self.activation!r} is not one of {', '.join(ACTIVATIONS)}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"head dropout must be in [0, 1), got {self.dropout}")
        if self.num_labels < 1:
            raise ConfigError(f"num_labels must be at least 1, got {self.num_labels}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dims"] = None if self.dims is None else list(self.dims)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HeadConfig:
        d = dict(d)
        if d.get("dims") is not None:
            d["dims"] = tuple(int(x) for x in d["dims"])
        return cls(**d)


class SelectedDimHead(nn.Module):
    """A classifier/regressor that sees only ``config.dims`` of its input vector.

    ``mask`` is a registered, non-trainable buffer ``[input_size]`` (1 for selected
    dimensions). ``forward`` takes the pooled vector ``[batch, input_size]`` and returns
    ``[batch, num_labels]``; use :meth:`pool` to get that vector from hidden states.
    """

    mask: torch.Tensor

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        h = config.input_size
        mask = torch.zeros(h)
        if config.dims is None:
            mask[:] = 1.0
        else:
            mask[list(config.dims)] = 1.0
        self.register_buffer("mask", mask)
        self.dropout = nn.Dropout(config.dropout)
        if config.n_layers == 1:
            self.dense = None
            self.act = None
            self.out = nn.Linear(h, config.num_labels)
        else:
            mid = config.hidden or h
            self.dense = nn.Linear(h, mid)
            self.act = ACTIVATIONS[config.activation]()
            self.out = nn.Linear(mid, config.num_labels)

    @property
    def n_selected(self) -> int:
        return self.config.input_size if self.config.dims is None else len(self.config.dims)

    def pool(
        self,
        hidden_states: Sequence[torch.Tensor],
        attention_mask: torch.Tensor,
        special_tokens_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """``[batch, input_size]`` from the encoder's hidden states (tuple of ``[batch, seq, hidden]``)."""
        return pool_tokens(
            hidden_states[self.config.layer],
            attention_mask,
            special_tokens_mask,
            self.config.token,
            include_cls=self.config.include_cls,
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features [batch, input_size]`` -> logits ``[batch, num_labels]`` (scores for regression)."""
        x = self.dropout(features * self.mask.to(features.dtype))
        if self.dense is not None:
            x = self.dropout(self.act(self.dense(x)))
        return self.out(x)

    def parameter_counts(self) -> dict[str, int]:
        """Nominal trainable parameters, and the effective ones (weights that can reach the output)."""
        nominal = sum(p.numel() for p in self.parameters() if p.requires_grad)
        k = self.n_selected
        if self.dense is None:
            effective = k * self.out.out_features + self.out.out_features
        else:
            mid = self.dense.out_features
            effective = k * mid + mid + mid * self.out.out_features + self.out.out_features
        return {"nominal": int(nominal), "effective": int(effective), "selected_dims": int(k)}
