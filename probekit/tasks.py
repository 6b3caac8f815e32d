"""Task data loaders (and, re-exported from :mod:`probekit.taskspec`, the task registry).

Every GLUE task (and the AX diagnostic set) is described by a :class:`TaskSpec`: its text
field(s), label names, number of labels, whether it is a regression task, and its official
metric(s). Examples are loaded into a :class:`TaskData` from one of:

* a local ``glue_data/`` directory as the standard GLUE download script lays it out
  (:func:`load_glue_dir`),
* the Hugging Face hub, ``nyu-mll/glue`` (:func:`load_hub`),
* any CSV/TSV/JSONL file with named columns (:func:`load_table`, in :mod:`probekit.tables`),
* the built-in ``demo`` task that probekit generates itself (:func:`load_demo`, in
  :mod:`probekit.demo`).

:func:`load_task` dispatches between them. Rows are identified by their position in the
source split (``example_index``), never by their text.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._parsing import check_text, label_array, parse_label, read_text
from .demo import load_demo
from .errors import ConfigError, DataError, TaskError
from .tables import load_table
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


@dataclass(frozen=True)
class _GlueColumns:
    """Where one GLUE file's fields are.

    Attributes:
        text_names, label_name: the text column(s) and label column as the layout names them
            (header names, or positions for headerless CoLA), for error messages.
        text_idx: position of each text column in a row, ``[1 or 2]``.
        label_idx: position of the label column, None when the file has no labels.
    """

    text_names: tuple[str | int, ...]
    label_name: str | int | None
    text_idx: list[int]
    label_idx: int | None


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
    text = read_text(path)
    rows = list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))
    body, cols = _glue_columns(task, split, path, rows)
    texts, pairs, labels, index = _glue_examples(task, path, body, cols, limit)
    if not texts:
        raise DataError(f"{path}: no examples")
    return TaskData(
        task,
        split,
        texts,
        pairs if task.is_pair else None,
        label_array(task, labels),
        np.asarray(index, dtype=np.int64),
        f"glue_dir:{path}",
    )


def _glue_columns(
    task: TaskSpec, split: str, path: Path, rows: list[list[str]]
) -> tuple[list[tuple[int, list[str]]], _GlueColumns]:
    """The body rows, ``[n_rows]`` of ``(line number, fields)``, and where their fields are.

    CoLA's train/dev files have no header row (their columns are positions); every other
    file's first row is its header, checked for the task's text and label columns.
    """
    label_col, text_cols = _GLUE_COLUMNS[task.name]
    headerless = task.name == "cola" and not (rows and rows[0] and rows[0][0] == "index")
    is_test = split.startswith("test") or task.name == "ax"
    if headerless:
        body = list(enumerate(rows, start=1))
        col_idx = [int(c) for c in text_cols]
        lab_idx = int(label_col) if label_col is not None else None
        return body, _GlueColumns(text_cols, label_col, col_idx, lab_idx)
    if not rows:
        raise DataError(f"{path}: file is empty")
    body = list(enumerate(rows[1:], start=2))
    if task.name == "cola":  # CoLA test.tsv: index, sentence
        text_cols, label_col = ("sentence",), None
    return body, _header_columns(path, rows[0], text_cols, label_col, is_test)


def _header_columns(
    path: Path,
    header: list[str],
    text_cols: tuple[str | int, ...],
    label_col: str | int | None,
    is_test: bool,
) -> _GlueColumns:
    """Find the text and label columns in ``header`` (no label column read for test files).

    Raises:
        DataError: a text column, or a labelled split's label column, is not in the header.
    """
    missing = [c for c in text_cols if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; header is {header}")
    col_idx = [header.index(str(c)) for c in text_cols]
    lab_idx = header.index(label_col) if (label_col in header and not is_test) else None
    if lab_idx is None and not is_test and label_col is not None:
        raise DataError(f"{path}: missing label column {label_col!r}; header is {header}")
    return _GlueColumns(text_cols, label_col, col_idx, lab_idx)


def _glue_examples(
    task: TaskSpec,
    path: Path,
    body: list[tuple[int, list[str]]],
    cols: _GlueColumns,
    limit: int | None,
) -> tuple[list[str], list[str], list[float | int], list[int]]:
    """``(texts, pairs, labels, example_index)``, each ``[n_examples]`` (pairs empty for
    single-text tasks), from the body rows, stopping after ``limit`` examples.

    Blank rows are passed over; rows with too few fields are an error, except in QQP and
    MNLI, whose official files carry a few: those are skipped (and logged once), and still
    count in ``example_index``.
    """
    texts: list[str] = []
    pairs: list[str] = []
    labels: list[float | int] = []
    index: list[int] = []
    skipped = 0
    need = max(cols.text_idx + ([cols.label_idx] if cols.label_idx is not None else []))
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
        a, b, lab = _glue_example(task, row, cols, where)
        texts.append(a)
        if b is not None:
            pairs.append(b)
        labels.append(lab)
        index.append(len(index) + skipped)
        if limit is not None and len(texts) >= limit:
            break
    if skipped:
        logger.warning("%s: skipped %d malformed rows", path, skipped)
    return texts, pairs, labels, index


def _glue_example(
    task: TaskSpec, row: list[str], cols: _GlueColumns, where: str
) -> tuple[str, str | None, float | int]:
    """One row's ``(text, pair text or None, label)``; the label is -1 (NaN for regression)
    without a label column, and -1 for MNLI's ``-`` gold label.

    Raises:
        DataError: an empty text or a bad label, naming ``where`` (file and line) and the column.
    """
    a = check_text(row[cols.text_idx[0]], where, str(cols.text_names[0]))
    b = (
        check_text(row[cols.text_idx[1]], where, str(cols.text_names[1]))
        if len(cols.text_idx) > 1
        else None
    )
    lab: float | int
    if cols.label_idx is None:
        lab = float("nan") if task.regression else -1
    elif task.name == "mnli" and row[cols.label_idx].strip() == "-":
        lab = -1
    else:
        lab = parse_label(task, row[cols.label_idx], f"{where}: column {cols.label_name!r}")
    return a, b, lab


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
        check_text(t, f"{repo}/{task.name}:{hub_split} row {i}", cols[0])
        for i, t in enumerate(ds[cols[0]])
    ]
    pairs = None
    if task.is_pair:
        pairs = [
            check_text(t, f"{repo}/{task.name}:{hub_split} row {i}", cols[1])
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
