"""One batch through the encoder: every hidden state, the pooled views, and the window
buffers they are written into (used by :mod:`probekit.extract`, and by tests that check
fine-tuning heads against the cache's vectors)."""

from __future__ import annotations

import numpy as np
import torch

from .cache import POOLS
from .models import LoadedModel
from .pooling import content_mask, pool
from .tokenize import MODEL_INPUTS, Encoded, collate, pad_id, uses_token_types

__all__ = [
    "STORAGE_DTYPES",
    "buffers",
    "fill_batch",
    "forward_batch",
    "pool_batch",
    "process_batch",
]

#: storage dtype name -> torch dtype
STORAGE_DTYPES = {"float16": torch.float16, "float32": torch.float32}


def forward_batch(
    lm: LoadedModel, enc: Encoded, rows: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One padded forward pass over examples ``rows`` (:func:`probekit.tokenize.collate`).

    Returns:
        hidden: ``[b, t, n_layers, hidden]`` every hidden state (embeddings first), model dtype.
        attention_mask: ``[b, t]`` bool.
        content_mask: ``[b, t]`` bool, real non-special tokens (all real tokens for an
            example that has none).
    """
    batch = collate(
        enc,
        rows,
        pad_id=pad_id(lm.tokenizer),
        token_types=uses_token_types(lm.model),
        device=lm.device,
    )
    inputs = {k: batch[k] for k in MODEL_INPUTS if k in batch}
    out = lm.model(**inputs, output_hidden_states=True, return_dict=True)
    hidden = torch.stack(out.hidden_states, dim=2)
    att = batch["attention_mask"].bool()
    return hidden, att, content_mask(att, batch["special_tokens_mask"])


def pool_batch(
    hidden: torch.Tensor, content: torch.Tensor
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Pooled views of a batch (:mod:`probekit.pooling`), computed in float32.

    Args:
        hidden: ``[b, t, n_layers, H]``.
        content: ``[b, t]`` bool mask of the tokens that ``mean`` and ``max_norm`` use.

    Returns:
        ``({"cls", "mean", "max_norm"} -> [b, n_layers, H], max_norm_pos [b, n_layers])``.
    """
    h = hidden.float()
    out = {p: pool(h, content, p)[0] for p in ("cls", "mean")}
    out["max_norm"], pos = pool(h, content, "max_norm")
    assert pos is not None  # max_norm gives the chosen positions
    return out, pos


def buffers(
    n: int, n_tok: int | None, lm: LoadedModel, dt: torch.dtype, device: torch.device, pinned=False
) -> dict[str, torch.Tensor]:
    """Uninitialised buffers of one window on ``device`` (``pinned``: page-locked host
    memory, the target of non-blocking copies from CUDA): each pool ``[n, L, H]``, ``pos
    [n, L]`` int16 and, unless ``n_tok`` is None, ``hidden [n_tok, L, H]``."""
    L, H, kw = lm.n_layers, lm.hidden_size, {"device": device, "pin_memory": pinned}
    out = {p: torch.empty((n, L, H), dtype=dt, **kw) for p in POOLS}
    out["pos"] = torch.empty((n, L), dtype=torch.int16, **kw)
    if n_tok is not None:
        out["hidden"] = torch.empty((n_tok, L, H), dtype=dt, **kw)
    return out


@torch.inference_mode()
def fill_batch(
    lm: LoadedModel,
    enc: Encoded,
    rows: np.ndarray,
    sdt: torch.dtype,
    out: dict[str, torch.Tensor],
    local: np.ndarray,
    token_at: np.ndarray,
) -> None:
    """Forward pass and pooling of examples ``rows`` into ``out`` (on the model's device):
    example ``rows[j]`` goes to row ``local[j]`` of the pooled views and its token vectors to
    rows ``token_at[j]:`` of ``out["hidden"]``, cast and copied straight from the forward pass
    (buffers of :func:`buffers`)."""
    hidden, _, content = forward_batch(lm, enc, rows)
    pools, pos = pool_batch(hidden, content)
    idx = torch.from_numpy(local).to(out["pos"].device)
    for p in POOLS:
        out[p][idx] = pools[p].to(sdt)
    out["pos"][idx] = pos.to(torch.int16)
    if "hidden" in out:
        # padding is on the right, so example j's tokens are hidden[j, :lengths[j]]
        src = hidden.to(sdt)  # one multi-threaded cast
        for j, (n_j, at) in enumerate(zip(enc.lengths[rows].tolist(), token_at.tolist())):
            out["hidden"][at : at + n_j].copy_(src[j, :n_j])


def process_batch(
    lm: LoadedModel, enc: Encoded, rows: np.ndarray, storage_dtype: str
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Forward pass and pooling of examples ``rows``, as NumPy arrays in the storage dtype.

    Returns:
        ``(pooled {pool: [b, n_layers, H]}, max_norm_pos [b, n_layers] int16)``.
    """
    b, sdt = len(rows), STORAGE_DTYPES[storage_dtype]
    buf = buffers(b, None, lm, sdt, lm.device)
    fill_batch(lm, enc, rows, sdt, buf, np.arange(b), np.zeros(b, dtype=np.int64))
    return {p: buf[p].cpu().numpy() for p in POOLS}, buf["pos"].cpu().numpy()
