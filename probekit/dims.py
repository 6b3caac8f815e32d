"""The one ``--dims`` grammar, shared by probing, searching and fine-tuning.

A dimension selection is ``"all"`` (or ``None``), a comma-separated list of integers and
inclusive ranges (``"3,17"``, ``"0-9,200"``), or a sequence of ints. Negative integers count
from the end (``-1`` is the last dimension); ranges take non-negative bounds. Repeats are
refused: a probe on ``3,3`` is a mistake, not a one-dimensional probe.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .errors import ConfigError

__all__ = ["head_dims", "parse_dims"]

_RANGE = re.compile(r"^(\d+)-(\d+)$")


def _tokens(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        m = _RANGE.match(part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise ConfigError(
                    f"--dims: range {part!r} is empty (write it low-high, e.g. '0-9')"
                )
            out.extend(range(lo, hi + 1))
            continue
        try:
            out.append(int(part))
        except ValueError:
            raise ConfigError(
                f"--dims: {part!r} is not an integer or a range; "
                "expected 'all' or e.g. '12,200' or '0-9'"
            ) from None
    return out


def parse_dims(spec: str | Sequence[int] | np.ndarray | None, n_dims: int) -> np.ndarray:
    """Parse a dimension selection into indices, in the order given.

    Args:
        spec: ``None`` / ``"all"``, a string such as ``"12,200"`` or ``"0-9"``, or ints.
        n_dims: the width of the vectors the dimensions index (e.g. 384).

    Returns:
        ``[k]`` int64 indices in ``[0, n_dims)``, in the order given.

    Raises:
        ConfigError: an empty selection, a non-integer, an index out of range, or a repeat,
            naming the value at fault.
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return np.arange(n_dims, dtype=np.int64)
    vals = _tokens(spec) if isinstance(spec, str) else [int(v) for v in spec]
    if not vals:
        raise ConfigError(f"--dims: empty selection {spec!r} (use 'all' for every dimension)")
    arr = np.asarray(vals, dtype=np.int64)
    bad = arr[(arr < -n_dims) | (arr >= n_dims)]
    if bad.size:
        raise ConfigError(f"--dims: {bad.tolist()} out of range for {n_dims} dimensions")
    arr = np.where(arr < 0, arr + n_dims, arr)
    uniq, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        raise ConfigError(f"--dims: dimension(s) {uniq[counts > 1].tolist()} repeated in {spec!r}")
    return arr


def head_dims(spec: str | Sequence[int] | np.ndarray | None, n_dims: int) -> tuple[int, ...] | None:
    """The selection as a fine-tuning head stores it: sorted indices, or ``None`` for all.

    Same grammar and errors as :func:`parse_dims`; a selection of every dimension (in any
    order) becomes ``None``, the full-width head.
    """
    if spec is None:
        return None
    dims = tuple(sorted(int(d) for d in parse_dims(spec, n_dims)))
    return None if len(dims) == n_dims else dims
