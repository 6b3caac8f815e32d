"""How one vector per example is made from its token vectors: the single definition shared
by the cache's pooled views (:mod:`probekit.extract`) and the fine-tuning heads
(:mod:`probekit.finetune.heads`), so a head's ``max_norm`` is the cache's ``max_norm``.

* ``cls``: the first token.
* ``mean``: mean over content tokens.
* ``max``: element-wise max over content tokens.
* ``max_norm``: the content token of largest L2 norm (over all hidden dimensions); norms
  within :data:`MAX_NORM_TIE` (relative) of the largest count as tied, and the earliest
  of the tied tokens is taken. Exact and rounding-level ties then give the same token
  whatever the batching or CPU (a freshly initialised LayerNorm gives every token the same
  norm up to rounding: there it is the first content token, not whichever rounding
  favours); a gap near the tolerance itself can still fall either way, as a gap near 0
  could before.

Content tokens are the real (non-padding), non-special tokens; an example that has none
uses all its real tokens.

The names of the poolings need no torch (the command line's help lists them), so torch is
imported by the functions that compute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["MAX_NORM_TIE", "POOLINGS", "TOKENS", "content_mask", "pool"]

#: every pooling :func:`pool` knows (the cache stores ``cls``, ``mean`` and ``max_norm``)
POOLINGS = ("cls", "max_norm", "mean", "max")
#: deprecated name of :data:`POOLINGS`
TOKENS = POOLINGS
#: ``max_norm``: token norms within this fraction of the largest are tied (the earliest wins);
#: float32 forward passes of the same example in other batches differ by up to ~1e-6
#: relative (MiniLM, SST-2 dev, batches of 8 against 32: 77% of vectors bit for bit, the
#: rest within 1.4e-6), ten times below it
MAX_NORM_TIE = 1e-5


def content_mask(
    attention_mask: torch.Tensor, special_tokens_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``[batch, seq]`` bool: real, non-special tokens (all real tokens where none is left).

    Args:
        attention_mask: ``[batch, seq]``, nonzero for real tokens.
        special_tokens_mask: ``[batch, seq]``, nonzero for special tokens; None = no specials.
    """
    import torch

    real = attention_mask.to(torch.bool)
    if special_tokens_mask is None:
        return real
    content = real & ~special_tokens_mask.to(torch.bool)
    return torch.where(content.any(1, keepdim=True), content, real)


def pool(
    hidden: torch.Tensor, content: torch.Tensor, pool_name: str, *, include_cls: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One vector per example (and per any middle axis, e.g. layers).

    Args:
        hidden: ``[batch, seq, *rest, H]`` (``rest`` may be empty or ``[n_layers]``).
        content: ``[batch, seq]`` bool from :func:`content_mask`.
        pool_name: one of :data:`POOLINGS`.
        include_cls: for ``max_norm``, let position 0 (``[CLS]``) compete too.

    Returns:
        ``(vectors [batch, *rest, H], positions [batch, *rest] or None)``: positions of the
        chosen tokens for ``max_norm``, None otherwise. Gradients flow to ``hidden``.
    """
    import torch

    w = content.reshape(content.shape + (1,) * (hidden.dim() - 2))  # [batch, seq, 1...]
    if pool_name == "cls":
        return hidden[:, 0], None
    if pool_name == "mean":  # a contraction over seq: no [batch, seq, ..., H] temporary
        return torch.einsum("bs,bs...->b...", content.to(hidden.dtype), hidden) / w.sum(
            1
        ).clamp_min(1), None
    if pool_name == "max":
        return hidden.masked_fill(~w, torch.finfo(hidden.dtype).min).amax(1), None
    if pool_name == "max_norm":
        ok = w[..., 0]  # [batch, seq, 1...] without the hidden axis
        if include_cls:
            ok = ok.clone()
            ok[:, 0] = True
        norms = torch.linalg.vector_norm(hidden.detach().float(), dim=-1).masked_fill(
            ~ok, float("-inf")
        )
        top = norms.amax(1, keepdim=True)
        # (an infinite top ties with itself; a NaN norm wins, as argmax would, so that a
        # broken forward pass shows instead of a finite vector from a token not allowed)
        tied = (norms >= top - MAX_NORM_TIE * top.abs()) | (norms == top) | norms.isnan()
        pos = tied.float().argmax(1)  # [batch, *rest]: the first of the tied
        idx = (
            pos.unsqueeze(1)
            .unsqueeze(-1)
            .expand(*pos.shape[:1], 1, *pos.shape[1:], hidden.shape[-1])
        )
        return hidden.gather(1, idx).squeeze(1), pos
    raise ConfigError(f"pool {pool_name!r} is not one of {', '.join(POOLINGS)}")
