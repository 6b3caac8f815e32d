"""The HDF5 activation cache: its schema (defined here and nowhere else), a writer, a lazy
reader, and the merge of shards.

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
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .errors import CacheError, CacheMismatchError, ConfigError
from .tasks import TaskSpec, get_task

logger = logging.getLogger(__name__)

__all__ = [
    "POOLS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "ActivationCache",
    "CacheWriter",
    "describe",
    "merge_shards",
    "partial_path",
]

SCHEMA = "probekit-activations"
SCHEMA_VERSION = 1
POOLS = ("cls", "mean", "max_norm")
STORAGE_DTYPES = {"float16": np.float16, "float32": np.float32}
_TOKEN_CHUNK = 4096
_DIM_CHUNK = 64
_EXAMPLE_CHUNK = 1024
# attributes that must agree between a partial file and a resumed run, and between shards
IDENTITY_ATTRS = (
    "model_hash",
    "tokenizer",
    "max_length",
    "storage_dtype",
    "compute_dtype",
    "task",
    "split",
    "data_hash",
    "store_tokens",
    "n_layers",
    "hidden_size",
    "n_examples",
    "shard",
    "window_tokens",
)


def partial_path(path: str | Path) -> Path:
    """Where an unfinished cache lives: ``NAME.partial`` next to ``NAME``."""
    p = Path(path)
    return p.with_name(p.name + ".partial")


def _to_attr(v: Any) -> Any:
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v)
    if v is None:
        return ""
    if isinstance(v, str):
        return str(v)  # np.str_ would be stored as a fixed-width array h5py cannot write
    if isinstance(v, np.generic):
        return v.item()
    return v


def _from_attr(v: Any) -> Any:
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.generic):
        v = v.item()
    return v


def _create_allocated(
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


class CacheWriter:
    """Writes one cache file as ``NAME.partial``; :meth:`finalize` renames it to ``NAME``.

    Rows are written in source order, window by window; ``n_done`` (a root attribute) is
    the number of leading examples whose data is complete and flushed to disk.
    """

    def __init__(self, path: Path, f: h5py.File) -> None:
        self.path = path
        self.f = f

    # ------------------------------------------------------------------ creation / resume
    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        attrs: dict[str, Any],
        labels: np.ndarray,
        example_index: np.ndarray,
        lengths: np.ndarray,
        n_layers: int,
        hidden_size: int,
        storage_dtype: str = "float16",
        store_tokens: bool = True,
        token_ids: dict[str, np.ndarray] | None = None,
    ) -> CacheWriter:
        """Create ``path.partial`` with every dataset allocated.

        Args:
            attrs: provenance attributes (model, task, data hash, settings...).
            labels, example_index, lengths: ``[n_examples]``.
            token_ids: with ``store_tokens``: ``input_ids``, ``special_tokens_mask``,
                ``word_ids``, ``sequence_ids``, each ``[n_tokens]``, written at once.
        """
        if storage_dtype not in STORAGE_DTYPES:
            raise ConfigError(f"storage dtype {storage_dtype!r}; use float16 or float32")
        final = Path(path)
        part = partial_path(final)
        part.parent.mkdir(parents=True, exist_ok=True)
        n = len(labels)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        f = h5py.File(part, "w")
        try:
            f.attrs["schema"] = SCHEMA
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["complete"] = False
            f.attrs["n_done"] = 0
            f.attrs["n_examples"] = n
            f.attrs["n_layers"] = n_layers
            f.attrs["hidden_size"] = hidden_size
            f.attrs["storage_dtype"] = storage_dtype
            f.attrs["store_tokens"] = bool(store_tokens)
            f.attrs["pools"] = json.dumps(list(POOLS))
            for k, v in attrs.items():
                f.attrs[k] = _to_attr(v)
            f.create_dataset("labels", data=labels)
            f.create_dataset("example_index", data=np.asarray(example_index, dtype=np.int64))
            f.create_dataset("lengths", data=np.asarray(lengths, dtype=np.int32))
            f.create_dataset("offsets", data=offsets)
            sdt = STORAGE_DTYPES[storage_dtype]
            g = f.create_group("pooled")
            for p in POOLS:
                _create_allocated(
                    g, p, (n, n_layers, hidden_size), sdt, (_EXAMPLE_CHUNK, 1, hidden_size)
                )
            _create_allocated(
                g, "max_norm_pos", (n, n_layers), np.int16, (_EXAMPLE_CHUNK, n_layers)
            )
            if store_tokens:
                T = int(offsets[-1])
                _create_allocated(
                    f, "hidden", (T, n_layers, hidden_size), sdt, (_TOKEN_CHUNK, 1, _DIM_CHUNK)
                )
                for name, arr in (token_ids or {}).items():
                    f.create_dataset(name, data=arr, chunks=True if T else None)
            f.flush()
        except BaseException:
            f.close()
            part.unlink(missing_ok=True)
            raise
        return cls(final, f)

    @classmethod
    def resume(cls, path: str | Path, expected: dict[str, Any]) -> CacheWriter:
        """Reopen ``path.partial`` for writing after checking its identity attributes."""
        final = Path(path)
        part = partial_path(final)
        try:
            f = h5py.File(part, "r+")
        except OSError as e:
            raise CacheError(
                f"{part}: cannot reopen the partial cache to resume ({e}); delete it to start over"
            ) from None
        if _from_attr(f.attrs.get("schema")) != SCHEMA:
            f.close()
            raise CacheError(f"{part}: not a probekit cache; refusing to resume into it")
        diffs = []
        for k in IDENTITY_ATTRS:
            if k in expected:
                have = _from_attr(f.attrs.get(k, ""))
                want = _to_attr(expected[k])
                if have != want:
                    diffs.append(f"{k}: file has {have!r}, this run has {want!r}")
        if diffs:
            f.close()
            raise CacheMismatchError(
                f"{part}: cannot resume, it was made with other settings or data ({'; '.join(diffs)}). "
                "Delete it or run with the original settings."
            )
        return cls(final, f)

    # ------------------------------------------------------------------ writing
    @property
    def n_done(self) -> int:
        return int(self.f.attrs["n_done"])

    @property
    def offsets(self) -> np.ndarray:
        return self.f["offsets"][:]

    def write_window(
        self,
        start: int,
        stop: int,
        pooled: dict[str, np.ndarray],
        max_norm_pos: np.ndarray,
        hidden: np.ndarray | None,
    ) -> None:
        """Write examples ``start:stop`` and mark them done.

        Args:
            pooled: each of :data:`POOLS` -> ``[stop - start, n_layers, hidden]``.
            max_norm_pos: ``[stop - start, n_layers]``.
            hidden: ``[offsets[stop] - offsets[start], n_layers, hidden]`` or None.
        """
        if start != self.n_done:
            raise CacheError(
                f"{self.path}: window starts at {start} but {self.n_done} examples are done"
            )
        for p in POOLS:
            self.f["pooled"][p][start:stop] = pooled[p]
        self.f["pooled"]["max_norm_pos"][start:stop] = max_norm_pos
        if hidden is not None and "hidden" in self.f:
            off = self.f["offsets"]
            a, b = int(off[start]), int(off[stop])
            if hidden.shape[0] != b - a:
                raise CacheError(
                    f"{self.path}: {hidden.shape[0]} token rows for a window of {b - a}"
                )
            if b > a:
                self.f["hidden"][a:b] = hidden
        self.f.flush()  # data first, then the mark that says it is there
        self.f.attrs["n_done"] = stop
        self.f.flush()

    def set_attrs(self, **attrs: Any) -> None:
        for k, v in attrs.items():
            self.f.attrs[k] = _to_attr(v)

    def finalize(self) -> Path:
        """Mark complete, close, and rename ``NAME.partial`` to ``NAME``."""
        n = int(self.f.attrs["n_examples"])
        if self.n_done != n:
            raise CacheError(f"{self.path}: finalize with {self.n_done} of {n} examples written")
        self.f.attrs["complete"] = True
        self.f.close()
        os.replace(partial_path(self.path), self.path)
        return self.path

    def close(self) -> None:
        if self.f.id.valid:
            self.f.close()


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
        if _from_attr(a.get("schema")) != SCHEMA:
            raise CacheError(
                f"{self.path}: not a probekit activation cache (no '{SCHEMA}' schema attribute)"
            )
        v = int(_from_attr(a.get("schema_version", -1)))
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
        need = {"labels": (n,), "example_index": (n,), "offsets": (n + 1,)}
        need.update({f"pooled/{p}": (n, L, H) for p in POOLS})
        for name, shape in need.items():
            if name not in self._f:
                raise CacheError(f"{self.path}: corrupt cache, dataset {name!r} is missing")
            if self._f[name].shape != shape:
                raise CacheError(
                    f"{self.path}: corrupt cache, {name} has shape {self._f[name].shape}, expected {shape}"
                )
        if "hidden" in self._f:
            T = int(self._f["offsets"][-1])
            if self._f["hidden"].shape != (T, L, H):
                raise CacheError(
                    f"{self.path}: corrupt cache, hidden has shape {self._f['hidden'].shape}, expected {(T, L, H)}"
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
            f"ActivationCache({str(self.path)!r}, task={self.meta.get('task')!r}, split={self.meta.get('split')!r}, "
            f"n_examples={self.n_examples}, n_layers={self.n_layers}, hidden_size={self.hidden_size})"
        )

    # ------------------------------------------------------------------ metadata
    @property
    def meta(self) -> dict[str, Any]:
        """All root attributes (provenance and settings), JSON values decoded."""
        out = {}
        for k, v in self._f.attrs.items():
            v = _from_attr(v)
            if isinstance(v, str) and v[:1] in "[{":
                try:
                    v = json.loads(v)
                except json.JSONDecodeError:
                    pass
            out[k] = v
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
    def task(self) -> TaskSpec:
        """The task the cache was made for (rebuilt from the file for custom data)."""
        m = self.meta
        name = m.get("task", "custom")
        try:
            spec = get_task(name)
        except Exception:
            spec = None
        if spec is not None and name != "custom":
            return spec
        return TaskSpec(
            name,
            name,
            tuple(m.get("text_fields") or ("text",)),
            tuple(m.get("label_names") or ()),
            bool(m.get("is_regression", False)),
            tuple(m.get("metrics") or ("accuracy",)),
        )

    @property
    def labels(self) -> np.ndarray:
        """``[n_examples]`` int64 class indices (-1 unlabelled) or float32 scores."""
        if self._labels is None:
            self._labels = self._f["labels"][:]
        return self._labels.copy()

    @property
    def example_index(self) -> np.ndarray:
        """``[n_examples]`` position of each row in the source split."""
        return self._f["example_index"][:]

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
                f"layer {layer} is out of range for {self.path} ({L} hidden states: 0..{L - 1} or -{L}..-1)"
            )
        return li

    def _dims(self, dims: Sequence[int] | np.ndarray | None) -> np.ndarray | slice:
        if dims is None:
            return slice(None)
        d = np.asarray(dims, dtype=np.int64).reshape(-1)
        if d.size and (d.min() < 0 or d.max() >= self.hidden_size):
            raise ConfigError(
                f"dimension(s) {d[(d < 0) | (d >= self.hidden_size)].tolist()} out of range 0..{self.hidden_size - 1}"
            )
        return d

    # ------------------------------------------------------------------ data
    def features(
        self,
        layer: int = -1,
        pool: str = "cls",
        dims: Sequence[int] | np.ndarray | None = None,
        dtype: Any = None,
    ) -> np.ndarray:
        """Sentence-level vectors ``[n_examples, n_dims]`` of one layer and pooling.

        Args:
            layer: 0 = embeddings, negative from the top.
            pool: ``cls``, ``mean`` or ``max_norm``.
            dims: dimension indices (any order); None = all.
            dtype: cast to this dtype (default: the stored dtype, float16 unless chosen otherwise).
        """
        if pool not in self.pools:
            raise ConfigError(
                f"pool {pool!r} is not in {self.path}; available: {', '.join(self.pools)}"
            )
        X = self._f["pooled"][pool][:, self.layer_index(layer), :]
        d = self._dims(dims)
        if not isinstance(d, slice):
            X = X[:, d]
        return X if dtype is None else X.astype(dtype, copy=False)

    def all_layers(
        self, pool: str = "cls", dims: Sequence[int] | np.ndarray | None = None, dtype: Any = None
    ) -> np.ndarray:
        """Every layer at once: ``[n_examples, n_layers, n_dims]``."""
        if pool not in self.pools:
            raise ConfigError(
                f"pool {pool!r} is not in {self.path}; available: {', '.join(self.pools)}"
            )
        X = self._f["pooled"][pool][:]
        d = self._dims(dims)
        if not isinstance(d, slice):
            X = X[:, :, d]
        return X if dtype is None else X.astype(dtype, copy=False)

    def max_norm_positions(self) -> np.ndarray:
        """``[n_examples, n_layers]`` position (within its example) of the max-norm token."""
        return self._f["pooled"]["max_norm_pos"][:]

    def tokens(
        self, layer: int = -1, dims: Sequence[int] | np.ndarray | None = None, dtype: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Token-level vectors of one layer: ``(values [n_tokens, n_dims], offsets [n_examples + 1])``.

        Raises:
            CacheError: the cache was extracted without token-level vectors.
        """
        if not self.has_tokens:
            raise CacheError(f"{self.path}: extracted without token-level vectors (--no-tokens)")
        li = self.layer_index(layer)
        d = self._dims(dims)
        if isinstance(d, slice):
            V = self._f["hidden"][:, li, :]
        else:
            uniq, inv = np.unique(d, return_inverse=True)  # h5py wants increasing indices
            V = self._f["hidden"][:, li, uniq][:, inv]
        V = V if dtype is None else V.astype(dtype, copy=False)
        return V, self.offsets

    def token_field(self, name: str) -> np.ndarray:
        """A token-level id field: ``input_ids``, ``special_tokens_mask``, ``word_ids``, ``sequence_ids``."""
        if (
            name not in ("input_ids", "special_tokens_mask", "word_ids", "sequence_ids")
            or name not in self._f
        ):
            raise CacheError(f"{self.path}: no token field {name!r}")
        return self._f[name][:]

    def iter_examples(self, layer: int = -1) -> Iterator[np.ndarray]:
        """Yield each example's token vectors ``[n_tokens_i, hidden]`` of one layer."""
        V, off = self.tokens(layer)
        for i in range(self.n_examples):
            yield V[off[i] : off[i + 1]]


