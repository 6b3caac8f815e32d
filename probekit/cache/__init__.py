"""The HDF5 activation cache: its schema (:mod:`.schema`, defined there and nowhere else),
a writer (:mod:`.writer`), a lazy reader (:mod:`.reader`), and the merge of shards
(:mod:`.merge`).

Layout of one file (one model x task x split, or one shard of it)::

    /                       attrs: schema, schema_version, complete, n_done, provenance (see
                            CacheWriter.create); everything needed to rebuild the TaskSpec
    labels                  [n_examples]            int64 (float32 for regression)
    example_index           [n_examples]            int64, position in the source split
    lengths                 [n_examples]            int32, tokens per example (specials included)
    offsets                 [n_examples + 1]        int64, token rows of example i are
                                                    offsets[i]:offsets[i+1]
    n_truncated attr        examples cut at max_length
    pooled/cls              [n_examples, n_layers, hidden]
    pooled/mean             [n_examples, n_layers, hidden]  mean over non-special tokens
    pooled/max_norm         [n_examples, n_layers, hidden]  largest-L2-norm non-special token
    pooled/max_norm_pos     [n_examples, n_layers]  int16, its position within the example
    hidden                  [n_tokens, n_layers, hidden]    (only with store_tokens)
    input_ids               [n_tokens] int32, special_tokens_mask [n_tokens] uint8,
    word_ids                [n_tokens] int32 (-1 for specials), sequence_ids [n_tokens] int8

Layer 0 is the embedding output, layer ``i`` the output of block ``i``. Chunks hold one
layer and 64 dimensions of up to 4,096 token rows, so one layer, or one dimension across
all tokens, reads without touching the rest. Datasets are allocated when the file is
created, so writing data never changes file metadata except the ``n_done`` attribute.

The cache stores the task's attributes (name, text fields, label names, ``regression``,
metrics) and rebuilds a :class:`~probekit.taskspec.TaskSpec` from them; it depends on
:mod:`probekit.taskspec`, not on the data loaders of :mod:`probekit.tasks`.
"""

from __future__ import annotations

from .merge import SHARD_FIELDS, merge_shards
from .reader import ActivationCache, describe
from .schema import POOLS, SCHEMA, SCHEMA_VERSION, STORAGE_DTYPES, TOKEN_FIELDS, partial_path
from .writer import CacheWriter

__all__ = [
    "POOLS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SHARD_FIELDS",
    "STORAGE_DTYPES",
    "TOKEN_FIELDS",
    "ActivationCache",
    "CacheWriter",
    "describe",
    "merge_shards",
    "partial_path",
]
