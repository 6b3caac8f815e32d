"""Feature checks and standardisation, as ``sklearn.preprocessing.StandardScaler`` does it.

Features are standardised with the mean and (population) standard deviation of the training
data only; a constant feature keeps scale 1. Inputs may be float16 (as the cache stores
them): they are read in row chunks and upcast chunk by chunk, never modified or copied whole.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ..errors import DataError

__all__ = ["as_features", "row_blocks", "standardization_stats", "standardized_columns"]

#: bytes of one float64 block of rows: small enough to stay in the CPU's cache and below
#: glibc's mmap threshold (a 50 MB block was mapped afresh, and page-faulted, every time:
#: 8,192-row blocks of 768 columns made these loops 2x slower)
BLOCK_BYTES = 2 * 2**20


def row_blocks(n: int, width: int, rows: int | None = None) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of the row blocks in which a chunked pass over ``[n, width]`` upcasts
    to float64: ``rows`` each, or (default) as many as fill :data:`BLOCK_BYTES`."""
    if rows is None:
        rows = max(16, BLOCK_BYTES // (8 * max(int(width), 1)))
    for i in range(0, n, rows):
        yield i, min(n, i + rows)


def as_features(X, name: str) -> np.ndarray:
    """``X`` as a numeric 2-d array ``[n_examples, n_dims]`` with ``n_examples >= 1``.

    Raises:
        DataError: naming ``name``, for any other shape or a non-numeric dtype.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(f"{name}: expected a 2-d array [n_examples, n_dims], got shape {X.shape}")
    if X.shape[0] == 0:
        raise DataError(f"{name}: no examples")
    if not np.issubdtype(X.dtype, np.floating) and not np.issubdtype(X.dtype, np.integer):
        raise DataError(f"{name}: expected a numeric array, got dtype {X.dtype}")
    return X


#: dtypes ``torch.from_numpy`` takes as they are (others are upcast by numpy first)
_TORCH_DTYPES = frozenset(
    np.dtype(t)
    for t in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8")
)


def _block64(X: np.ndarray, i: int, j: int, cols: np.ndarray | None = None) -> torch.Tensor:
    """Rows ``i:j`` of ``X`` (the columns ``cols``, or all) as a new float64 CPU tensor
    ``[j - i, k]``: the one upcast of every chunked pass (torch's conversion and arithmetic
    are vectorised; the values are numpy's, bit for bit). ``X`` is never modified."""
    b = X[i:j] if cols is None else X[i:j][:, cols]
    if b.dtype not in _TORCH_DTYPES or any(st < 0 for st in b.strides):
        return torch.from_numpy(np.array(b, dtype=np.float64))
    if not b.flags.writeable:
        b = np.array(b)  # (torch.from_numpy warns on read-only arrays; a block is small)
    return torch.from_numpy(b).to(torch.float64, copy=True)


def _all_columns(cols: np.ndarray, D: int) -> bool:
    """Whether ``cols`` is ``0..D-1`` in order (no column gather needed)."""
    return len(cols) == D and bool((np.asarray(cols) == np.arange(D)).all())


def _column_indices(cols, D: int) -> np.ndarray:
    """``cols`` as int64 indices into ``D`` columns.

    Raises:
        DataError: for anything but integers in ``[-D, D)`` (a boolean mask would otherwise
            become the indices 0 and 1).
    """
    c = np.asarray(cols)
    if c.ndim != 1 or (c.size and not np.issubdtype(c.dtype, np.integer)):
        raise DataError(f"cols: expected a 1-d array of column indices, got {c.dtype} {c.shape}")
    if c.size and (c.min() < -D or c.max() >= D):
        raise DataError(f"cols: indices must lie in [0, {D}), got {c.min()}..{c.max()}")
    return c.astype(np.int64, copy=False)


def standardization_stats(
    X, *, cols: np.ndarray | None = None, rows_per_chunk: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale (float64) of ``X [n, D]``, or of its columns ``cols [k]`` (``[k]``
    then), as ``StandardScaler`` computes them (population standard deviation; scale 1 for
    a constant column). Reads ``X`` in row chunks, upcasting each to float64, so a float16
    cache never needs a full float64 copy (nor a copy of the columns)."""
    X = as_features(X, "X")
    n, D = X.shape
    sel = None if cols is None else _column_indices(cols, D)
    sel = None if sel is None or _all_columns(sel, D) else sel
    k = D if sel is None else len(sel)
    blocks = list(row_blocks(n, k, rows_per_chunk))
    s1 = torch.zeros(k, dtype=torch.float64)
    for i, j in blocks:
        s1 += _block64(X, i, j, sel).sum(0)
    mean_t = s1 / n
    s2 = torch.zeros(k, dtype=torch.float64)
    for i, j in blocks:
        d = _block64(X, i, j, sel).sub_(mean_t)
        s2 += d.mul_(d).sum(0)
    mean = mean_t.numpy()
    scale = np.sqrt(s2.numpy() / n)
    # as sklearn's _handle_zeros_in_scale: (near-)constant columns are left unscaled
    tiny = 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mean))
    scale[scale < tiny] = 1.0
    if not np.isfinite(mean).all() or not np.isfinite(scale).all():
        raise DataError("X: features contain NaN or infinite values")
    return mean, scale


def standardized_columns(
    X: np.ndarray,
    cols: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    device: torch.device,
    rows_per_chunk: int | None = None,
    *,
    by_rows: bool = False,
) -> torch.Tensor:
    """``((X[:, cols] - mean[cols]) / scale[cols]).T``: a contiguous float32 tensor
    ``[len(cols), n]`` on ``device`` (one row per column, the layout every kernel reads), or
    with ``by_rows`` the same values as ``[n, len(cols)]`` (the wide solvers' layout); built
    from float64 row blocks of ``X [n, D]`` (never mutated; ``mean``, ``scale`` ``[D]``)."""
    n = X.shape[0]
    cols = _column_indices(cols, X.shape[1])
    shape = (n, len(cols)) if by_rows else (len(cols), n)
    out = torch.empty(shape, dtype=torch.float32, device=device)
    m = torch.from_numpy(np.asarray(mean, dtype=np.float64)[cols])
    s = torch.from_numpy(np.asarray(scale, dtype=np.float64)[cols])
    sel = None if _all_columns(cols, X.shape[1]) else cols
    for i, j in row_blocks(n, len(cols), rows_per_chunk):
        block = _block64(X, i, j, sel).sub_(m).div_(s)  # float64, rounded once to float32
        if by_rows:
            out[i:j].copy_(block)
        else:
            out[:, i:j].copy_(block.T)
    return out
