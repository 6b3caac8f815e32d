"""Writing one cache file: allocate everything up front, fill it window by window, rename
``NAME.partial`` to ``NAME`` at the end; reopen a partial file to resume. :class:`WindowWrites`
writes the windows on a background thread, in order, so that computing the next window and
writing this one overlap."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import CacheError, CacheMismatchError, ConfigError
from ..provenance import CACHE_IDENTITY_FIELDS, mismatches
from .schema import (
    DIM_CHUNK,
    EXAMPLE_CHUNK,
    LEGACY_ATTRS,
    POOLS,
    SCHEMA,
    SCHEMA_VERSION,
    STORAGE_DTYPES,
    TOKEN_CHUNK,
    create_allocated,
    decode_attr,
    encode_attr,
    labels_hash,
    partial_path,
)

__all__ = ["CacheWriter", "WindowWrites"]

logger = logging.getLogger(__name__)


def _check_space(part: Path, need: int) -> None:
    """Refuse to start a cache the disk cannot hold (``need`` bytes, estimated)."""
    free = shutil.disk_usage(part.parent).free
    if free < need:
        raise CacheError(
            f"{part}: the disk is full for this cache: it needs about {need / 2**20:.1f} MiB, "
            f"{free / 2**20:.1f} MiB are free in {part.parent}; free some space or choose "
            "another --out"
        )


def _reserve(part: Path) -> None:
    """Reserve the blocks of the (sparse, early-allocated) file now, so that a full disk
    shows here, before any vector is written, and never inside HDF5's flush (where h5py
    cannot recover from it)."""
    fd = os.open(part, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise CacheError(
                f"{part}: the disk is full (cannot reserve {os.fstat(fd).st_size / 2**20:.1f} "
                "MiB); free some space or choose another --out"
            ) from None
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # no fallocate here: go on
            raise
    finally:
        os.close(fd)


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
            attrs: provenance attributes (model, task, data hash, settings...); a legacy
                name (``is_regression``) is written under its new one (``regression``).
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
        isz = np.dtype(STORAGE_DTYPES[storage_dtype]).itemsize
        n_vec = n * len(POOLS) + (int(offsets[-1]) if store_tokens else 0)
        _check_space(part, n_vec * n_layers * hidden_size * isz + 64 * n + 2**16)
        f = h5py.File(part, "w")
        try:
            f.attrs.update(
                schema=SCHEMA,
                schema_version=SCHEMA_VERSION,
                complete=False,
                n_done=0,
                n_examples=n,
                n_layers=n_layers,
                hidden_size=hidden_size,
                storage_dtype=storage_dtype,
                store_tokens=bool(store_tokens),
                pools=encode_attr(list(POOLS)),
            )
            for k, v in attrs.items():
                f.attrs[LEGACY_ATTRS.get(k, k)] = encode_attr(v)
            f.create_dataset("labels", data=labels)
            f.attrs["labels_hash"] = labels_hash(f["labels"][:])  # after the shards' own (merge)
            f.create_dataset("example_index", data=np.asarray(example_index, dtype=np.int64))
            f.create_dataset("lengths", data=np.asarray(lengths, dtype=np.int32))
            f.create_dataset("offsets", data=offsets)
            sdt = STORAGE_DTYPES[storage_dtype]
            g = f.create_group("pooled")
            for p in POOLS:
                create_allocated(
                    g, p, (n, n_layers, hidden_size), sdt, (EXAMPLE_CHUNK, 1, hidden_size)
                )
            create_allocated(g, "max_norm_pos", (n, n_layers), np.int16, (EXAMPLE_CHUNK, n_layers))
            if store_tokens:
                T = int(offsets[-1])
                create_allocated(
                    f, "hidden", (T, n_layers, hidden_size), sdt, (TOKEN_CHUNK, 1, DIM_CHUNK)
                )
                for name, arr in (token_ids or {}).items():
                    f.create_dataset(name, data=arr, chunks=True if T else None)
            f.flush()
            _reserve(part)
        except BaseException as e:
            with contextlib.suppress(Exception):  # a failed flush may fail again on close
                f.close()
            part.unlink(missing_ok=True)
            if "No space left" in str(e):  # h5py reports ENOSPC as a RuntimeError
                raise CacheError(
                    f"{part}: the disk is full; free some space or choose another --out"
                ) from None
            raise
        return cls(final, f)

    @classmethod
    def resume(cls, path: str | Path, expected: dict[str, Any]) -> CacheWriter:
        """Reopen ``path.partial`` for writing after checking its identity.

        Every field of :data:`probekit.provenance.CACHE_IDENTITY_FIELDS` must agree between
        the file and ``expected`` (a field missing on one side only is a difference).

        Raises:
            CacheMismatchError: naming each field that differs, with both values.
        """
        final = Path(path)
        part = partial_path(final)
        if part.exists():
            _reserve(part)
        try:
            f = h5py.File(part, "r+")
        except OSError as e:
            raise CacheError(
                f"{part}: cannot reopen the partial cache to resume ({e}); delete it to start over"
            ) from None
        if decode_attr(f.attrs.get("schema")) != SCHEMA:
            f.close()
            raise CacheError(f"{part}: not a probekit cache; refusing to resume into it")
        have = {k: decode_attr(f.attrs[k]) for k in CACHE_IDENTITY_FIELDS if k in f.attrs}
        want = {k: encode_attr(v) for k, v in expected.items() if k in CACHE_IDENTITY_FIELDS}
        diffs = mismatches(have, want, CACHE_IDENTITY_FIELDS)
        if diffs:
            f.close()
            shown = "; ".join(f"{k}: file has {a!r}, this run has {b!r}" for k, a, b in diffs)
            raise CacheMismatchError(
                f"{part}: cannot resume, it was made with other settings or data ({shown}). "
                "Delete it or run with the original settings."
            )
        return cls(final, f)

    # ------------------------------------------------------------------ writing
    @property
    def n_done(self) -> int:
        return int(self.f.attrs["n_done"])

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


class WindowWrites:
    """Writes windows of a :class:`CacheWriter` in submission order, on one background thread
    (``background=True``) or at once in the caller.

    :meth:`submit` returns a future per window; a window's buffers may be reused once its
    future is done, and ``future.result()`` re-raises what failed in the writer thread. After
    a failed window the later ones are skipped, so the file's ``n_done`` stays at the last
    window written whole and the partial file resumes from there. Use it as a context
    manager: leaving the block normally waits for every write; leaving it on an exception
    (Ctrl-C included) cancels the writes not yet started, waits for the one under way and
    stops the thread.
    """

    def __init__(self, writer: CacheWriter, *, background: bool = True) -> None:
        self.writer = writer
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="probekit-writer")
            if background
            else None
        )
        self._futures: list[Future] = []
        self._failed = threading.Event()

    def submit(
        self,
        start: int,
        stop: int,
        pooled: dict[str, np.ndarray],
        max_norm_pos: np.ndarray,
        hidden: np.ndarray | None,
        *,
        ready: Callable[[], Any] | None = None,
    ) -> Future:
        """Queue :meth:`CacheWriter.write_window` of examples ``start:stop``.

        Args:
            pooled, max_norm_pos, hidden: as :meth:`CacheWriter.write_window`; they must not
                change until the returned future is done.
            ready: called in the writer thread before the arrays are read (e.g. a CUDA
                event's ``synchronize`` after non-blocking copies into them).
        """

        def job() -> None:
            if self._failed.is_set():
                return  # an earlier window failed: its future carries the error
            try:
                if ready is not None:
                    ready()
                self.writer.write_window(start, stop, pooled, max_norm_pos, hidden)
            except BaseException:
                self._failed.set()
                raise
            n = int(self.writer.f.attrs["n_examples"])
            logger.info("flushed %d/%d examples to %s", stop, n, partial_path(self.writer.path))

        if self._pool is None:
            fut: Future = Future()
            job()
            fut.set_result(None)
        else:
            fut = self._pool.submit(job)
        self._futures.append(fut)
        return fut

    def wait(self) -> None:
        """Wait for every submitted window; re-raise the first failure."""
        for f in self._futures:
            f.result()
        self._futures = []

    def __enter__(self) -> WindowWrites:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
