"""Tokenising examples and padding them into batches: the one rule set of probekit.

Extraction (:mod:`probekit.extract`) and fine-tuning (:mod:`probekit.finetune`) both encode
with :func:`encode` and pad with :func:`collate`, so a fine-tuning head's ``max_norm`` (or any
pooling) sees exactly the tensors the cache's pooled views were computed from. The rules:

* pairs are encoded as pairs; examples longer than ``max_length`` tokens are truncated (the
  tokenizer's ``longest_first``) and counted;
* padding is on the right with the tokenizer's pad id (0 when it has none);
* ``attention_mask`` is 1 on real tokens; ``special_tokens_mask`` is 1 on special tokens and
  on padding;
* token type (segment) ids are fed only to models with more than one segment embedding
  (:func:`uses_token_types`: BERT yes, RoBERTa no), padded with 0.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .errors import ConfigError
from .tasks import TaskData

logger = logging.getLogger(__name__)

__all__ = ["MODEL_INPUTS", "Encoded", "collate", "encode", "pad_id", "uses_token_types"]

#: the keys of a :func:`collate` batch that the encoder's ``forward`` takes
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class Encoded:
    """Tokenised examples (ragged lists, one entry per example).

    Attributes:
        input_ids: token ids of each example.
        token_type_ids: segment ids of each example (None when the tokenizer has none).
        special_tokens_mask: 1 for special tokens (``[CLS]``, ``[SEP]``) of each example.
        word_ids: word index of each token (-1 for special tokens); None when not asked for.
        sequence_ids: 0 / 1 for the first / second text of a pair, -1 for special tokens;
            None when not asked for.
        lengths: ``[n_examples]`` int32 tokens per example.
        n_truncated: examples cut to ``max_length``.
    """

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    special_tokens_mask: list[list[int]]
    word_ids: list[list[int]] | None
    sequence_ids: list[list[int]] | None
    lengths: np.ndarray
    n_truncated: int

    def __len__(self) -> int:
        return len(self.input_ids)

    def flat(self, name: str, dtype: Any) -> np.ndarray:
        """``[n_tokens]`` the field ``name`` of every example, concatenated in order."""
        seqs = getattr(self, name)
        return np.fromiter((v for s in seqs for v in s), dtype=dtype, count=int(self.lengths.sum()))


def _positions(enc: Any, n: int, which: str) -> list[list[int]]:
    return [[-1 if v is None else v for v in getattr(enc, which)(i)] for i in range(n)]


def encode(tokenizer: Any, data: TaskData, max_length: int, *, positions: bool = True) -> Encoded:
    """Tokenise every example of ``data`` (pairs as pairs), truncating to ``max_length``.

    Args:
        tokenizer: a ``transformers`` tokenizer (fast ones also give word and sequence ids).
        data: the examples.
        max_length: tokens per example, special tokens included (at least 4).
        positions: also compute ``word_ids`` and ``sequence_ids`` (the cache stores them;
            fine-tuning does not need them).

    Raises:
        ConfigError: ``max_length`` below 4.
    """
    if max_length < 4:
        raise ConfigError(f"max_length {max_length} is too small")
    kw = dict(return_special_tokens_mask=True, return_token_type_ids=True, verbose=False)
    args = (data.texts, data.pairs) if data.pairs is not None else (data.texts,)
    enc = tokenizer(*args, truncation=False, **kw)  # one pass; only long examples again
    ids, special = list(enc["input_ids"]), list(enc["special_tokens_mask"])
    tt = list(enc["token_type_ids"]) if "token_type_ids" in enc else None
    fast = getattr(enc, "encodings", None) is not None
    if positions and not fast:
        logger.warning(
            "tokenizer %s is not a fast tokenizer: word_ids are not stored",
            type(tokenizer).__name__,
        )
    track = positions and fast
    word_ids = _positions(enc, len(ids), "word_ids") if track else None
    seq_ids = _positions(enc, len(ids), "sequence_ids") if track else None
    long = [i for i, x in enumerate(ids) if len(x) > max_length]
    if long:
        sub = tuple([a[i] for i in long] for a in args)
        cut = tokenizer(*sub, truncation=True, max_length=max_length, **kw)
        for j, i in enumerate(long):
            ids[i], special[i] = cut["input_ids"][j], cut["special_tokens_mask"][j]
            if tt is not None:
                tt[i] = cut["token_type_ids"][j]
            if word_ids is not None and seq_ids is not None:
                word_ids[i] = [-1 if v is None else v for v in cut.word_ids(j)]
                seq_ids[i] = [-1 if v is None else v for v in cut.sequence_ids(j)]
    if positions and not fast:
        word_ids = [[-1] * len(x) for x in ids]
        seq_ids = [[-1 if m else 0 for m in sp] for sp in special]
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int32, count=len(ids))
    return Encoded(ids, tt, special, word_ids, seq_ids, lengths, len(long))


def pad_id(tokenizer: Any) -> int:
    """The id padding uses: the tokenizer's pad token, 0 when it has none."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def uses_token_types(model: Any) -> bool:
    """Whether the encoder has segment (token type) embeddings worth feeding."""
    return int(getattr(model.config, "type_vocab_size", 0) or 0) > 1


def _pad(seqs: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    return torch.nn.utils.rnn.pad_sequence(
        [torch.tensor(s, dtype=torch.long) for s in seqs], batch_first=True, padding_value=value
    )


def collate(
    enc: Encoded,
    rows: Sequence[int] | np.ndarray,
    *,
    pad_id: int,
    token_types: bool,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """Examples ``rows`` of ``enc`` as one right-padded batch on ``device``.

    Args:
        enc: from :func:`encode`.
        rows: which examples, in batch order.
        pad_id: from :func:`pad_id`.
        token_types: feed ``token_type_ids`` (from :func:`uses_token_types`); ignored when
            the tokenizer gave none.
        device: where the tensors go (copied without blocking on CUDA).

    Returns:
        ``{"input_ids", "attention_mask", "special_tokens_mask"[, "token_type_ids"]}``, each
        ``[batch, seq]`` int64 (``seq`` = the longest example of the batch).
    """
    device = torch.device(device)
    ids = [enc.input_ids[i] for i in rows]
    batch = {
        "input_ids": _pad(ids, pad_id),
        "attention_mask": _pad([[1] * len(x) for x in ids], 0),
        "special_tokens_mask": _pad([enc.special_tokens_mask[i] for i in rows], 1),
    }
    if token_types and enc.token_type_ids is not None:
        batch["token_type_ids"] = _pad([enc.token_type_ids[i] for i in rows], 0)
    # non_blocking only on CUDA, where a copy from pageable memory is staged before returning
    return {k: v.to(device, non_blocking=device.type == "cuda") for k, v in batch.items()}
