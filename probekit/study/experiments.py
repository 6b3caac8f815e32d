"""The paper's experiments as lists of fine-tuning runs (one builder per experiment).

Every builder adds :class:`~.plan.Run` s and their :class:`~.plan.Entry` s to a
:class:`~.plan.Plan` from a :class:`Context` (the study's settings, data, encoder shape and
probe results). Conditions and groups are those of the study directory contract
(:mod:`probekit.study`). Seeds: ``budget.seeds`` for the comparisons the verdicts rest on,
``budget.sweep_seeds`` for the sweeps.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from .config import Budget, StudyConfig
from .data import TaskSplits
from .plan import Plan, Run

__all__ = ["BUILDERS", "Context", "add_effective_pairs", "effective_dims"]


@dataclass
class Context:
    """What the builders need.

    Attributes:
        config: the study's settings; budget: its resolved budget.
        data: ``{task: (train, eval)}``.
        hidden_size: encoder width; n_layers: hidden states (embeddings included).
        probes: ``{task: probe.json record}`` of the pre-trained encoder.
    """

    config: StudyConfig
    budget: Budget
    data: TaskSplits
    hidden_size: int
    n_layers: int
    probes: dict[str, dict[str, Any]]
    _data_ids: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    @property
    def tasks(self) -> list[str]:
        return list(self.data)

    @property
    def final(self) -> int:
        return self.n_layers - 1

    def sweep_layers(self) -> list[int]:
        """The layer-wise sweep's hidden states (resolved, sorted; the final one included)."""
        chosen = self.budget.layers or range(self.n_layers)
        return sorted({*(lay % self.n_layers for lay in chosen), self.final})

    def seeds(self, sweep: bool = False) -> list[int]:
        n = self.budget.sweep_seeds if sweep else self.budget.seeds
        return [self.config.seed + i for i in range(n)]

    def pair(self, task: str) -> tuple[int, ...]:
        """The pair cached probes rank best on the pre-trained encoder's final layer."""
        return tuple(sorted(self.probes[task]["best_pair"]))

    def ranked(self, task: str, k: int) -> tuple[int, ...]:
        return tuple(sorted(self.probes[task]["ranked"][str(k)]))

    def draw(self, task: str, stream: int, i: int, k: int, exclude: tuple = ()) -> tuple:
        """``k`` random dimensions (sorted) for draw ``i`` of ``stream`` on ``task``."""
        rng = np.random.default_rng([self.config.seed, zlib.crc32(task.encode()), stream, i])
        pool = np.setdiff1d(np.arange(self.hidden_size), np.asarray(exclude, dtype=int))
        return tuple(sorted(int(d) for d in rng.choice(pool, size=k, replace=False)))

    def random_pair(self, task: str, i: int) -> tuple[int, ...]:
        return self.draw(task, 1, i, 2)

    def run(
        self,
        task: str,
        seed: int,
        dims: tuple[int, ...] | None,
        *,
        layer: int | None = None,
        pool: str = "cls",
        freeze: str = "none",
        head_layers: int = 1,
        **extra: Any,
    ) -> Run:
        """A :class:`Run` with the study's recipe and budget."""
        from ..finetune import FinetuneConfig, HeadConfig

        layer = self.final if layer is None else layer
        b, r = self.budget, self.config.recipe
        head = HeadConfig(
            dims="all" if dims is None else list(dims),
            layer=layer,
            pool=pool,
            head_layers=head_layers,
        )
        fc = FinetuneConfig(
            model=self.config.model, task=task.split("+")[0], head=head, freeze=freeze,
            lr=b.lr or r.lr, head_lr=r.head_lr, warmup_ratio=r.warmup_ratio,
            weight_decay=r.weight_decay, batch_size=b.batch_size, epochs=b.epochs,
            max_length=b.max_length, seed=seed, checkpoint_every=0,
        )  # fmt: skip
        data = {t: self.data_id(t) for t in task.split("+")}
        return Run(
            kind=extra.pop("kind", "finetune"), task=task, seed=seed, dims=dims, layer=layer,
            pool=pool, freeze=freeze, head_layers=head_layers, config=fc.to_dict(),
            data=data, **extra,
        )  # fmt: skip

    def data_id(self, task: str) -> str:
        """Fingerprints of the task's training and eval examples (hashed once per task: a
        plan builds hundreds of runs, and a full GLUE split is hundreds of thousands of rows)."""
        if task not in self._data_ids:
            tr, ev = self.data[task]
            self._data_ids[task] = f"{tr.fingerprint()[:16]}:{ev.fingerprint()[:16]}"
        return self._data_ids[task]


