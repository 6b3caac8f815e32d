"""What a task is and what its examples look like: :class:`TaskSpec` and the registry of
GLUE tasks (:data:`TASKS`, :func:`get_task`, :func:`normalize_split`), and :class:`TaskData`.

Dependency-free on purpose (NumPy and :mod:`probekit.errors` only): the cache stores a
task's attributes and rebuilds its spec from them, and must not depend on the data loaders
of :mod:`probekit.tasks` (which re-exports every name here).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import DataError, TaskError

__all__ = ["TASKS", "TaskData", "TaskSpec", "get_task", "normalize_split"]


@dataclass(frozen=True)
class TaskSpec:
    """Static description of one task.

    Attributes:
        name: canonical (Hugging Face config) name, e.g. ``"sst2"``.
        glue_dir: directory name in the GLUE download layout, e.g. ``"SST-2"``.
        text_fields: one field for single-sentence tasks, two for sentence pairs.
        label_names: class names in label-index order (empty for regression).
        regression: True for STS-B (one real-valued target; ridge probes, MSE heads).
        metrics: official GLUE metric names, the first being the primary one.
        splits: split names available for this task.
    """

    name: str
    glue_dir: str
    text_fields: tuple[str, ...]
    label_names: tuple[str, ...]
    regression: bool
    metrics: tuple[str, ...]
    splits: tuple[str, ...] = ("train", "dev", "test")

    @property
    def num_labels(self) -> int:
        """Number of classes; 1 for regression."""
        return 1 if self.regression else len(self.label_names)

    @property
    def is_regression(self) -> bool:
        """Deprecated spelling of :attr:`regression` (one release)."""
        warnings.warn(
            "TaskSpec.is_regression is deprecated; use TaskSpec.regression",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.regression

    @property
    def is_pair(self) -> bool:
        return len(self.text_fields) == 2

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]


_NLI3 = ("entailment", "neutral", "contradiction")
_NLI2 = ("entailment", "not_entailment")

TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in [
        TaskSpec("cola", "CoLA", ("sentence",), ("unacceptable", "acceptable"), False, ("mcc",)),
        TaskSpec("sst2", "SST-2", ("sentence",), ("negative", "positive"), False, ("accuracy",)),
        TaskSpec(
            "mrpc",
            "MRPC",
            ("sentence1", "sentence2"),
            ("not_equivalent", "equivalent"),
            False,
            ("f1", "accuracy"),
        ),
        TaskSpec("stsb", "STS-B", ("sentence1", "sentence2"), (), True, ("pearson", "spearman")),
        TaskSpec(
            "qqp",
            "QQP",
            ("question1", "question2"),
            ("not_duplicate", "duplicate"),
            False,
            ("f1", "accuracy"),
        ),
        TaskSpec(
            "mnli",
            "MNLI",
            ("premise", "hypothesis"),
            _NLI3,
            False,
            ("accuracy",),
            splits=("train", "dev_matched", "dev_mismatched", "test_matched", "test_mismatched"),
        ),
        TaskSpec("qnli", "QNLI", ("question", "sentence"), _NLI2, False, ("accuracy",)),
        TaskSpec("rte", "RTE", ("sentence1", "sentence2"), _NLI2, False, ("accuracy",)),
        TaskSpec(
            "wnli",
            "WNLI",
            ("sentence1", "sentence2"),
            ("not_entailment", "entailment"),
            False,
            ("accuracy",),
        ),
        TaskSpec(
            "ax", "diagnostic", ("premise", "hypothesis"), _NLI3, False, ("mcc",), splits=("test",)
        ),
        TaskSpec(
            "demo",
            "demo",
            ("sentence",),
            ("negative", "positive"),
            False,
            ("accuracy",),
            splits=("train", "dev", "test"),
        ),
    ]
}

_ALIASES = {
    **{t.glue_dir.lower(): t.name for t in TASKS.values()},
    "sst-2": "sst2",
    "sts-b": "stsb",
    "mnli-m": "mnli",
    "mnli-mm": "mnli",
    "diagnostic": "ax",
    "glue-ax": "ax",
}


def get_task(name: str) -> TaskSpec:
    """Look a task up by HF config name (``sst2``) or GLUE directory name (``SST-2``)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in TASKS:
        raise TaskError(
            f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))} "
            "(GLUE directory names such as 'SST-2' also work)"
        )
    return TASKS[key]


def normalize_split(task: TaskSpec, split: str) -> str:
    """Canonical split name: ``validation`` -> ``dev``; MNLI's ``dev`` -> ``dev_matched``."""
    s = split.strip().lower().replace("-", "_")
    s = {
        "validation": "dev",
        "val": "dev",
        "validation_matched": "dev_matched",
        "validation_mismatched": "dev_mismatched",
    }.get(s, s)
    if task.name == "mnli" and s in ("dev", "test"):
        s = f"{s}_matched"
    if s not in task.splits:
        raise TaskError(
            f"task {task.name!r} has no split {split!r}; its splits: {', '.join(task.splits)}"
        )
    return s


@dataclass
class TaskData:
    """Examples of one split of one task, in source order.

    Attributes:
        task: the task's spec.
        split: canonical split name.
        texts: first text of each example, ``[n_examples]``.
        pairs: second text of each example for pair tasks, else None.
        labels: ``[n_examples]`` int64 class indices (-1 when unlabelled) or float32 scores.
        example_index: ``[n_examples]`` int64 position of each row in the source split.
        source: a human-readable description of where the data came from.
    """

    task: TaskSpec
    split: str
    texts: list[str]
    pairs: list[str] | None
    labels: np.ndarray
    example_index: np.ndarray
    source: str
    text_fields: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.texts)
        if self.pairs is not None and len(self.pairs) != n:
            raise DataError(f"{self.source}: {len(self.pairs)} pair texts for {n} texts")
        if len(self.labels) != n or len(self.example_index) != n:
            raise DataError(f"{self.source}: labels/example_index length differs from {n} texts")
        if not self.text_fields:
            self.text_fields = self.task.text_fields

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def has_labels(self) -> bool:
        if self.task.regression:
            return bool(len(self.labels)) and not np.isnan(self.labels).all()
        return bool(len(self.labels)) and bool((self.labels >= 0).any())

    def subset(self, idx: Sequence[int] | np.ndarray) -> TaskData:
        """Rows ``idx`` (positions in this object), keeping their ``example_index``."""
        idx = np.asarray(idx, dtype=np.int64)
        return TaskData(
            self.task,
            self.split,
            [self.texts[i] for i in idx],
            None if self.pairs is None else [self.pairs[i] for i in idx],
            self.labels[idx].copy(),
            self.example_index[idx].copy(),
            self.source,
            self.text_fields,
        )

    def head(self, limit: int | None) -> TaskData:
        """The first ``limit`` examples (all when None)."""
        if limit is None or limit >= len(self):
            return self
        if limit < 1:
            raise DataError(f"limit must be at least 1, got {limit}")
        return self.subset(np.arange(limit))

    def fingerprint(self) -> str:
        """SHA-256 over texts, pairs, labels and example indices (identifies the input data)."""
        h = hashlib.sha256()
        for i, t in enumerate(self.texts):
            h.update(t.encode("utf-8"))
            h.update(b"\x00")
            if self.pairs is not None:
                h.update(self.pairs[i].encode("utf-8"))
            h.update(b"\x01")
        h.update(np.ascontiguousarray(self.labels).tobytes())
        h.update(np.ascontiguousarray(self.example_index, dtype=np.int64).tobytes())
        return h.hexdigest()
