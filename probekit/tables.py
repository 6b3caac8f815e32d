"""Your own data: any CSV, TSV or JSONL file with named columns, as a :class:`TaskData`
(:func:`load_table`); a custom task takes its label set from the file."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._parsing import check_text, label_array, parse_label, read_text
from .errors import DataError
from .taskspec import TaskData, TaskSpec, get_task

logger = logging.getLogger(__name__)

__all__ = ["load_table"]


def _custom_task(label_values: list[str], regression: bool) -> TaskSpec:
    if regression:
        return TaskSpec("custom", "custom", ("text",), (), True, ("pearson", "spearman"))
    return TaskSpec(
        "custom",
        "custom",
        ("text",),
        tuple(label_values),
        False,
        ("accuracy",) if len(label_values) > 2 else ("accuracy", "f1"),
    )


def load_table(
    path: str | Path,
    text_col: str,
    label_col: str | None = None,
    pair_col: str | None = None,
    *,
    task: TaskSpec | str | None = None,
    split: str = "train",
    regression: bool = False,
    limit: int | None = None,
    label_names: Sequence[str] | None = None,
) -> TaskData:
    """Load examples from a CSV, TSV or JSONL file with named columns.

    Args:
        path: ``.csv``, ``.tsv`` (or ``.txt``) with a header row, or ``.jsonl``/``.json`` lines.
        text_col, pair_col, label_col: column names (pair and label optional).
        task: interpret labels with this GLUE task's label set; when None, a ``custom``
            task is made whose labels are the sorted distinct values (or floats with
            ``regression=True``), unless ``label_names`` fixes them.
        split: the split name recorded with the data.

    Raises:
        DataError: missing columns (listing the columns present), empty texts, bad labels,
            undecodable bytes, each naming the file and line.
    """
    path = Path(path)
    records = _records(path, text_col, label_col, pair_col)
    if limit is not None:
        records = records[:limit]
    spec = _table_task(records, text_col, label_col, pair_col, task, regression, label_names)
    texts, pairs, labels = _rows(path, records, spec, text_col, label_col, pair_col)
    fields = (text_col,) + ((pair_col,) if pair_col else ())
    return TaskData(
        spec,
        split,
        texts,
        pairs if pair_col else None,
        label_array(spec, labels),
        np.arange(len(texts), dtype=np.int64),
        f"file:{path}",
        fields,
    )


def _records(path: Path, text_col, label_col, pair_col) -> list[tuple[int, dict]]:
    """``[(line number, record)]`` of the file (CSV, TSV or JSON lines), after checking that
    it can be read and parsed, is not empty and has the named columns (a :class:`DataError`
    naming the file, line or column otherwise)."""
    text = read_text(path)
    suffix = path.suffix.lower()
    records: list[tuple[int, dict]] = []
    if suffix in (".jsonl", ".json", ".ndjson"):
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}: line {lineno}: invalid JSON ({e.msg})") from None
            if not isinstance(rec, dict):
                raise DataError(f"{path}: line {lineno}: expected a JSON object per line")
            records.append((lineno, rec))
        columns = set().union(*(r.keys() for _, r in records)) if records else set()
    elif suffix in (".csv", ".tsv", ".txt"):
        delim = "," if suffix == ".csv" else "\t"
        reader = csv.DictReader(io.StringIO(text), delimiter=delim)
        columns = set(reader.fieldnames or [])
        for lineno, rec in enumerate(reader, start=2):
            records.append((lineno, rec))
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r} (use .csv, .tsv or .jsonl)")
    if not text.strip():
        raise DataError(f"{path}: empty file (no header, no examples)")
    for role, col in (("text", text_col), ("pair", pair_col), ("label", label_col)):
        if col is not None and col not in columns:
            raise DataError(f"{path}: no {role} column {col!r}; columns are {sorted(columns)}")
    if not records:
        raise DataError(f"{path}: empty file (no examples)")
    return records


def _table_task(records, text_col, label_col, pair_col, task, regression, label_names):
    """The task the labels are read with: the given GLUE task (or spec), else a ``custom``
    one (labels: ``label_names``, the sorted distinct values, or floats), a pair task when
    ``pair_col`` is given."""
    if task is not None:
        spec = get_task(task) if isinstance(task, str) else task
    elif label_col is None:
        spec = _custom_task(list(label_names or []), regression)
    elif regression:
        spec = _custom_task([], True)
    else:
        names = (
            list(label_names)
            if label_names
            else sorted({str(r.get(label_col, "")).strip() for _, r in records})
        )
        spec = _custom_task(names, False)
    if pair_col is not None and not spec.is_pair:
        spec = TaskSpec(
            spec.name,
            spec.glue_dir,
            (text_col, pair_col),
            spec.label_names,
            spec.regression,
            spec.metrics,
            spec.splits,
        )
    return spec


def _rows(path: Path, records, spec: TaskSpec, text_col, label_col, pair_col):
    """``(texts, pairs, labels)`` of the records, each checked (empty texts and labels, and
    labels outside the task's, raise a :class:`DataError` naming the line and column);
    without a label column, the unlabelled value (-1, or NaN for regression)."""
    texts, pairs, labels = [], [], []
    for lineno, rec in records:
        where = f"{path}: line {lineno}"
        texts.append(check_text(rec.get(text_col), where, text_col))
        if pair_col is not None:
            pairs.append(check_text(rec.get(pair_col), where, pair_col))
        if label_col is None:
            labels.append(float("nan") if spec.regression else -1)
        else:
            raw = rec.get(label_col)
            if raw is None or str(raw).strip() == "":
                raise DataError(f"{where}: empty label in column {label_col!r}")
            labels.append(parse_label(spec, str(raw), f"{where}: column {label_col!r}"))
    return texts, pairs, labels