def token(plan: Plan, ctx: Context) -> None:
    """1. Heads on ``cls``, ``max_norm`` and ``mean`` at full width, 1-layer head."""
    for t in ctx.tasks:
        for s in ctx.seeds():
            for pool in ("cls", "max_norm", "mean"):
                plan.add(ctx.run(t, s, None, pool=pool), "token", pool, "full")


def dims(plan: Plan, ctx: Context) -> None:
    """2. Random pairs; the paper's triples and their 2-subsets; probe-chosen k = 1, 2, 3."""
    for t in ctx.tasks:
        for s in ctx.seeds():
            plan.add(ctx.run(t, s, None), "dims", "full", "full")
            plan.add(ctx.run(t, s, ctx.pair(t)), "dims", "probe_pair", "probe")
            plan.add(ctx.run(t, s, ctx.pair(t)), "dims", "probe_k2", "probe")
        for s in ctx.seeds(sweep=True):
            for i in range(ctx.budget.random_pairs):
                plan.add(ctx.run(t, s, ctx.random_pair(t, i)), "dims", "random_pair", f"r{i}")
            for k in (1, 3):
                plan.add(ctx.run(t, s, ctx.ranked(t, k)), "dims", f"probe_k{k}", "probe")
        for i in range(ctx.budget.triples):
            tri = ctx.draw(t, 2, i, 3)
            for s in ctx.seeds():
                plan.add(ctx.run(t, s, tri), "dims", "triple", f"t{i}")
                for d in tri:
                    sub = tuple(x for x in tri if x != d)
                    plan.add(ctx.run(t, s, sub), "dims", "triple_minus", f"t{i}:{d}")


def layers(plan: Plan, ctx: Context) -> None:
    """3. A 2-dimension head on the [CLS] vector of every layer: the probe pair, a random pair."""
    for t in ctx.tasks:
        for s in ctx.seeds(sweep=True):
            for layer in ctx.sweep_layers():
                pairs = (("probe_pair", ctx.pair(t)), ("random_pair", ctx.random_pair(t, 0)))
                for cond, d in pairs:
                    plan.add(ctx.run(t, s, d, layer=layer), "layers", cond, str(layer))


def freeze(plan: Plan, ctx: Context) -> None:
    """4. Frozen encoder + 2-layer head vs full fine-tuning + 1-layer head; frozen 2-dim head."""
    for t in ctx.tasks:
        for s in ctx.seeds():
            plan.add(ctx.run(t, s, None), "freeze", "full_1layer", "full")
            frozen = dict(freeze="encoder", head_layers=2)
            plan.add(ctx.run(t, s, None, **frozen), "freeze", "frozen_2layer", "full")
            plan.add(ctx.run(t, s, ctx.pair(t), **frozen), "freeze", "frozen_2dim", "probe")


def _dims_b(ctx: Context, a: str, b: str, mode: str, s: int) -> tuple[int, ...]:
    """B's dims: A's (``same``), or B's own probe pair when disjoint from A's, else drawn."""
    da = ctx.pair(a)
    if mode == "same":
        return da
    db = ctx.pair(b)
    return db if not set(da) & set(db) else ctx.draw(b, 3, s, 2, exclude=da)


def cross(plan: Plan, ctx: Context) -> None:
    """5. Fine-tune on A, then on B with a new head; A (kept head) and B against single runs."""
    for a, b in ctx.config.cross_pairs(tuple(ctx.tasks)):
        for mode in ("same", "disjoint"):
            g = f"{a}:{b}:{mode}"
            for s in ctx.seeds(sweep=True):
                ra = plan.add(ctx.run(a, s, ctx.pair(a)), "cross", "A_single", g)
                db = _dims_b(ctx, a, b, mode, s)
                plan.add(ctx.run(b, s, db), "cross", "B_single", g)
                then = ctx.run(b, s, db, kind="cross_then", start_from=ra.run_id, kept_task=a)
                plan.add(then, "cross", "B_after_A", g)
                plan.add(then, "cross", "A_after_B", g, task=a)


