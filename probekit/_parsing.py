"""Reading labels and texts out of data files: the rules every loader shares (what counts
as a missing label, label names vs indices, empty texts, UTF-8)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import DataError
from .taskspec import TaskSpec

__all__ = ["check_text", "label_array", "parse_label", "read_text"]

#: label values that mean "no label": refused in a labelled file rather than made a class
_MISSING = frozenset({"nan", ""})


def parse_label(
    task: TaskSpec, raw: str, where: str, label_names: Sequence[str] | None = None
) -> float | int:
    raw = raw.strip()
    if raw.lower() in _MISSING:
        raise DataError(f"{where}: missing label {raw!r} (NaN/empty labels are refused)")
    if task.regression:
        try:
            v: float | None = float(raw)
        except ValueError:
            raise DataError(
                f"{where}: label {raw!r} is not a number (task {task.name} is a regression task)"
            ) from None
        if not math.isfinite(v):
            raise DataError(f"{where}: label {raw!r} is not a finite number")
        return v
    names = list(label_names if label_names is not None else task.label_names)
    if raw in names:
        return names.index(raw)
    try:
        v = int(float(raw)) if raw.replace(".", "", 1).lstrip("-").isdigit() else None
    except ValueError:
        v = None
    if v is not None and 0 <= v < len(names) and float(raw) == v:
        return v
    raise DataError(
        f"{where}: label {raw!r} is outside the label set of task {task.name} "
        f"({', '.join(f'{i}={n}' for i, n in enumerate(names))})"
    )


def check_text(text: str | None, where: str, column: str) -> str:
    if text is None or not str(text).strip():
        raise DataError(f"{where}: empty text in column {column!r}")
    return str(text)


def read_text(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {line}: bytes {data[e.start : e.end]!r} at offset {e.start} "
            "are not valid UTF-8"
        ) from None


def label_array(task: TaskSpec, labels: list) -> np.ndarray:
    return np.asarray(labels, dtype=np.float32 if task.regression else np.int64)
