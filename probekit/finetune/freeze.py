"""Which pre-trained weights a fine-tuning run leaves fixed (``--freeze``).

``none`` trains everything, ``embeddings`` freezes the embedding parameters, ``encoder``
freezes every pre-trained weight, ``bottom-K`` freezes the embeddings and transformer blocks
``0..K-1``. The pooler (unused by probekit heads) is always frozen. Parameters are matched
by name (``embeddings.*``, ``*.layer.N.*``), which covers BERT, RoBERTa, ELECTRA, DeBERTa
and DistilBERT.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["apply_freeze", "parse_freeze"]

_BLOCK_RE = re.compile(r"(?:^|\.)(?:layer|layers|block|blocks)\.(\d+)\.")


def parse_freeze(spec: str) -> tuple[str, int]:
    """``spec`` as ``(kind, K)``: ``("none"|"embeddings"|"encoder", 0)`` or ``("bottom", K)``.

    Raises:
        ConfigError: anything else, naming the accepted forms.
    """
    s = str(spec).strip().lower()
    if s in ("none", "embeddings", "encoder"):
        return s, 0
    m = re.fullmatch(r"bottom-(\d+)", s)
    if m:
        return "bottom", int(m.group(1))
    raise ConfigError(
        f"freeze {spec!r} is not one of none, embeddings, encoder, bottom-K (e.g. bottom-3)"
    )


def _frozen(name: str, kind: str, k: int) -> bool:
    if kind == "encoder" or name.startswith("pooler."):
        return True
    is_emb = name.startswith("embeddings.") or ".embeddings." in name
    if kind == "embeddings":
        return is_emb
    if kind == "bottom":
        m = _BLOCK_RE.search(name)
        return is_emb or (m is not None and int(m.group(1)) < k)
    return False


def apply_freeze(model: nn.Module, spec: str) -> dict[str, Any]:
    """Set ``requires_grad`` of the encoder's parameters according to ``spec``.

    Returns:
        ``{"spec", "frozen": [names], "encoder_total", "encoder_trainable"}``.

    Raises:
        ConfigError: an unknown spec, or K larger than the number of blocks.
    """
    kind, k = parse_freeze(spec)
    names = [n for n, _ in model.named_parameters()]
    blocks = {int(m.group(1)) for n in names if (m := _BLOCK_RE.search(n))}
    if kind == "bottom" and k > len(blocks):
        raise ConfigError(f"freeze bottom-{k}: the model has only {len(blocks)} transformer blocks")
    frozen = []
    for n, p in model.named_parameters():
        f = _frozen(n, kind, k)
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