def _disjoint_sets(ctx: Context) -> dict[str, tuple[int, ...]]:
    """Each task's probe pair, or a drawn pair disjoint from the earlier tasks' sets."""
    used: set[int] = set()
    out = {}
    for t in ctx.tasks:
        d = ctx.pair(t)
        if used & set(d):
            d = ctx.draw(t, 4, 0, 2, exclude=tuple(sorted(used)))
        out[t] = d
        used |= set(d)
    return out


def beyond(plan: Plan, ctx: Context) -> None:
    """6b. One encoder, one head per task on disjoint dims, against single-task runs.

    (6a, probe scores against fine-tuned scores, needs no runs of its own: the runner adds
    the probe scores of every 2- and 3-dimension run.)
    """
    if len(ctx.tasks) < 2:
        plan.notes.setdefault("skipped", []).append("beyond/multihead: needs two tasks")
        return
    sets = _disjoint_sets(ctx)
    name = "+".join(ctx.tasks)
    for s in ctx.seeds(sweep=True):
        per = {t: list(d) for t, d in sets.items()}
        mh = ctx.run(name, s, None, kind="multihead", dims_per_task=per)
        for t, d in sets.items():
            plan.add(mh, "beyond", "multihead", "multihead", task=t, dims=d)
            plan.add(ctx.run(t, s, d), "beyond", "multihead_single", "multihead")


BUILDERS: dict[str, Callable[[Plan, Context], None]] = {
    "token": token,
    "dims": dims,
    "layers": layers,
    "freeze": freeze,
    "cross": cross,
    "beyond": beyond,
}


def effective_dims(
    triple: list[float], minus: dict[int, list[float]]
) -> tuple[list[int], dict[str, Any]]:
    """The paper's effective dimensions of one triple.

    A dimension is effective when removing it costs more than the seeds' spread: the mean of
    the triple minus the mean of the 2-subset without it exceeds the larger of the two
    conditions' standard deviations (ddof 1; 0 with one seed).

    Args:
        triple: the triple's scores, one per seed; minus: ``{removed dim: scores}``.

    Returns:
        ``(effective dims, {dim: {"drop", "spread", "effective"}})``.
    """

    def sd(x: list[float]) -> float:
        return float(np.std(x, ddof=1)) if len(x) > 1 else 0.0

    detail, eff = {}, []
    for d, sc in sorted(minus.items()):
        drop = float(np.mean(triple) - np.mean(sc))
        spread = max(sd(triple), sd(sc))
        detail[str(d)] = {"drop": drop, "spread": spread, "effective": drop > spread}
        if drop > spread:
            eff.append(d)
    return eff, detail


def add_effective_pairs(
    plan: Plan, ctx: Context, score: Callable[[str, str], float | None]
) -> None:
    """2b, second half: all pairs among each task's effective dimensions (over its triples).

    ``score(run_id, task)`` is a finished run's primary score (None: missing). The effective
    dimensions and the drops behind them go to ``plan.notes["effective"]``.
    """
    notes = plan.notes.setdefault("effective", {})
    for t in ctx.tasks:
        union: set[int] = set()
        per_triple = {}
        for i in range(ctx.budget.triples):
            tri_e = [e for e in plan.entries_of("dims", t, "triple") if e.group == f"t{i}"]
            if not tri_e:
                continue
            tri = [score(e.run_id, t) for e in tri_e]
            minus = {}
            for e in plan.entries_of("dims", t, "triple_minus"):
                if e.group.startswith(f"t{i}:"):
                    minus.setdefault(int(e.group.split(":")[1]), []).append(score(e.run_id, t))
            if any(x is None for x in tri) or any(x is None for v in minus.values() for x in v):
                continue
            eff, detail = effective_dims(tri, minus)  # type: ignore[arg-type]
            per_triple[f"t{i}"] = {"dims": list(tri_e[0].dims or ()), "effective": eff, **detail}
            union |= set(eff)
        notes[t] = {"effective": sorted(union), "triples": per_triple}
        for pair in combinations(sorted(union), 2):
            for s in ctx.seeds():
                plan.add(ctx.run(t, s, pair), "dims", "effective_pair", f"{pair[0]}-{pair[1]}")
