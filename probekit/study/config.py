"""Settings of a study (``probekit study``): the tasks, the budget, the experiments, the
thresholds of the verdicts and the one fine-tuning recipe every condition shares.

A :class:`Budget` fixes the scale (training examples, epochs, seeds, random pairs); three are
built in (:data:`BUDGETS`): ``smoke`` (seconds per run; CI, with a tiny model), ``small``
(CoLA and SST-2 with the embedded MiniLM on a 2-core CPU in at most 90 minutes) and ``full``
(the paper's scale: bert-base-uncased, 3 epochs, a GPU). :class:`StudyConfig` holds the rest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from itertools import pairwise
from typing import Any

from ..errors import ConfigError
from ..models import DEFAULT_MODEL
from ..tasks import OwnFiles
from .thresholds import Thresholds

__all__ = ["BUDGETS", "EXPERIMENTS", "Budget", "Recipe", "StudyConfig", "parse_cross"]

#: the experiments, in the order they run and appear in the report
EXPERIMENTS = ("token", "dims", "layers", "freeze", "cross", "beyond")


@dataclass(frozen=True)
class Budget:
    """The scale of a study.

    Attributes:
        name: ``smoke``, ``small``, ``full`` (or your own).
        limit: training examples per task (a random subset drawn once with the study's seed;
            None: the whole split).
        eval_limit: eval (dev) examples per task (random subset; None: the whole split).
        epochs: passes over the training examples, every run.
        seeds: seeds of the comparisons the verdicts rest on (token, full width, the
            probe-chosen pair, the paper's triples, freezing).
        sweep_seeds: seeds of the sweeps (random pairs, probe-chosen k = 1 and 3, layers,
            cross-task, multi-head).
        random_pairs: random pairs of final-layer dimensions (experiment 2a).
        triples: random triples of the paper's procedure (experiment 2b).
        max_length: tokens per example.
        batch_size: examples per optimizer step.
        lr: the encoder's learning rate when it is not the recipe's (a budget of a few dozen
            optimizer steps needs a larger one: measured in ``benchmarks/bench_head_lr.py``).
        layers: the hidden states of the layer-wise sweep (negative: from the top; None:
            every one, embeddings included).
        model, tasks: what the command line uses when ``--model`` / ``--tasks`` are not given
            (None: ``minilm`` and ``cola,sst2``).
    """

    name: str
    limit: int | None
    eval_limit: int | None
    epochs: int
    seeds: int
    sweep_seeds: int
    random_pairs: int
    triples: int
    max_length: int = 128
    batch_size: int = 32
    lr: float | None = None
    layers: tuple[int, ...] | None = None
    model: str | None = None
    tasks: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"budget {self.name}: lr must be positive, got {self.lr}")
        for f in ("epochs", "seeds", "sweep_seeds", "random_pairs", "triples", "max_length"):
            v = getattr(self, f)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"budget {self.name}: {f} must be a positive integer, got {v!r}")
        for f in ("limit", "eval_limit"):
            v = getattr(self, f)
            if v is not None and v < 2:
                raise ConfigError(f"budget {self.name}: {f} must be at least 2, got {v}")


BUDGETS: dict[str, Budget] = {
    "smoke": Budget(
        "smoke",
        limit=48,
        eval_limit=32,
        epochs=1,
        seeds=2,
        sweep_seeds=1,
        random_pairs=2,
        triples=1,
        max_length=32,
        batch_size=16,
        lr=1e-4,
    ),
    "small": Budget(
        "small",
        limit=640,
        eval_limit=400,
        epochs=2,
        seeds=3,
        sweep_seeds=1,
        random_pairs=5,
        triples=1,
        max_length=64,
        batch_size=32,
        lr=1e-4,
        layers=(0, 2, 4, -1),
    ),
    "full": Budget(
        "full",
        limit=None,
        eval_limit=None,
        epochs=3,
        seeds=3,
        sweep_seeds=3,
        random_pairs=5,
        triples=3,
        max_length=128,
        batch_size=32,
        model="bert-base-uncased",
        tasks=("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte"),
    ),
}


@dataclass(frozen=True)
class Recipe:
    """The fine-tuning recipe every condition shares (so differences come from the head).

    probekit's choices (the paper publishes none): AdamW at ``lr`` for the encoder and
    ``head_lr`` for the head, linear warm-up over ``warmup_ratio`` of the steps then decay.
    :meth:`default` is :func:`probekit.finetune.study_recipe` (chosen by measurement).
    """

    lr: float
    head_lr: float
    warmup_ratio: float
    weight_decay: float

    @classmethod
    def default(cls) -> Recipe:
        from ..finetune import study_recipe

        return cls(**study_recipe())


def parse_cross(spec: str | None, tasks: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``A:B,C:D`` -> ``(("A","B"), ("C","D"))``; None: each task followed by the next.

    Raises:
        ConfigError: a pair that is not ``A:B`` of two different tasks of ``tasks``.
    """
    if spec is None:
        return tuple(pairwise(tasks))
    out = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        a, sep, b = part.partition(":")
        if not sep or not a or not b or a == b:
            raise ConfigError(f"--cross: {part!r} is not A:B with two different tasks")
        for t in (a, b):
            if t not in tasks:
                raise ConfigError(f"--cross: {t!r} is not one of --tasks {list(tasks)}")
        out.append((a, b))
    return tuple(out)


@dataclass
class StudyConfig:
    """Settings of :func:`probekit.study.run_study`.

    Attributes:
        model: encoder (``minilm``, a Hugging Face id or a local directory).
        tasks: GLUE task names (ignored with ``files``).
        out: the study directory.
        glue_dir: where the GLUE TSVs live (None: the hub, needs internet).
        files: one custom task from your own files (``--data FILE`` ...).
        budget: a name of :data:`BUDGETS` or a :class:`Budget`.
        seeds: override the budget's ``seeds``; random_pairs: override ``random_pairs``.
        experiments: which of :data:`EXPERIMENTS` to run.
        cross: ordered task pairs of the cross-task experiment (None: each task then the next).
        seed: the first seed; a condition's seeds are ``seed, seed + 1, ...``.
        device: where fine-tuning and extraction run (``cpu``, ``cuda``, ``auto``).
        backend: ``serial``, ``joblib``, ``ray`` or ``dask`` (runs of one phase in parallel).
        n_jobs: parallel runs (not ``serial``; the CPU's cores are split between them).
        threads: torch threads of every run (None: the cores divided among ``n_jobs``
            parallel runs; serial: torch's setting).
        recipe: the shared fine-tuning recipe.
        thresholds: the verdicts' thresholds.
        keep_models: keep every run's fine-tuned encoder (else only those a later run needs).
    """

    model: str = DEFAULT_MODEL
    tasks: tuple[str, ...] = ("cola", "sst2")
    out: str = "runs/study"
    glue_dir: str | None = None
    files: OwnFiles | None = None
    budget: str | Budget = "small"
    seeds: int | None = None
    random_pairs: int | None = None
    experiments: tuple[str, ...] = EXPERIMENTS
    cross: tuple[tuple[str, str], ...] | None = None
    seed: int = 0
    device: str = "cpu"
    backend: str = "serial"
    n_jobs: int = 1
    threads: int | None = None
    recipe: Recipe = field(default_factory=Recipe.default)
    thresholds: Thresholds = field(default_factory=Thresholds)
    keep_models: bool = False

    def __post_init__(self) -> None:
        self.tasks = tuple(self.tasks)
        self.experiments = tuple(self.experiments)
        bad = [e for e in self.experiments if e not in EXPERIMENTS]
        if bad or not self.experiments:
            raise ConfigError(f"experiments must be among {list(EXPERIMENTS)}, got {bad or []}")
        if isinstance(self.budget, str) and self.budget not in BUDGETS:
            raise ConfigError(f"budget must be one of {sorted(BUDGETS)}, got {self.budget!r}")
        if self.files is None and not self.tasks:
            raise ConfigError("a study needs at least one task (--tasks) or --data files")
        if len(set(self.tasks)) != len(self.tasks):
            raise ConfigError(f"tasks repeat: {list(self.tasks)}")
        if self.backend not in ("serial", "joblib", "ray", "dask"):
            raise ConfigError(f"backend must be serial, joblib, ray or dask, got {self.backend!r}")
        for name in ("seeds", "random_pairs"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name} must be at least 1, got {v}")
        if self.n_jobs < 1 or (self.threads is not None and self.threads < 1):
            raise ConfigError(
                f"n_jobs and threads must be at least 1, got {self.n_jobs} and {self.threads}"
            )
        if self.cross is not None:
            self.cross = tuple(tuple(p) for p in self.cross)  # type: ignore[misc]

    def resolved_budget(self) -> Budget:
        """The budget with ``seeds`` and ``random_pairs`` overrides applied."""
        b = BUDGETS[self.budget] if isinstance(self.budget, str) else self.budget
        over = {k: getattr(self, k) for k in ("seeds", "random_pairs") if getattr(self, k)}
        return replace(b, **over) if over else b

    def cross_pairs(self, tasks: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        """The ordered task pairs of the cross-task experiment."""
        if self.cross is None:
            return parse_cross(None, tasks)
        return parse_cross(",".join(f"{a}:{b}" for a, b in self.cross), tasks)

    def to_dict(self) -> dict[str, Any]:
        """The ``config`` block of ``study.json``."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["budget"] = self.resolved_budget().name
        out["recipe"] = asdict(self.recipe)
        out["thresholds"] = self.thresholds.to_dict()
        out["files"] = None if self.files is None else asdict(self.files)
        return out
