"""Where a result came from: library versions, stable hashes, and what identifies a cache.

The one list of cache fields that must agree lives here, grouped by what they pin down, so
that every place that combines two caches (a resumed extraction and its partial file,
shards being merged, a train and an eval cache meeting in a probe or a search, a checkpoint
and the sources it was computed from) checks the same fields and names the same culprit.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import CacheMismatchError

__all__ = [
    "CACHE_IDENTITY_FIELDS",
    "DATA_FIELDS",
    "EXTRACTION_FIELDS",
    "LAYOUT_FIELDS",
    "MODEL_FIELDS",
    "PAIRING_FIELDS",
    "TASK_FIELDS",
    "check_same",
    "mismatches",
    "stable_hash",
    "versions",
]

#: the encoder: which weights and which tokenizer produced the vectors, and their shape
MODEL_FIELDS = ("model_hash", "tokenizer", "n_layers", "hidden_size")
#: how the vectors were produced and stored (``max_norm_tie``: the pooled ``max_norm`` view's
#: tie rule, :data:`probekit.pooling.MAX_NORM_TIE`; absent from caches made before it)
EXTRACTION_FIELDS = ("max_length", "storage_dtype", "compute_dtype", "store_tokens", "max_norm_tie")
#: what the labels mean
TASK_FIELDS = ("task",)
#: which examples: the split and a hash of its texts and labels
DATA_FIELDS = ("split", "data_hash", "full_data_hash", "n_examples")
#: how one file of a sharded or windowed extraction is laid out
LAYOUT_FIELDS = ("shard", "window_tokens")
#: everything that identifies one cache file (a resumed run must match all of it)
CACHE_IDENTITY_FIELDS = MODEL_FIELDS + EXTRACTION_FIELDS + TASK_FIELDS + DATA_FIELDS + LAYOUT_FIELDS
#: what a train and an eval cache must share to be probed together (data may differ)
PAIRING_FIELDS = (*MODEL_FIELDS, "max_length", *TASK_FIELDS)

_PACKAGES = ("numpy", "torch", "transformers", "scikit-learn", "scipy", "h5py", "joblib")


def versions() -> dict[str, str]:
    """Versions of probekit, Python and the libraries results depend on (none imported)."""
    from importlib import metadata

    from . import __version__

    out = {"probekit": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _default(o: Any) -> Any:
    tolist = getattr(o, "tolist", None)
    return tolist() if callable(tolist) else str(o)


def stable_hash(obj: Any, length: int | None = None) -> str:
    """SHA-256 of ``obj`` as canonical JSON (sorted keys); the first ``length`` hex digits."""
    h = hashlib.sha256(json.dumps(obj, sort_keys=True, default=_default).encode()).hexdigest()
    return h if length is None else h[:length]


def mismatches(
    a: Mapping[str, Any], b: Mapping[str, Any], fields: Iterable[str]
) -> list[tuple[str, Any, Any]]:
    """``(field, a[field], b[field])`` for every field in ``fields`` where the two differ.

    A field missing from both counts as agreeing; missing from one only is a difference.
    """
    return [(k, a.get(k), b.get(k)) for k in fields if a.get(k) != b.get(k)]


def check_same(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    fields: Iterable[str],
    *,
    what_a: str,
    what_b: str,
) -> None:
    """Raise :class:`CacheMismatchError` naming both sides and every field that differs."""
    bad = mismatches(a, b, fields)
    if bad:
        diffs = "; ".join(f"{k}: {va!r} vs {vb!r}" for k, va, vb in bad)
        raise CacheMismatchError(f"{what_a} and {what_b} differ in {diffs}")
