"""Task data loaders (and, re-exported from :mod:`probekit.taskspec`, the task registry).

Every GLUE task (and the AX diagnostic set) is described by a :class:`TaskSpec`: its text
field(s), label names, number of labels, whether it is a regression task, and its official
metric(s). Examples are loaded into a :class:`TaskData` from one of:

* a local ``glue_data/`` directory as the standard GLUE download script lays it out
  (:func:`load_glue_dir`),
* the Hugging Face hub, ``nyu-mll/glue`` (:func:`load_hub`),
* any CSV/TSV/JSONL file with named columns (:func:`load_table`),
* the built-in ``demo`` task that probekit generates itself (:func:`load_demo`, in
  :mod:`probekit.demo`).

:func:`load_task` dispatches between them. Rows are identified by their position in the
source split (``example_index``), never by their text.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .demo import load_demo
from .errors import ConfigError, DataError, TaskError
from .taskspec import TASKS, TaskData, TaskSpec, get_task, normalize_split

logger = logging.getLogger(__name__)

__all__ = [
    "TASKS",
    "OwnFiles",
    "TaskData",
    "TaskSpec",
    "get_task",
    "load_demo",
    "load_glue_dir",
    "load_hub",
    "load_own_files",
    "load_table",
    "load_task",
    "normalize_split",
]


# --------------------------------------------------------------------------------------
# label parsing
# --------------------------------------------------------------------------------------


#: label values that mean "no label": refused in a labelled file rather than made a class
_MISSING = frozenset({"nan", ""})


def _parse_label(
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


def _check_text(text: str | None, where: str, column: str) -> str:
    if text is None or not str(text).strip():
        raise DataError(f"{where}: empty text in column {column!r}")
    return str(text)


# --------------------------------------------------------------------------------------
# glue_data/ directory
# --------------------------------------------------------------------------------------

# (label column, text columns) per task in the GLUE download layout; None = no header.
_GLUE_COLUMNS: dict[str, tuple[str | int | None, tuple[str | int, ...]]] = {
    "cola": (1, (3,)),
    "sst2": ("label", ("sentence",)),
    "mrpc": ("Quality", ("#1 String", "#2 String")),
    "stsb": ("score", ("sentence1", "sentence2")),
    "qqp": ("is_duplicate", ("question1", "question2")),
    "mnli": ("gold_label", ("sentence1", "sentence2")),
    "qnli": ("label", ("question", "sentence")),
    "rte": ("label", ("sentence1", "sentence2")),
    "wnli": ("label", ("sentence1", "sentence2")),
    "ax": (None, ("sentence1", "sentence2")),
}


def _read_text(path: Path) -> str:
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


def _glue_file(task: TaskSpec, split: str, glue_dir: Path) -> Path:
    d = glue_dir / task.glue_dir
    if not d.is_dir():
        # accept glue_dir pointing at the task directory itself
        if (glue_dir / f"{split}.tsv").is_file() or glue_dir.name.lower() == task.glue_dir.lower():
            d = glue_dir
        else:
            raise DataError(
                f"{glue_dir}: no {task.glue_dir}/ directory (expected the GLUE download layout)"
            )
    if task.name == "ax":
        names = ["diagnostic.tsv", "AX.tsv", "test.tsv"]
    else:
        names = [f"{split}.tsv"]
    for n in names:
        if (d / n).is_file():
            return d / n
    raise DataError(f"{d}: no {' or '.join(names)} for split {split!r} of task {task.name}")


def load_glue_dir(
    task: TaskSpec | str, split: str, glue_dir: str | Path, limit: int | None = None
) -> TaskData:
    """Load a split from a local directory in the GLUE download-script layout.

    Handles the layout's quirks: unquoted TSV, CoLA without a header row (and its test file
    with one), float labels for STS-B, MNLI's ``dev_matched``/``dev_mismatched`` files, and
    the ``-`` gold label that some MNLI rows carry (mapped to unlabelled, -1). Test files have
    no labels; their labels are -1 (NaN for regression).

    Raises:
        DataError: naming the file, line and column for any malformed row.
    """
    task = get_task(task) if isinstance(task, str) else task
    split = normalize_split(task, split)
    path = _glue_file(task, split, Path(glue_dir))
    text = _read_text(path)
    rows = list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))
    label_col, text_cols = _GLUE_COLUMNS[task.name]
    headerless = task.name == "cola" and not (rows and rows[0] and rows[0][0] == "index")
    is_test = split.startswith("test") or task.name == "ax"
    if headerless:
        header = None
        body = list(enumerate(rows, start=1))
        col_idx = [int(c) for c in text_cols]
        lab_idx = int(label_col) if label_col is not None else None
    else:
        if not rows:
            raise DataError(f"{path}: file is empty")
        header = rows[0]
        body = list(enumerate(rows[1:], start=2))
        if task.name == "cola":  # CoLA test.tsv: index, sentence
            text_cols, label_col = ("sentence",), None
        missing = [c for c in text_cols if c not in header]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; header is {header}")
        col_idx = [header.index(str(c)) for c in text_cols]
        lab_idx = header.index(label_col) if (label_col in header and not is_test) else None
        if lab_idx is None and not is_test and label_col is not None:
            raise DataError(f"{path}: missing label column {label_col!r}; header is {header}")
    texts: list[str] = []
    pairs: list[str] = []
    labels: list[float | int] = []
    index: list[int] = []
    skipped = 0
    need = max(col_idx + ([lab_idx] if lab_idx is not None else []))
    for lineno, row in body:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        where = f"{path}: line {lineno}"
        if len(row) <= need:
            if task.name in ("qqp", "mnli"):  # a few known-malformed rows in the official files
                skipped += 1
                continue
            raise DataError(
                f"{where}: expected at least {need + 1} tab-separated fields, found {len(row)}"
            )
        a = _check_text(row[col_idx[0]], where, str(text_cols[0]))
        b = _check_text(row[col_idx[1]], where, str(text_cols[1])) if len(col_idx) > 1 else None
        if lab_idx is None:
            lab = float("nan") if task.regression else -1
        elif task.name == "mnli" and row[lab_idx].strip() == "-":
            lab = -1
        else:
            lab = _parse_label(task, row[lab_idx], f"{where}: column {label_col!r}")
        texts.append(a)
        if b is not None:
            pairs.append(b)
        labels.append(lab)
        index.append(len(index) + skipped)
        if limit is not None and len(texts) >= limit:
            break
    if skipped:
        logger.warning("%s: skipped %d malformed rows", path, skipped)
    if not texts:
        raise DataError(f"{path}: no examples")
    return TaskData(
        task,
        split,
        texts,
        pairs if task.is_pair else None,
        _label_array(task, labels),
        np.asarray(index, dtype=np.int64),
        f"glue_dir:{path}",
    )


def _label_array(task: TaskSpec, labels: list) -> np.ndarray:
    return np.asarray(labels, dtype=np.float32 if task.regression else np.int64)


# --------------------------------------------------------------------------------------
# Hugging Face hub
# --------------------------------------------------------------------------------------

_HUB_SPLITS = {
    "dev": "validation",
    "dev_matched": "validation_matched",
    "dev_mismatched": "validation_mismatched",
}


def load_hub(
    task: TaskSpec | str,
    split: str,
    limit: int | None = None,
    *,
    repo: str = "nyu-mll/glue",
    cache_dir: str | None = None,
) -> TaskData:
    """Load a split from the Hugging Face hub (``nyu-mll/glue``) through ``datasets``.

    Raises:
        TaskError: when the hub cannot be reached (offline), saying to pass a local
            ``--glue-dir`` instead.
    """
    task = get_task(task) if isinstance(task, str) else task
    if task.name == "demo":
        return load_demo(split, limit=limit)
    split = normalize_split(task, split)
    hub_split = _HUB_SPLITS.get(split, split)
    try:
        import datasets

        ds = datasets.load_dataset(repo, task.name, split=hub_split, cache_dir=cache_dir)
    except Exception as e:  # network errors come in many types
        raise TaskError(
            f"could not load {repo}/{task.name} split {hub_split!r} from the Hugging Face hub "
            f"({type(e).__name__}: {str(e)[:200]}). Offline? Download GLUE once and pass "
            "--glue-dir DIR (the glue_data/ layout), or --data FILE for your own data."
        ) from None
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    cols = [c for c in task.text_fields]
    texts = [
        _check_text(t, f"{repo}/{task.name}:{hub_split} row {i}", cols[0])
        for i, t in enumerate(ds[cols[0]])
    ]
    pairs = None
    if task.is_pair:
        pairs = [
            _check_text(t, f"{repo}/{task.name}:{hub_split} row {i}", cols[1])
            for i, t in enumerate(ds[cols[1]])
        ]
    raw = ds["label"]
    if task.regression:
        labels = np.asarray(raw, dtype=np.float32)
    else:
        labels = np.asarray(raw, dtype=np.int64)  # hub uses -1 for unlabelled test rows
    index = np.asarray(ds["idx"] if "idx" in ds.column_names else range(len(ds)), dtype=np.int64)
    return TaskData(task, split, texts, pairs, labels, index, f"hub:{repo}/{task.name}:{hub_split}")


# --------------------------------------------------------------------------------------
# any CSV / TSV / JSONL file
# --------------------------------------------------------------------------------------


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
    text = _read_text(path)
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
    if limit is not None:
        records = records[:limit]
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
    texts, pairs, labels = [], [], []
    for lineno, rec in records:
        where = f"{path}: line {lineno}"
        texts.append(_check_text(rec.get(text_col), where, text_col))
        if pair_col is not None:
            pairs.append(_check_text(rec.get(pair_col), where, pair_col))
        if label_col is None:
            labels.append(float("nan") if spec.regression else -1)
        else:
            raw = rec.get(label_col)
            if raw is None or str(raw).strip() == "":
                raise DataError(f"{where}: empty label in column {label_col!r}")
            labels.append(_parse_label(spec, str(raw), f"{where}: column {label_col!r}"))
    fields = (text_col,) + ((pair_col,) if pair_col else ())
    return TaskData(
        spec,
        split,
        texts,
        pairs if pair_col else None,
        _label_array(spec, labels),
        np.arange(len(texts), dtype=np.int64),
        f"file:{path}",
        fields,
    )


# --------------------------------------------------------------------------------------
# dispatcher
# --------------------------------------------------------------------------------------


def load_task(
    task: str | TaskSpec,
    split: str,
    *,
    glue_dir: str | Path | None = None,
    data: str | Path | None = None,
    text_col: str | None = None,
    pair_col: str | None = None,
    label_col: str | None = None,
    limit: int | None = None,
    hub: bool = True,
    regression: bool = False,
) -> TaskData:
    """Load ``split`` of ``task`` from the first source given.

    Order: ``data`` (a CSV/TSV/JSONL file with named columns) > ``glue_dir`` > the built-in
    ``demo`` task > the Hugging Face hub (when ``hub`` is True). With ``data`` and task
    ``custom`` (or None), ``regression`` makes the labels numbers to regress on.

    Raises:
        ConfigError: ``limit`` is not a positive count.
    """
    if limit is not None and (isinstance(limit, bool) or int(limit) < 1):
        raise ConfigError(f"limit must be a positive number of examples, got {limit!r}")
    if data is not None:
        if text_col is None:
            raise DataError(f"{data}: --text-col is required with --data")
        spec = None
        if task not in (None, "", "custom"):
            spec = get_task(task) if isinstance(task, str) else task
        return load_table(
            data,
            text_col,
            label_col,
            pair_col,
            task=spec,
            split=split,
            limit=limit,
            regression=bool(spec.regression) if spec is not None else regression,
        )
    spec = get_task(task) if isinstance(task, str) else task
    if spec.name == "demo":
        return load_demo(split, limit=limit)
    if glue_dir is not None:
        return load_glue_dir(spec, split, glue_dir, limit=limit)
    if not hub:
        raise TaskError(
            f"no data source for task {spec.name!r}: pass --glue-dir DIR or --data FILE"
        )
    return load_hub(spec, split, limit=limit)


@dataclass(frozen=True)
class OwnFiles:
    """A task given as your own training and evaluation files (CSV/TSV/JSONL).

    Attributes:
        train_data, eval_data: the two files.
        text_col, pair_col, label_col: their columns (``pair_col`` for sentence pairs).
        task: ``custom`` (labels are the training file's own sorted values) or a GLUE task
            whose label set the files use.
        regression: labels are numbers to regress on (custom tasks only).
    """

    train_data: str
    eval_data: str
    text_col: str
    label_col: str
    pair_col: str | None = None
    task: str = "custom"
    regression: bool = False


def load_own_files(
    files: OwnFiles, *, limit: int | None = None, eval_limit: int | None = None
) -> tuple[TaskData, TaskData]:
    """``(train, eval)`` from :class:`OwnFiles`, sharing one label set.

    The eval file is read with the training file's task, so a label only the eval file has
    is an error naming the file and line (never a silently shifted class index).
    """
    if files.regression and files.task not in ("", "custom"):
        raise ConfigError(
            "--regression is for custom tasks; a GLUE --task already says whether it regresses"
        )
    cols: dict[str, Any] = dict(
        text_col=files.text_col, pair_col=files.pair_col, label_col=files.label_col
    )
    train = load_task(
        files.task or "custom",
        "train",
        data=files.train_data,
        regression=files.regression,
        limit=limit,
        **cols,
    )
    ev = load_task(train.task, "dev", data=files.eval_data, limit=eval_limit, **cols)
    return train, ev