# ---------------------------------------------------------------------------------- merge


def merge_shards(shards: Sequence[str | Path], out: str | Path) -> Path:
    """Concatenate complete shard caches (``--shard i/n``) into one complete cache.

    Checks that the shards are ``0..n-1`` of the same extraction (same model, data and
    settings) and writes ``out`` (via ``out.partial``). Shards are read one at a time.
    """
    caches = [ActivationCache(p) for p in shards]
    try:
        metas = [c.meta for c in caches]
        counts = {m.get("shard_count") for m in metas}
        if len(counts) != 1 or None in counts:
            raise CacheMismatchError(
                f"not shards of one extraction: shard counts {sorted(map(str, counts))}"
            )
        n_shards = int(counts.pop())
        order = sorted(range(len(caches)), key=lambda i: int(metas[i]["shard_index"]))
        idx = [int(metas[i]["shard_index"]) for i in order]
        if idx != list(range(n_shards)):
            raise CacheMismatchError(f"shards {idx} given; need all of 0..{n_shards - 1}")
        ref = metas[order[0]]
        for i in order[1:]:
            for k in (
                "model_hash",
                "tokenizer",
                "max_length",
                "storage_dtype",
                "compute_dtype",
                "task",
                "split",
                "full_data_hash",
                "store_tokens",
                "n_layers",
                "hidden_size",
            ):
                if metas[i].get(k) != ref.get(k):
                    raise CacheMismatchError(
                        f"{caches[i].path}: {k} is {metas[i].get(k)!r}, "
                        f"but {caches[order[0]].path} has {ref.get(k)!r}"
                    )
        ordered = [caches[i] for i in order]
        labels = np.concatenate([c.labels for c in ordered])
        ex_index = np.concatenate([c.example_index for c in ordered])
        lengths = np.concatenate([c._f["lengths"][:] for c in ordered])
        store_tokens = all(c.has_tokens for c in ordered)
        token_ids = None
        if store_tokens:
            token_ids = {
                k: np.concatenate([c._f[k][:] for c in ordered])
                for k in ("input_ids", "special_tokens_mask", "word_ids", "sequence_ids")
                if k in ordered[0]._f
            }
        attrs = {
            k: v
            for k, v in ref.items()
            if k
            not in (
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
            )
        }
        attrs.update(
            shard="",
            shard_index="",
            shard_count="",
            data_hash=ref.get("full_data_hash", ""),
            n_truncated=int(sum(int(m.get("n_truncated", 0)) for m in metas)),
            merged_from=[str(c.path) for c in ordered],
        )
        w = CacheWriter.create(
            out,
            attrs=attrs,
            labels=labels,
            example_index=ex_index,
            lengths=lengths,
            n_layers=ordered[0].n_layers,
            hidden_size=ordered[0].hidden_size,
            storage_dtype=str(ref["storage_dtype"]),
            store_tokens=store_tokens,
            token_ids=token_ids,
        )
        try:
            start = 0
            for c in ordered:
                n = c.n_examples
                pooled = {p: c._f["pooled"][p][:] for p in POOLS}
                hid = c._f["hidden"][:] if store_tokens else None
                w.write_window(start, start + n, pooled, c._f["pooled"]["max_norm_pos"][:], hid)
                start += n
            return w.finalize()
        finally:
            w.close()
    finally:
        for c in caches:
            c.close()


def describe(path: str | Path) -> dict[str, Any]:
    """Schema, shapes, dtypes, sizes and provenance of a cache, for ``probekit info``.

    Works on partial files too (reporting how far they got).
    """
    p = Path(path)
    if not p.exists() and partial_path(p).exists():
        p = partial_path(p)
    with ActivationCache(p, allow_partial=True) as c:
        datasets: dict[str, Any] = {}

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                datasets[name] = {
                    "shape": list(obj.shape),
                    "dtype": str(obj.dtype),
                    "chunks": list(obj.chunks or []),
                    "bytes": int(obj.id.get_storage_size()),
                }

        c._f.visititems(visit)
        return {
            "path": str(p),
            "file_bytes": p.stat().st_size,
            "meta": c.meta,
            "datasets": datasets,
        }
