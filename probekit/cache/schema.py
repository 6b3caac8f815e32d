"""The cache file's schema: names, versions, chunking, and how attributes are encoded.

Everything the writer, the reader and the merge agree on lives here (see
:mod:`probekit.cache` for the layout of one file).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .._io import to_jsonable

__all__ = [
    "DIM_CHUNK",
    "EXAMPLE_CHUNK",
    "LEGACY_ATTRS",
    "POOLS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "STORAGE_DTYPES",
    "TOKEN_CHUNK",
    "TOKEN_FIELDS",
    "create_allocated",
    "decode_attr",
    "encode_attr",
    "partial_path",
]

SCHEMA = "probekit-activations"
SCHEMA_VERSION = 1
POOLS = ("cls", "mean", "max_norm")
STORAGE_DTYPES = {"float16": np.float16, "float32": np.float32}
#: token-level id fields, each ``[n_tokens]``
TOKEN_FIELDS = ("input_ids", "special_tokens_mask", "word_ids", "sequence_ids")
#: old attribute names -> the names written now (old files are read under either)
LEGACY_ATTRS = {"is_regression": "regression"}
TOKEN_CHUNK = 4096
DIM_CHUNK = 64
EXAMPLE_CHUNK = 1024


def partial_path(path: str | Path) -> Path:
    """Where an unfinished cache lives: ``NAME.partial`` next to ``NAME``."""
    p = Path(path)
    return p.with_name(p.name + ".partial")


def encode_attr(v: Any) -> Any:
    """A Python value as an HDF5 attribute: lists and dicts as JSON, None as ``""``."""
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(to_jsonable(v))
    if v is None:
        return ""
    if isinstance(v, str):
        return str(v)  # np.str_ would be stored as a fixed-width array h5py cannot write
    if isinstance(v, np.generic):
        return v.item()
    return v


def decode_attr(v: Any) -> Any:
    """An HDF5 attribute as a Python scalar (bytes decoded, NumPy scalars unwrapped)."""
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.generic):
        v = v.item()
    return v


def create_allocated(
    group: h5py.Group, name: str, shape: tuple[int, ...], dtype: Any, chunks: tuple[int, ...] | None
) -> h5py.Dataset:
    """A dataset whose storage is allocated now (no fill writes), so later data writes do not
    touch file metadata: an interrupted writer leaves a readable file."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    if chunks is not None and all(shape):
        dcpl.set_chunk(tuple(max(1, min(c, s)) for c, s in zip(chunks, shape)))
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    space = h5py.h5s.create_simple(shape)
    tid = h5py.h5t.py_create(np.dtype(dtype), logical=True)
    dsid = h5py.h5d.create(group.id, name.encode(), tid, space, dcpl=dcpl)
    return h5py.Dataset(dsid)


def labels_hash(labels: np.ndarray) -> str:
    """SHA-256 of the stored labels (dtype and bytes): a cheap check that nobody edited them."""
    a = np.ascontiguousarray(labels)
    return hashlib.sha256(str(a.dtype).encode() + b"\x00" + a.tobytes()).hexdigest()
