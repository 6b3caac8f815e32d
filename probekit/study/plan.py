"""A study's plan: the fine-tuning runs (each identified by a hash of its settings) and the
entries that say which table cell each run's score fills.

Many entries may point to one run: the full-width CLS run of a seed is the token-wise
``cls`` condition, the dimension-wise ``full`` reference and freezing's ``full_1layer``; it
is trained once. ``plan.json`` holds both lists (see the study directory contract in
:mod:`probekit.study`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._io import write_json
from ..provenance import stable_hash

__all__ = ["PLAN_FILE", "Entry", "Plan", "Run"]

PLAN_FILE = "plan.json"


@dataclass(frozen=True)
class Run:
    """One fine-tuning run of a study.

    Attributes:
        kind: ``finetune`` (one task), ``cross_then`` (start from ``start_from``'s encoder,
            train a new head on ``task``, then score ``kept_task`` with its kept head) or
            ``multihead`` (one encoder, one head per task of ``dims_per_task``).
        task: the task trained (``multihead``: the tasks joined by ``+``).
        seed: seeds head initialisation, dropout and data order.
        dims: the head's dimensions (None: full width).
        layer: the head's hidden state (resolved; 0 = embeddings).
        pool: ``cls``, ``max_norm`` or ``mean``.
        freeze: ``none`` or ``encoder``.
        head_layers: 1 or 2.
        config: the run's :meth:`~probekit.finetune.FinetuneConfig.to_dict` (model, recipe,
            budget: what makes two runs the same run).
        data: fingerprints of the training and eval examples.
    """

    kind: str
    task: str
    seed: int
    dims: tuple[int, ...] | None
    layer: int
    pool: str
    freeze: str
    head_layers: int
    config: dict[str, Any] = field(hash=False, compare=False)
    data: dict[str, str] = field(hash=False, compare=False)
    start_from: str | None = None
    kept_task: str | None = None
    dims_per_task: dict[str, list[int]] | None = field(default=None, hash=False, compare=False)

    @property
    def run_id(self) -> str:
        """16 hex digits of the hash of every setting (the run's directory name)."""
        return stable_hash(self.to_dict(with_id=False), length=16)

    @property
    def k(self) -> int | None:
        """Number of dimensions of the head (None: full width)."""
        return None if self.dims is None else len(self.dims)

    def to_dict(self, *, with_id: bool = True) -> dict[str, Any]:
        """The run's record in ``plan.json``."""
        d = asdict(self)
        d["dims"] = None if self.dims is None else list(self.dims)
        if self.kind == "multihead":
            d["tasks"] = list(self.dims_per_task or {})
        return {"run_id": self.run_id, **d} if with_id else d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Run:
        d = {k: v for k, v in d.items() if k not in ("run_id", "tasks")}
        d["dims"] = None if d["dims"] is None else tuple(d["dims"])
        return cls(**d)


@dataclass(frozen=True)
class Entry:
    """One scored observation: run ``run_id``'s score on ``score_task`` fills the cell
    (``experiment``, ``task``, ``condition``, ``group``) for ``seed``."""

    experiment: str
    task: str
    condition: str
    group: str
    seed: int
    run_id: str
    score_task: str
    dims: tuple[int, ...] | None
    layer: int
    pool: str
    freeze: str
    head_layers: int

    @property
    def k(self) -> int | None:
        return None if self.dims is None else len(self.dims)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dims"] = None if self.dims is None else list(self.dims)
        d["k"] = self.k
        return d


class Plan:
    """The runs and entries of a study, in the order they were added."""

    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self.entries: list[Entry] = []
        self._seen: set[Entry] = set()
        self.notes: dict[str, Any] = {}

    def add(
        self,
        run: Run,
        experiment: str,
        condition: str,
        group: str,
        *,
        task: str | None = None,
        dims: tuple[int, ...] | None = None,
    ) -> Run:
        """Add ``run`` (once) and an entry scoring it on ``task`` (default: the run's task;
        ``dims``: the entry's head dims when they are not the run's, as in a multi-head run)."""
        rid = run.run_id
        self.runs.setdefault(rid, run)
        t = task or run.task
        e = Entry(
            experiment, t, condition, group, run.seed, rid, t,
            run.dims if dims is None else dims, run.layer, run.pool, run.freeze, run.head_layers,
        )  # fmt: skip
        if e not in self._seen:
            self._seen.add(e)
            self.entries.append(e)
        return run

    def entries_of(self, experiment: str, task: str, condition: str) -> list[Entry]:
        return [
            e
            for e in self.entries
            if (e.experiment, e.task, e.condition) == (experiment, task, condition)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "study_plan",
            "n_runs": len(self.runs),
            "runs": [r.to_dict() for r in self.runs.values()],
            "entries": [e.to_dict() for e in self.entries],
            **self.notes,
        }

    def write(self, out: Path) -> Path:
        """Write ``OUT/plan.json`` (atomically) and return its path."""
        write_json(out / PLAN_FILE, self.to_dict())
        return out / PLAN_FILE
