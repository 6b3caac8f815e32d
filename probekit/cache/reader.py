"""Reading a cache file: :class:`ActivationCache` (lazy, validated) and :func:`describe`."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import CacheError, ConfigError, TaskError
from ..taskspec import TaskSpec, get_task
from .schema import (
    LEGACY_ATTRS,
    POOLS,
    SCHEMA,
    SCHEMA_VERSION,
    TOKEN_FIELDS,
    decode_attr,
    labels_hash,
    partial_path,
)

__all__ = ["ActivationCache", "describe"]

Dims = Sequence[int] | np.ndarray | None


class ActivationCache:
    """Lazy, validated reader of a complete cache file.

    Example::

        with ActivationCache("sst2-dev.h5") as c:
            X = c.features(-1, "cls")          # [n_examples, hidden]
            y = c.labels                       # [n_examples]

    Raises:
        CacheError: the file is missing, not HDF5, not a probekit cache, of an unsupported
            schema version, partial, or internally inconsistent.
    """

    def __init__(self, path: str | Path, *, allow_partial: bool = False) -> None:
        self.path = Path(path)
        if not self.path.exists():
            hint = (
                " (an unfinished extraction is at .partial; rerun with --resume)"
                if partial_path(self.path).exists()
                else ""
            )
            raise CacheError(f"{self.path}: no such cache file{hint}")
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as e:
            raise CacheError(f"{self.path}: not a readable HDF5 file ({e})") from None
        try:
            self._validate(allow_partial)
        except BaseException:
            self._f.close()
            raise
        self._labels: np.ndarray | None = None

    def _validate(self, allow_partial: bool) -> None:
        a = self._f.attrs
        if decode_attr(a.get("schema")) != SCHEMA:
            raise CacheError(
                f"{self.path}: not a probekit activation cache (no '{SCHEMA}' schema attribute)"
            )
        v = int(decode_attr(a.get("schema_version", -1)))
        if v != SCHEMA_VERSION:
            raise CacheError(
                f"{self.path}: schema version {v}, this probekit reads version {SCHEMA_VERSION}"
            )
        if not bool(a.get("complete", False)) and not allow_partial:
            raise CacheError(
                f"{self.path}: cache is partial ({int(a.get('n_done', 0))} of "
                f"{int(a.get('n_examples', 0))} examples); finish it with extract --resume"
            )
        n, L, H = (int(a[k]) for k in ("n_examples", "n_layers", "hidden_size"))
        need: dict[str, tuple[int, ...]] = {"labels": (n,), "example_index": (n,)}
        need["offsets"] = (n + 1,)
        need.update({f"pooled/{p}": (n, L, H) for p in POOLS})
        if "hidden" in self._f and "offsets" in self._f:
            need["hidden"] = (int(self._f["offsets"][-1]), L, H)
        for name, shape in need.items():
            if name not in self._f:
                raise CacheError(f"{self.path}: corrupt cache, dataset {name!r} is missing")
            if self._f[name].shape != shape:
                raise CacheError(
                    f"{self.path}: corrupt cache, {name} has shape {self._f[name].shape}, "
                    f"expected {shape}"
                )

    # ------------------------------------------------------------------ context
    def __enter__(self) -> ActivationCache:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._f.id.valid:
            self._f.close()

    def __repr__(self) -> str:
        return (
            f"ActivationCache({str(self.path)!r}, task={self.meta.get('task')!r}, "
            f"split={self.meta.get('split')!r}, n_examples={self.n_examples}, "
            f"n_layers={self.n_layers}, hidden_size={self.hidden_size})"
        )

    # ------------------------------------------------------------------ metadata
    @property
    def meta(self) -> dict[str, Any]:
        """All root attributes (provenance and settings), JSON values decoded.

        A legacy attribute of an old file (``is_regression``) also appears under its new
        name (``regression``)."""
        out = {}
        for k, v in self._f.attrs.items():
            v = decode_attr(v)
            if isinstance(v, str) and v[:1] in "[{":
                with contextlib.suppress(json.JSONDecodeError):
                    v = json.loads(v)
            out[k] = v
        for old, new in LEGACY_ATTRS.items():
            if old in out:
                out.setdefault(new, out[old])
        return out

    @property
    def n_examples(self) -> int:
        return int(self._f.attrs["n_examples"])

    @property
    def n_layers(self) -> int:
        """Hidden states per example: the embeddings (layer 0) plus each block."""
        return int(self._f.attrs["n_layers"])

    @property
    def hidden_size(self) -> int:
        return int(self._f.attrs["hidden_size"])

    @property
    def pools(self) -> tuple[str, ...]:
        return tuple(p for p in POOLS if f"pooled/{p}" in self._f)

    @property
    def has_tokens(self) -> bool:
        return "hidden" in self._f

    @property
    def token_fields(self) -> tuple[str, ...]:
        """The token-level id fields this file holds (see :meth:`token_field`)."""
        return tuple(name for name in TOKEN_FIELDS if name in self._f)

    @property
    def task(self) -> TaskSpec:
        """The task the cache was made for (rebuilt from the file for custom data)."""
        m = self.meta
        name = m.get("task", "custom")
        if name != "custom":
            try:
                return get_task(name)
            except TaskError:
                pass
        return TaskSpec(
            name,
            name,
            tuple(m.get("text_fields") or ("text",)),
            tuple(m.get("label_names") or ()),
            bool(m.get("regression", False)),
            tuple(m.get("metrics") or ("accuracy",)),
        )

    @property
    def labels(self) -> np.ndarray:
        """``[n_examples]`` int64 class indices (-1 unlabelled) or float32 scores."""
        if self._labels is None:
            y = self._f["labels"][:]
            want = self._f.attrs.get("labels_hash")  # absent in caches of earlier versions
            if want is not None and decode_attr(want) != labels_hash(y):
                raise CacheError(
                    f"{self.path}: the labels were changed after extraction (they no longer "
                    "match the cache's labels_hash); extract the cache again"
                )
            self._labels = y
        return self._labels.copy()

    @property
    def example_index(self) -> np.ndarray:
        """``[n_examples]`` position of each row in the source split."""
        return self._f["example_index"][:]

    @property
    def lengths(self) -> np.ndarray:
        """``[n_examples]`` int32 tokens per example (special tokens included)."""
        return self._f["lengths"][:]

    @property
    def offsets(self) -> np.ndarray:
        """``[n_examples + 1]``: token rows of example ``i`` are ``offsets[i]:offsets[i+1]``."""
        return self._f["offsets"][:]

    def layer_index(self, layer: int) -> int:
        """0 = embeddings, ``i`` = block ``i``; negative counts from the top (-1 = last)."""
        L = self.n_layers
        li = int(layer) + L if int(layer) < 0 else int(layer)
        if not 0 <= li < L:
            raise ConfigError(
                f"layer {layer} is out of range for {self.path} "
                f"({L} hidden states: 0..{L - 1} or -{L}..-1)"
            )
        return li

    def _dims(self, dims: Dims) -> np.ndarray | slice:
        if dims is None:
            return slice(None)
        d = np.asarray(dims, dtype=np.int64).reshape(-1)
        if d.size and (d.min() < 0 or d.max() >= self.hidden_size):
            bad = d[(d < 0) | (d >= self.hidden_size)].tolist()
            raise ConfigError(f"dimension(s) {bad} out of range 0..{self.hidden_size - 1}")
        return d

    def _check_pool(self, pool: str) -> None:
        if pool not in self.pools:
            raise ConfigError(
                f"pool {pool!r} is not in {self.path}; available: {', '.join(self.pools)}"
            )

    # ------------------------------------------------------------------ data
    def features(
        self, layer: int = -1, pool: str = "cls", dims: Dims = None, dtype: Any = None
    ) -> np.ndarray:
        """Sentence-level vectors ``[n_examples, n_dims]`` of one layer and pooling.

        Args:
            layer: 0 = embeddings, negative from the top.
            pool: ``cls``, ``mean`` or ``max_norm``.
            dims: dimension indices (any order); None = all.
            dtype: cast to this dtype (default: the stored dtype, float16 unless chosen otherwise).
        """
        self._check_pool(pool)
        li = self.layer_index(layer)
        X = self._f["pooled"][pool][:, li, :]
        d = self._dims(dims)
        if not isinstance(d, slice):
            X = X[:, d]
        self._check_finite(X, f"layer {li} ({pool})")
        return X if dtype is None else X.astype(dtype, copy=False)

    def all_layers(self, pool: str = "cls", dims: Dims = None, dtype: Any = None) -> np.ndarray:
        """Every layer at once: ``[n_examples, n_layers, n_dims]``."""
        self._check_pool(pool)
        X = self._f["pooled"][pool][:]
        d = self._dims(dims)
        if not isinstance(d, slice):
            X = X[:, :, d]
        self._check_finite(X, f"pool {pool}")
        return X if dtype is None else X.astype(dtype, copy=False)

    def _check_finite(self, X: np.ndarray, what: str) -> None:
        """Refuse vectors ``[n_examples, ...]`` holding NaN or inf (a corrupt or edited file)."""
        if not _any_nonfinite(X):
            return
        ok = np.isfinite(X).reshape(len(X), -1).all(axis=1)
        if not ok.all():
            rows = np.flatnonzero(~ok)
            raise CacheError(
                f"{self.path}: {rows.size} examples have non-finite (NaN/inf) vectors in {what}, "
                f"first rows {rows[:5].tolist()}; the cache is corrupt: extract it again"
            )

    def max_norm_positions(self) -> np.ndarray:
        """``[n_examples, n_layers]`` position (within its example) of the max-norm token."""
        return self._f["pooled"]["max_norm_pos"][:]

    def tokens(
        self, layer: int = -1, dims: Dims = None, dtype: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One layer's token vectors: ``(values [n_tokens, n_dims], offsets [n_examples + 1])``.

        Raises:
            CacheError: the cache was extracted without token-level vectors.
        """
        self._check_tokens()
        li = self.layer_index(layer)
        d = self._dims(dims)
        if isinstance(d, slice):
            V = self._f["hidden"][:, li, :]
        else:
            uniq, inv = np.unique(d, return_inverse=True)  # h5py wants increasing indices
            V = self._f["hidden"][:, li, uniq][:, inv]
        V = V if dtype is None else V.astype(dtype, copy=False)
        return V, self.offsets

    def all_tokens(self) -> np.ndarray:
        """Every token vector of every layer, as stored: ``[n_tokens, n_layers, hidden]``.

        Reads the whole token block into memory (merging shards needs it whole)."""
        self._check_tokens()
        return self._f["hidden"][:]

    def _check_tokens(self) -> None:
        if not self.has_tokens:
            raise CacheError(f"{self.path}: extracted without token-level vectors (--no-tokens)")

    def token_field(self, name: str) -> np.ndarray:
        """A token-level id field ``[n_tokens]``: one of :data:`~.schema.TOKEN_FIELDS`."""
        if name not in self.token_fields:
            raise CacheError(f"{self.path}: no token field {name!r}")
        return self._f[name][:]

    def datasets(self) -> dict[str, dict[str, Any]]:
        """``{name: {shape, dtype, chunks, bytes}}`` of every dataset in the file."""
        out: dict[str, dict[str, Any]] = {}

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                out[name] = {
                    "shape": list(obj.shape),
                    "dtype": str(obj.dtype),
                    "chunks": list(obj.chunks or []),
                    "bytes": int(obj.id.get_storage_size()),
                }

        self._f.visititems(visit)
        return out


