"""Run an encoder over a task split and write every layer's vectors to an HDF5 cache.

Tokenising and batching follow :mod:`probekit.tokenize` (the rules fine-tuning uses too).
The pass is batched and length-bucketed: examples are cut into windows of consecutive rows
(about ``window_tokens`` tokens each), sorted by length inside a window, and run in
dynamically padded batches under ``torch.inference_mode``. Each finished window is written
in source order and marked done, so an interrupted extraction resumes from the last
finished window and produces the same bytes as an uninterrupted one (window boundaries
depend only on the data and settings, never on where a run stopped).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .cache import POOLS, CacheWriter, partial_path
from .cache.writer import WindowWrites
from .errors import CacheError, ConfigError, DataError
from .forward import STORAGE_DTYPES, buffers, fill_batch, forward_batch, pool_batch, process_batch
from .hardware import check_cpu_dtype
from .models import LoadedModel
from .pooling import MAX_NORM_TIE
from .provenance import versions
from .tasks import TaskData
from .tokenize import Encoded, encode

logger = logging.getLogger(__name__)

__all__ = [
    "Encoded",
    "ExtractionReport",
    "encode",
    "extract",
    "forward_batch",
    "parse_shard",
    "pool_batch",
    "process_batch",
]


@dataclass
class ExtractionReport:
    """What :func:`extract` did."""

    path: Path
    n_examples: int
    n_tokens: int
    n_truncated: int
    n_layers: int
    hidden_size: int
    elapsed_s: float
    resumed_from: int = 0

    @property
    def tokens_per_s(self) -> float:
        return self.n_tokens / self.elapsed_s if self.elapsed_s > 0 else float("nan")


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``."""
    if shard is None or shard == "":
        return None
    if isinstance(shard, str):
        try:
            a, b = shard.split("/")
            i, n = int(a), int(b)
        except ValueError:
            raise ConfigError(f"--shard {shard!r}: expected i/n, e.g. 0/4") from None
    else:
        i, n = shard
    if not (n >= 1 and 0 <= i < n):
        raise ConfigError(f"--shard {i}/{n}: need 0 <= i < n")
    return i, n


