"""Merging the shards of a sharded extraction (``extract --shard i/n``) into one cache."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CacheMismatchError
from ..provenance import EXTRACTION_FIELDS, MODEL_FIELDS, TASK_FIELDS, check_same
from .reader import ActivationCache
from .schema import POOLS
from .writer import CacheWriter

__all__ = ["SHARD_FIELDS", "merge_shards"]

#: what every shard of one extraction shares: all of the cache identity except the fields
#: that are per shard by design (its data_hash, n_examples, shard and write window)
SHARD_FIELDS = (
    *MODEL_FIELDS,
    *EXTRACTION_FIELDS,
    *TASK_FIELDS,
    "label_names",
    "split",
    "full_data_hash",
)
# attributes the writer sets itself, or that describe one shard only
_NOT_INHERITED = frozenset(
    [
        "schema",
        "schema_version",
        "complete",
        "n_done",
        "n_examples",
        "n_layers",
        "hidden_size",
        "storage_dtype",
        "store_tokens",
        "pools",
    ]
)


def _in_shard_order(caches: list[ActivationCache]) -> list[ActivationCache]:
    """The shards sorted by index, after checking they are all of ``0..n-1`` of one run."""
    metas = [c.meta for c in caches]
    counts = {m.get("shard_count") for m in metas}
    if len(counts) != 1 or None in counts or "" in counts:
        raise CacheMismatchError(
            f"not shards of one extraction: shard counts {sorted(map(str, counts))}"
        )
    n_shards = int(str(counts.pop()))
    order = sorted(range(len(caches)), key=lambda i: int(metas[i]["shard_index"]))
    idx = [int(metas[i]["shard_index"]) for i in order]
    if idx != list(range(n_shards)):
        raise CacheMismatchError(f"shards {idx} given; need all of 0..{n_shards - 1}")
    ref = caches[order[0]]
    for i in order[1:]:
        check_same(
            metas[i],
            metas[order[0]],
            SHARD_FIELDS,
            what_a=str(caches[i].path),
            what_b=str(ref.path),
        )
    return [caches[i] for i in order]


def _merged_attrs(ordered: list[ActivationCache]) -> dict[str, Any]:
    ref = ordered[0].meta
    attrs = {k: v for k, v in ref.items() if k not in _NOT_INHERITED}
    attrs.update(
        shard="",
        shard_index="",
        shard_count="",
        data_hash=ref.get("full_data_hash", ""),
        n_truncated=int(sum(int(c.meta.get("n_truncated", 0)) for c in ordered)),
        merged_from=[str(c.path) for c in ordered],
    )
    return attrs


def merge_shards(shards: Sequence[str | Path], out: str | Path) -> Path:
    """Concatenate complete shard caches (``--shard i/n``) into one complete cache.

    Checks that the shards are ``0..n-1`` of the same extraction (every field of
    :data:`SHARD_FIELDS` equal) and writes ``out`` (via ``out.partial``). The result equals
    the unsharded extraction's file, dataset by dataset. Shards are read one at a time.

    Raises:
        CacheMismatchError: a shard missing, or shards of different extractions (naming
            the field and both files).
    """
    caches = [ActivationCache(p) for p in shards]
    try:
        ordered = _in_shard_order(caches)
        first = ordered[0]
        store_tokens = all(c.has_tokens for c in ordered)
        token_ids = None
        if store_tokens:
            token_ids = {
                k: np.concatenate([c.token_field(k) for c in ordered]) for k in first.token_fields
            }
        w = CacheWriter.create(
            out,
            attrs=_merged_attrs(ordered),
            labels=np.concatenate([c.labels for c in ordered]),
            example_index=np.concatenate([c.example_index for c in ordered]),
            lengths=np.concatenate([c.lengths for c in ordered]),
            n_layers=first.n_layers,
            hidden_size=first.hidden_size,
            storage_dtype=str(first.meta["storage_dtype"]),
            store_tokens=store_tokens,
            token_ids=token_ids,
        )
        try:
            start = 0
            for c in ordered:
                n = c.n_examples
                pooled = {p: c.all_layers(p) for p in POOLS}
                hidden = c.all_tokens() if store_tokens else None
                w.write_window(start, start + n, pooled, c.max_norm_positions(), hidden)
                start += n
            return w.finalize()
        finally:
            w.close()
    finally:
        for c in caches:
            c.close()