#: the exponent bits of the stored float types: all set means inf or NaN
_EXPONENT = {
    np.dtype(np.float16): (np.uint16, 0x7C00),
    np.dtype(np.float32): (np.uint32, 0x7F800000),
}


def _any_nonfinite(X: np.ndarray, block: int = 2**19) -> bool:
    """Whether ``X`` holds a NaN or inf; on the exponent bits for float16/float32 (about 4x
    faster than ``np.isfinite`` on float16, which NumPy computes element by element), in
    blocks of ``block`` elements through one small buffer (a whole-array temporary costs a
    page fault per 4 KiB of fresh memory: ~0.1 s for one 768-dimension layer)."""
    if X.dtype in _EXPONENT and X.flags.c_contiguous:
        utype, mask = _EXPONENT[X.dtype]
        bits = X.reshape(-1).view(utype)
        buf = np.empty(min(block, bits.size), dtype=utype)
        for i in range(0, bits.size, block):
            part = buf[: min(block, bits.size - i)]
            np.bitwise_and(bits[i : i + block], mask, out=part)
            if int(part.max()) == mask:
                return True
        return False
    return not bool(np.isfinite(X).all())


def describe(path: str | Path) -> dict[str, Any]:
    """Schema, shapes, dtypes, sizes and provenance of a cache, for ``probekit info``.

    Works on partial files too (reporting how far they got).

    Returns:
        ``{"path", "file_bytes", "meta", "datasets"}`` (see :meth:`ActivationCache.datasets`).
    """
    p = Path(path)
    if not p.exists() and partial_path(p).exists():
        p = partial_path(p)
    with ActivationCache(p, allow_partial=True) as c:
        return {
            "path": str(p),
            "file_bytes": p.stat().st_size,
            "meta": c.meta,
            "datasets": c.datasets(),
        }