def _windows(lengths: np.ndarray, window_tokens: int, store_tokens: bool) -> list[tuple[int, int]]:
    """Consecutive example ranges of about ``window_tokens`` tokens (deterministic)."""
    n = len(lengths)
    if not store_tokens:
        step = max(1, window_tokens // max(1, int(lengths.mean()) if n else 1))
        return [(a, min(n, a + step)) for a in range(0, n, step)]
    out, start, acc = [], 0, 0
    for i, ln in enumerate(lengths):
        acc += int(ln)
        if acc >= window_tokens:
            out.append((start, i + 1))
            start, acc = i + 1, 0
    if start < n:
        out.append((start, n))
    return out


def _batches(order: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    for a in range(0, len(order), batch_size):
        yield order[a : a + batch_size]


def _checked(
    data: TaskData,
    out: Path,
    *,
    batch_size: int,
    storage_dtype: str,
    shard: str | tuple[int, int] | None,
    resume: bool,
    overwrite: bool,
) -> tuple[TaskData, tuple[int, int] | None, str]:
    """Validate the settings and the output; ``(this shard's data, shard, full data hash)``."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if storage_dtype not in STORAGE_DTYPES:
        raise ConfigError(f"storage dtype {storage_dtype!r}; use float16 or float32")
    if len(data) == 0:
        raise DataError(f"{data.source}: no examples to extract")
    sh = parse_shard(shard)
    full_hash = data.fingerprint()
    if sh is not None:
        i, n = sh
        bounds = np.linspace(0, len(data), n + 1).round().astype(int)
        data = data.subset(np.arange(bounds[i], bounds[i + 1]))
        if len(data) == 0:
            raise DataError(
                f"shard {i}/{n} of {int(bounds[-1])} examples is empty (too many shards)"
            )
    if out.exists() and not overwrite:
        raise CacheError(f"{out}: exists; pass --overwrite to replace it")
    part = partial_path(out)
    if part.exists() and not resume:
        raise CacheError(
            f"{part}: an unfinished extraction is there; pass --resume to continue it or delete it"
        )
    return data, sh, full_hash


def _cache_attrs(
    lm: LoadedModel,
    data: TaskData,
    sh: tuple[int, int] | None,
    full_hash: str,
    *,
    max_length: int,
    window_tokens: int,
    n_truncated: int,
    batch_size: int,
) -> dict[str, Any]:
    """The cache file's attributes: model, task, data, layout and provenance."""
    task, lib = data.task, versions()
    return {
        "model": lm.name,
        "model_path": lm.path,
        "model_hash": lm.weights_hash,
        "model_type": getattr(lm.model.config, "model_type", ""),
        "tokenizer": getattr(lm.tokenizer, "name_or_path", "") or lm.path,
        "max_length": int(max_length),
        "compute_dtype": str(lm.dtype).replace("torch.", ""),
        "task": task.name,
        "split": data.split,
        "text_fields": list(data.text_fields),
        "label_names": list(task.label_names),
        "regression": bool(task.regression),
        "metrics": list(task.metrics),
        "source": data.source,
        "data_hash": data.fingerprint(),
        "full_data_hash": full_hash,
        "shard": "" if sh is None else f"{sh[0]}/{sh[1]}",
        "shard_index": "" if sh is None else sh[0],
        "shard_count": "" if sh is None else sh[1],
        "window_tokens": int(window_tokens),
        "max_norm_tie": float(MAX_NORM_TIE),  # the max_norm view's tie rule (pooling)
        "n_truncated": n_truncated,
        "probekit_version": lib["probekit"],
        "torch_version": lib["torch"],
        "transformers_version": lib["transformers"],
        "device": str(lm.device),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "batch_size": int(batch_size),
    }


def _open_writer(
    out: Path,
    lm: LoadedModel,
    data: TaskData,
    enc: Encoded,
    attrs: dict[str, Any],
    *,
    resume: bool,
    store_tokens: bool,
    storage_dtype: str,
) -> CacheWriter:
    """A new cache, or the partial one resumed after checking its identity."""
    part = partial_path(out)
    if resume and part.exists():
        identity = dict(
            attrs,
            storage_dtype=storage_dtype,
            store_tokens=bool(store_tokens),
            n_layers=lm.n_layers,
            hidden_size=lm.hidden_size,
            n_examples=len(data),
        )
        writer = CacheWriter.resume(out, identity)
        logger.info("resuming %s at example %d of %d", part, writer.n_done, len(data))
        return writer
    token_ids = None
    if store_tokens:
        token_ids = {
            "input_ids": enc.flat("input_ids", np.int32),
            "special_tokens_mask": enc.flat("special_tokens_mask", np.uint8),
            "word_ids": enc.flat("word_ids", np.int32),
            "sequence_ids": enc.flat("sequence_ids", np.int8),
        }
    return CacheWriter.create(
        out,
        attrs=attrs,
        labels=data.labels,
        example_index=data.example_index,
        lengths=enc.lengths,
        n_layers=lm.n_layers,
        hidden_size=lm.hidden_size,
        storage_dtype=storage_dtype,
        store_tokens=store_tokens,
        token_ids=token_ids,
    )


def _write_windows(
    lm: LoadedModel,
    enc: Encoded,
    writes: WindowWrites,
    windows: list[tuple[int, int]],
    offsets: np.ndarray,
    *,
    storage_dtype: str,
    store_tokens: bool,
    batch_size: int,
    n_buffers: int,
    bar: Any,
) -> None:
    """Run each window (length-sorted batches) and hand it to ``writes``.

    ``n_buffers`` host buffer sets are used in turn (two let the forward pass fill one while
    the writer thread writes the other). Off the CPU a window is assembled on the device and
    copied to the host buffers; on CUDA those are pinned and the copy does not block: the
    writer thread waits for its event before reading them.
    """
    sdt, cpu, on_cuda = STORAGE_DTYPES[storage_dtype], torch.device("cpu"), lm.device.type == "cuda"
    n_max = max((b - a for a, b in windows), default=0)
    t_max = max((int(offsets[b] - offsets[a]) for a, b in windows), default=0)
    n_tok = t_max if store_tokens else None
    hosts = [buffers(n_max, n_tok, lm, sdt, cpu, on_cuda) for _ in range(n_buffers)]
    stage = buffers(n_max, n_tok, lm, sdt, lm.device) if lm.device != cpu else None
    in_use: list[Future | None] = [None] * n_buffers
    for k, (a, b) in enumerate(windows):
        i, base, t = k % n_buffers, offsets[a], int(offsets[b] - offsets[a])
        if (used := in_use[i]) is not None:
            used.result()  # the buffer is free again (and the writer's errors surface here)
        order = a + np.argsort(enc.lengths[a:b], kind="stable")
        for rows in _batches(order, batch_size):
            fill_batch(lm, enc, rows, sdt, stage or hosts[i], rows - a, offsets[rows] - base)
            bar.update(int(enc.lengths[rows].sum()))
        sync = None
        if stage is not None:
            for key, v in hosts[i].items():
                m = t if key == "hidden" else b - a
                v[:m].copy_(stage[key][:m], non_blocking=on_cuda)
            if on_cuda:
                event = torch.cuda.Event()
                event.record()
                sync = event.synchronize
        views = {key: v[: t if key == "hidden" else b - a].numpy() for key, v in hosts[i].items()}
        pooled = {p: views[p] for p in POOLS}
        in_use[i] = writes.submit(a, b, pooled, views["pos"], views.get("hidden"), ready=sync)


def _pending(
    enc: Encoded, writer: CacheWriter, window_tokens: int, store_tokens: bool
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """``(token offsets [n_examples + 1], the windows still to write)``.

    Raises:
        CacheError: a partial file stopped off a window boundary.
    """
    offsets = np.zeros(len(enc) + 1, dtype=np.int64)
    np.cumsum(enc.lengths, out=offsets[1:])
    done = writer.n_done
    windows = [w for w in _windows(enc.lengths, window_tokens, store_tokens) if w[1] > done]
    if windows and windows[0][0] != done:
        writer.close()
        raise CacheError(
            f"{partial_path(writer.path)}: {done} examples done, which is not a window "
            "boundary; delete it to start over"
        )
    return offsets, windows


def _check_model(lm: LoadedModel, max_length: int) -> None:
    """Check that ``max_length`` fits the model's positions and its dtype suits its device."""
    max_pos = getattr(lm, "max_positions", None)
    if max_pos is not None and max_length > max_pos:
        raise ConfigError(
            f"max_length {max_length} exceeds the {max_pos} positions of model {lm.name}; "
            f"use --max-length {max_pos} or less"
        )
    check_cpu_dtype(lm.dtype, lm.device)


def _default_window_tokens(lm: LoadedModel, storage_dtype: str) -> int:
    """Tokens per window for about 256 MiB of ``[n_tokens, n_layers, H]`` vectors (>= 512)."""
    itemsize = 2 if storage_dtype == "float16" else 4
    return max(512, (256 * 2**20) // (lm.n_layers * lm.hidden_size * itemsize))


def _encoded(lm: LoadedModel, data: TaskData, max_length: int) -> Encoded:
    """Tokenise ``data`` (``[n_examples]`` token sequences); warn when some were truncated."""
    enc = encode(lm.tokenizer, data, max_length)
    if enc.n_truncated:
        logger.warning(
            "%d of %d examples are longer than max_length=%d tokens and were truncated",
            enc.n_truncated,
            len(data),
            max_length,
        )
    return enc


def _progress_bar(n_tokens: int, data: TaskData, progress: bool | None) -> Any:
    """A tokens/s bar over the ``n_tokens`` tokens still to run (None: only on a terminal)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=n_tokens,
        unit="tok",
        unit_scale=True,
        disable=None if progress is None else not progress,
        desc=f"extract {data.task.name}/{data.split}",
    )


def _write_cache(
    lm: LoadedModel,
    enc: Encoded,
    writer: CacheWriter,
    windows: list[tuple[int, int]],
    offsets: np.ndarray,
    bar: Any,
    *,
    storage_dtype: str,
    store_tokens: bool,
    batch_size: int,
    background_write: bool,
) -> Path:
    """Write the pending ``windows`` and finalize the cache; its path.

    ``offsets`` are the token offsets ``[n_examples + 1]``. The bar and the writer are
    closed whatever happens.
    """
    try:
        with WindowWrites(writer, background=background_write) as writes:
            _write_windows(
                lm,
                enc,
                writes,
                windows,
                offsets,
                storage_dtype=storage_dtype,
                store_tokens=store_tokens,
                batch_size=batch_size,
                n_buffers=2 if background_write and len(windows) > 1 else 1,
                bar=bar,
            )
        bar.close()
        return writer.finalize()
    finally:
        bar.close()
        writer.close()


def extract(
    lm: LoadedModel,
    data: TaskData,
    out: str | Path,
    *,
    batch_size: int = 32,
    max_length: int = 128,
    store_tokens: bool = True,
    storage_dtype: str = "float16",
    resume: bool = False,
    overwrite: bool = False,
    shard: str | tuple[int, int] | None = None,
    window_tokens: int | None = None,
    progress: bool | None = None,
    background_write: bool = True,
) -> ExtractionReport:
    """Extract every hidden state of ``lm`` over ``data`` into the cache ``out``.

    Args:
        lm: a loaded encoder (:func:`probekit.models.load_encoder`); its device is used.
        data: the examples (:func:`probekit.tasks.load_task`).
        out: the cache path; written as ``out.partial`` and renamed when complete.
        store_tokens: also store token-level vectors ``[n_tokens, n_layers, H]``
            (switch off for sentence-level work; pooled views are always stored).
        storage_dtype: ``float16`` (default) or ``float32``.
        resume: continue ``out.partial`` after checking that model, data and settings match.
        overwrite: replace an existing complete ``out``.
        shard: ``"i/n"``: extract only the i-th of n contiguous parts of ``data``.
        window_tokens: tokens per write window (default: about 256 MiB of buffered vectors).
        progress: show a tokens/s progress bar (None: only on a terminal).
        background_write: write each window on a background thread while the next one is
            computed (two window buffers); False writes in the caller (one buffer). The
            file is the same either way.

    Raises:
        ConfigError, DataError, CacheError, CacheMismatchError: bad settings, empty data,
            existing output, or a partial file made with other settings.
    """
    t0 = time.perf_counter()
    out = Path(out)
    data, sh, full_hash = _checked(
        data,
        out,
        batch_size=batch_size,
        storage_dtype=storage_dtype,
        shard=shard,
        resume=resume,
        overwrite=overwrite,
    )
    _check_model(lm, max_length)
    if window_tokens is None:
        window_tokens = _default_window_tokens(lm, storage_dtype)
    enc = _encoded(lm, data, max_length)
    attrs = _cache_attrs(
        lm,
        data,
        sh,
        full_hash,
        max_length=max_length,
        window_tokens=window_tokens,
        n_truncated=enc.n_truncated,
        batch_size=batch_size,
    )
    writer = _open_writer(
        out,
        lm,
        data,
        enc,
        attrs,
        resume=resume,
        store_tokens=store_tokens,
        storage_dtype=storage_dtype,
    )
    resumed_from = writer.n_done
    offsets, windows = _pending(enc, writer, window_tokens, store_tokens)
    n_tokens = int(offsets[-1] - offsets[resumed_from])
    bar = _progress_bar(n_tokens, data, progress)
    path = _write_cache(
        lm,
        enc,
        writer,
        windows,
        offsets,
        bar,
        storage_dtype=storage_dtype,
        store_tokens=store_tokens,
        batch_size=batch_size,
        background_write=background_write,
    )
    report = ExtractionReport(
        path,
        len(data),
        n_tokens,
        enc.n_truncated,
        lm.n_layers,
        lm.hidden_size,
        time.perf_counter() - t0,
        resumed_from,
    )
    logger.info("wrote %s: %d examples, %.0f tokens/s", path, len(data), report.tokens_per_s)
    return report
