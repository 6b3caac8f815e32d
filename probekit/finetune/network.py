"""The trained network (an encoder with one selected-dimension head per task), its losses,
and mixed precision: what one forward pass of a fine-tuning run is."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import torch
from torch import nn

from ..errors import ConfigError
from ..tokenize import MODEL_INPUTS
from .heads import SelectedDimHead

__all__ = ["EncoderWithHeads", "Precision", "autocast", "head_loss", "precision_settings"]


class EncoderWithHeads(nn.Module):
    """Encoder plus one head per task (an ``nn.ModuleDict``)."""

    def __init__(
        self, encoder: nn.Module, heads: dict[str, SelectedDimHead], n_layers: int
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)
        self.n_layers = n_layers

    def head(self, name: str) -> SelectedDimHead:
        """The head of task ``name``."""
        return cast(SelectedDimHead, self.heads[name])

    def features(
        self, batch: dict[str, torch.Tensor], names: Sequence[str], *, encoder_grad: bool = True
    ) -> dict[str, torch.Tensor]:
        """Pooled head inputs ``{name: [batch, hidden]}`` of one encoder pass."""
        layers = {self.head(n).config.layer for n in names}
        need_all = any(layer != self.n_layers - 1 for layer in layers)
        inputs = {k: batch[k] for k in MODEL_INPUTS if k in batch}
        with torch.set_grad_enabled(encoder_grad and torch.is_grad_enabled()):
            out = self.encoder(**inputs, output_hidden_states=need_all, return_dict=True)
        hs = out.hidden_states if need_all else {self.n_layers - 1: out.last_hidden_state}
        return {
            n: self.head(n).pool(hs, batch["attention_mask"], batch["special_tokens_mask"])
            for n in names
        }

    def forward(
        self, batch: dict[str, torch.Tensor], names: Sequence[str], *, encoder_grad: bool = True
    ) -> dict[str, torch.Tensor]:
        """Logits ``{name: [batch, num_labels]}``."""
        feats = self.features(batch, names, encoder_grad=encoder_grad)
        return {n: self.head(n)(feats[n]) for n in names}


def head_loss(head: SelectedDimHead, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy, or for regression heads the mean squared error of the one output in
    standardised units (over ``head.target_std**2``: 1 is the training mean's loss); float32."""
    if head.config.regression:
        std = head.target_std.float()
        return nn.functional.mse_loss(logits.float().squeeze(-1) / std, labels.float() / std)
    return nn.functional.cross_entropy(logits.float(), labels.long())


class Precision(NamedTuple):
    """Mixed precision of a run: autocast on, its dtype, and whether a gradient scaler runs."""

    enabled: bool
    dtype: torch.dtype | None
    scaler: bool

    @property
    def name(self) -> str | None:
        """``bfloat16`` / ``float16`` when on, else None."""
        return str(self.dtype).replace("torch.", "") if self.enabled else None


def precision_settings(mode: str, device: torch.device) -> Precision:
    """What ``mixed_precision=mode`` means on ``device``.

    ``auto`` is off except on CUDA, where it is bf16 from Ampere (compute capability 8) on
    and fp16 with loss scaling on older cards.

    Raises:
        ConfigError: ``bf16`` or ``fp16`` asked for off CUDA.
    """
    if mode == "no":
        return Precision(False, None, False)
    if device.type != "cuda":
        if mode == "auto":
            return Precision(False, None, False)
        raise ConfigError(f"mixed_precision={mode!r} needs a CUDA device (device is {device})")
    if mode == "auto":
        mode = "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp16"
    if mode == "bf16":
        return Precision(True, torch.bfloat16, False)
    return Precision(True, torch.float16, True)


def autocast(device: torch.device, precision: Precision) -> Any:
    """Autocast when mixed precision is on; otherwise no context at all (some torch versions
    reject ``torch.autocast(device_type="mps", enabled=False)``)."""
    if not precision.enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=precision.dtype)
