"""A study directory read back from its saved files alone (the contract of ``STUDY_SCHEMA``).

:func:`load_study` reads ``study.json``, ``plan.json``, ``baselines.json``,
``probes/*/probe.json`` and ``runs/*/scores.json``; a run without a complete ``scores.json``
is *pending* (listed, never an error). :func:`rows` gives one row per plan entry,
:func:`write_results_csv` writes them, :func:`conditions` groups entries by
``(experiment, task, condition, group)`` into mean, standard deviation and the score
relative to the full-width [CLS] reference of the same seeds; :func:`probe_points` pairs each
fine-tuned head's cached-probe scores with its fine-tuned score and :func:`spearman` ranks them.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._io import atomic_path
from ..errors import DataError

logger = logging.getLogger(__name__)

__all__ = [
    "EXPERIMENTS",
    "Condition",
    "ProbeCorrelation",
    "ProbePoint",
    "Stats",
    "StudyResults",
    "conditions",
    "load_study",
    "natural",
    "probe_correlation",
    "probe_points",
    "reference_scores",
    "rows",
    "spearman",
    "write_results_csv",
]

EXPERIMENTS = ("token", "dims", "layers", "freeze", "cross", "beyond")

#: Entries that are the full-width, 1-layer, [CLS] reference of a task (same runs).
REFERENCE = {("reference", "full"), ("token", "cls"), ("dims", "full"), ("freeze", "full_1layer")}

_FIXED = [
    "experiment",
    "task",
    "condition",
    "group",
    "seed",
    "run_id",
    "score_task",
    "k",
    "dims",
    "layer",
    "pool",
    "freeze",
    "head_layers",
    "metric",
    "score",
    "complete",
    "elapsed_s",
    "train_seconds",
]


def _read(path: Path) -> dict[str, Any] | None:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as e:
        logger.warning("skipping %s: %s", path, e)
        return None
    return d if isinstance(d, dict) else None


def natural(s: Any) -> tuple:
    """Sort key of a string with numbers in it (``r2`` before ``r10``, ``2`` before ``10``)."""
    return tuple(
        (0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", str(s)) if p
    )


@dataclass
class StudyResults:
    """Everything a study directory holds, as read back.

    Attributes:
        out_dir: the study directory.
        study: ``study.json`` (``{}`` when not written yet).
        runs: ``run_id -> Run`` record of ``plan.json``.
        entries: the plan's entries, in plan order.
        baselines: ``task -> baselines record`` (``primary_metric``, ``majority``, ...).
        probes: ``task -> probe.json``.
        scores: ``run_id -> scores.json`` of every complete run.
        thresholds: the ``thresholds`` record of ``study.json`` (``{}``: the defaults;
            :meth:`probekit.study.verdicts.Thresholds.from_dict` reads it).
    """

    out_dir: Path
    study: dict[str, Any]
    runs: dict[str, dict[str, Any]]
    entries: list[dict[str, Any]]
    baselines: dict[str, dict[str, Any]]
    probes: dict[str, dict[str, Any]]
    scores: dict[str, dict[str, Any]]
    thresholds: dict[str, Any]

    @property
    def pending(self) -> list[str]:
        """Run ids of the plan without a complete ``scores.json``, sorted."""
        return sorted(r for r in self.runs if r not in self.scores)

    def metric(self, task: str) -> str | None:
        """The task's primary metric (baselines, else its probe file)."""
        b = self.baselines.get(task) or self.probes.get(task) or {}
        return b.get("primary_metric")

    def majority(self, task: str, metric: str | None = None) -> float | None:
        """The majority-class score of ``task`` (primary metric unless ``metric``)."""
        m = metric or self.metric(task)
        v = ((self.baselines.get(task) or {}).get("majority") or {}).get(m)
        if v is None:
            v = (self.probes.get(task) or {}).get("majority")
        return None if v is None else float(v)

    def score(self, entry: dict[str, Any], metric: str | None = None) -> float | None:
        """The entry's score (primary metric of its task unless ``metric``); None if pending."""
        s = self.scores.get(entry["run_id"])
        if s is None:
            return None
        m = metric or self.metric(entry["task"])
        v = ((s.get("scores") or {}).get(entry.get("score_task") or entry["task"]) or {}).get(m)
        return None if v is None else float(v)


def load_study(out_dir: str | Path) -> StudyResults:
    """Read a study directory (see the module docstring).

    Raises:
        DataError: ``out_dir`` has no ``plan.json`` (not a study directory) or it is malformed.
    """
    out = Path(out_dir)
    plan = _read(out / "plan.json")
    if plan is None or plan.get("kind") != "study_plan":
        raise DataError(f"not a probekit study directory (no readable plan.json): {out}")
    runs = {r.get("run_id"): r for r in plan.get("runs") or []}
    entries = [dict(e) for e in plan.get("entries") or []]
    for i, e in enumerate(entries):
        missing = [k for k in ("run_id", "task", "experiment", "condition") if k not in e]
        if missing:
            raise DataError(f"{out / 'plan.json'}: entry {i} lacks {missing}")
    if None in runs:
        raise DataError(f"{out / 'plan.json'}: a run lacks its run_id")
    study = _read(out / "study.json") or {}
    base = (_read(out / "baselines.json") or {}).get("tasks") or {}
    probes = {}
    for p in sorted((out / "probes").glob("*/probe.json")):
        d = _read(p)
        if d is not None:
            probes[d.get("task", p.parent.name)] = d
    scores = {}
    for rid in sorted(runs):
        d = _read(out / "runs" / rid / "scores.json")
        if d is not None and d.get("complete", True):
            scores[rid] = d
    th = dict(study.get("thresholds") or {})
    return StudyResults(out, study, runs, entries, dict(base), probes, scores, th)


def _entry_key(e: dict[str, Any]) -> tuple:
    exp = e["experiment"]
    order = EXPERIMENTS.index(exp) if exp in EXPERIMENTS else len(EXPERIMENTS)
    return (order, exp, e["task"], natural(e["condition"]), natural(e.get("group", "")),
            e.get("seed", 0), e["run_id"])  # fmt: skip


def rows(results: StudyResults) -> list[dict[str, Any]]:
    """One row per plan entry, sorted (experiment, task, condition, group, seed, run).

    Each row: the entry's fields (``dims`` as space-separated ints, ``""`` = full width),
    ``metric`` (primary) and ``score``, ``complete``, the run's ``elapsed_s`` and
    ``train_seconds``, then one column per metric name of the study (sorted).
    """
    names = sorted(
        {m for s in results.scores.values() for t in (s.get("scores") or {}).values() for m in t}
    )
    out = []
    for e in sorted(results.entries, key=_entry_key):
        s = results.scores.get(e["run_id"]) or {}
        dims = e.get("dims")
        row = {
            **{k: e.get(k) for k in _FIXED[:7]},
            "score_task": e.get("score_task") or e["task"],
            "k": e.get("k"),
            "dims": "" if dims is None else " ".join(str(d) for d in dims),
            **{k: e.get(k) for k in ("layer", "pool", "freeze", "head_layers")},
            "metric": results.metric(e["task"]),
            "score": results.score(e),
            "complete": e["run_id"] in results.scores,
            "elapsed_s": s.get("elapsed_s"),
            "train_seconds": s.get("train_seconds"),
        }
        for m in names:
            row[m if m not in row else f"metric_{m}"] = results.score(e, m)
        out.append(row)
    return out


def write_results_csv(results: StudyResults, path: str | Path) -> Path:
    """Write :func:`rows` to ``path`` (CSV, atomically); floats written with ``repr``."""
    path = Path(path)
    rs = rows(results)
    header = list(rs[0]) if rs else _FIXED
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header, lineterminator="\n")
        w.writeheader()
        w.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rs)
    return path


@dataclass(frozen=True)
class Stats:
    """Scores of one condition over seeds (``scores[i]`` is seed ``seeds[i]``)."""

    scores: tuple[float, ...]
    seeds: tuple[int, ...] = ()

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def mean(self) -> float:
        return math.fsum(self.scores) / self.n if self.n else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1); 0 for one score, NaN for none."""
        if self.n < 2:
            return 0.0 if self.n else math.nan
        mu = self.mean
        return math.sqrt(math.fsum((x - mu) ** 2 for x in self.scores) / (self.n - 1))

    @property
    def se(self) -> float:
        """Standard error of the mean (0 for one score)."""
        return self.std / math.sqrt(self.n) if self.n else math.nan

    @property
    def min(self) -> float:
        return min(self.scores) if self.n else math.nan

    @property
    def max(self) -> float:
        return max(self.scores) if self.n else math.nan

    @staticmethod
    def pooled(parts: list[Stats]) -> Stats:
        """All scores of ``parts`` in one sample (e.g. every random pair)."""
        return Stats(
            tuple(x for p in parts for x in p.scores), tuple(s for p in parts for s in p.seeds)
        )


@dataclass(frozen=True)
class Condition:
    """One ``(experiment, task, condition, group)`` cell of the study.

    Attributes:
        stats: its complete scores over seeds (primary metric).
        n_entries: entries planned; ``n_pending`` of them wait for their run.
        run_ids: its runs, sorted.
        reference: the full-width [CLS] scores of the same seeds (None when not run).
        majority: the task's majority-class score.
        k: dimensions (None = full width); layer, pool, freeze, head_layers as planned.
    """

    experiment: str
    task: str
    condition: str
    group: str
    metric: str | None
    stats: Stats
    n_entries: int
    n_pending: int
    run_ids: tuple[str, ...]
    reference: Stats | None
    majority: float | None
    k: int | None = None
    layer: int | None = None
    pool: str | None = None
    freeze: str | None = None
    head_layers: int | None = None

    @property
    def pct_full(self) -> float | None:
        """Mean as % of the reference mean (None when it is missing or 0)."""
        r = self.reference
        if r is None or not r.n or r.mean == 0 or not self.stats.n:
            return None
        return 100.0 * self.stats.mean / r.mean

    @property
    def gap_share(self) -> float | None:
        """``(mean - majority) / (full - majority)``: the share of the gap closed."""
        r, maj = self.reference, self.majority
        if r is None or not r.n or maj is None or not self.stats.n or r.mean == maj:
            return None
        return (self.stats.mean - maj) / (r.mean - maj)


def reference_scores(results: StudyResults, task: str) -> dict[int, float]:
    """``seed -> score`` of the task's full-width [CLS] reference runs (complete ones)."""
    out: dict[int, float] = {}
    for e in results.entries:
        if e["task"] == task and (e["experiment"], e["condition"]) in REFERENCE:
            v = results.score(e)
            if v is not None:
                out.setdefault(int(e.get("seed", 0)), v)
    return out


def conditions(results: StudyResults) -> list[Condition]:
    """Every ``(experiment, task, condition, group)`` cell, sorted like :func:`rows`."""
    cells: dict[tuple, list[dict[str, Any]]] = {}
    for e in sorted(results.entries, key=_entry_key):
        key = (e["experiment"], e["task"], e["condition"], str(e.get("group", "")))
        cells.setdefault(key, []).append(e)
    refs = {t: reference_scores(results, t) for t in sorted({k[1] for k in cells})}
    out = []
    for (exp, task, cond, group), es in cells.items():
        scored = [(int(e.get("seed", 0)), results.score(e)) for e in es]
        done = sorted((s, v) for s, v in scored if v is not None)
        stats = Stats(tuple(v for _, v in done), tuple(s for s, _ in done))
        ref = [(s, refs[task][s]) for s in sorted({s for s, _ in done}) if s in refs[task]]
        if not done:  # nothing finished yet: the reference over every seed available
            ref = sorted(refs[task].items())
        e0 = es[0]
        out.append(
            Condition(
                experiment=exp,
                task=task,
                condition=cond,
                group=group,
                metric=results.metric(task),
                stats=stats,
                n_entries=len(es),
                n_pending=sum(e["run_id"] not in results.scores for e in es),
                run_ids=tuple(sorted({e["run_id"] for e in es})),
                reference=Stats(tuple(v for _, v in ref), tuple(s for s, _ in ref))
                if ref
                else None,
                majority=results.majority(task),
                k=e0.get("k"),
                layer=e0.get("layer"),
                pool=e0.get("pool"),
                freeze=e0.get("freeze"),
                head_layers=e0.get("head_layers"),
            )
        )
    return out


@dataclass(frozen=True)
class ProbePoint:
    """One fine-tuned head (dims, layer) of a task with its cached-probe scores.

    Attributes:
        dims: the head's dimensions; layer: its layer.
        pre: probe score of the dims on the pre-trained encoder; post: on the fine-tuned
            encoder (mean over seeds; None when absent).
        finetuned: the fine-tuned score (mean over the ``n`` seeds).
    """

    dims: tuple[int, ...]
    layer: int | None
    pre: float | None
    post: float | None
    finetuned: float
    n: int


def _mean(xs: list[float]) -> float | None:
    return math.fsum(xs) / len(xs) if xs else None


def probe_points(results: StudyResults, task: str) -> list[ProbePoint]:
    """Every (dims, layer) fine-tuned on ``task`` whose runs carry a ``probe`` block, the
    scores averaged over seeds; sorted by (layer, dims)."""
    groups: dict[tuple, list[tuple[float | None, float | None, float]]] = {}
    metric = results.metric(task)
    for rid in sorted(results.scores):
        s, run = results.scores[rid], results.runs.get(rid) or {}
        pr = (s.get("probe") or {}).get(task)
        ft = ((s.get("scores") or {}).get(task) or {}).get(metric)
        if not pr or ft is None or run.get("task") != task or not run.get("dims"):
            continue
        key = (run.get("layer"), tuple(run["dims"]), run.get("pool"), run.get("freeze"),
               run.get("head_layers"))  # fmt: skip
        groups.setdefault(key, []).append((pr.get("pre"), pr.get("post"), float(ft)))
    out = []
    for key in sorted(groups, key=lambda k: (-1 if k[0] is None else k[0], k[1], str(k[2:]))):
        vs = groups[key]
        out.append(
            ProbePoint(
                dims=key[1],
                layer=key[0],
                pre=_mean([v[0] for v in vs if v[0] is not None]),
                post=_mean([v[1] for v in vs if v[1] is not None]),
                finetuned=_mean([v[2] for v in vs]) or 0.0,
                n=len(vs),
            )
        )
    return out


def spearman(x: list[float], y: list[float]) -> tuple[float, float]:
    """Spearman's rho and its two-sided p-value (NaN, NaN for fewer than 3 points or
    constant input)."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return math.nan, math.nan
    from scipy.stats import spearmanr

    r = spearmanr(x, y)
    return float(r.statistic), float(r.pvalue)


@dataclass(frozen=True)
class ProbeCorrelation:
    """Spearman's rho of cached-probe scores against fine-tuned scores, on one task.

    Attributes:
        points: the heads with a pre-trained probe score.
        rho, p: pre-trained probe score vs fine-tuned score.
        rho_post, p_post: probe score on the re-extracted fine-tuned encoder vs fine-tuned score.
    """

    points: list[ProbePoint]
    rho: float
    p: float
    rho_post: float
    p_post: float


def probe_correlation(results: StudyResults, task: str) -> ProbeCorrelation | None:
    """The probe-vs-fine-tune correlation of ``task`` (None: no head has probe scores)."""
    pts = [p for p in probe_points(results, task) if p.pre is not None]
    if not pts:
        return None
    rho, pv = spearman([p.pre for p in pts], [p.finetuned for p in pts])  # type: ignore[misc]
    post = [p for p in pts if p.post is not None]
    rp, pp = spearman([p.post for p in post], [p.finetuned for p in post])  # type: ignore[misc]
    return ProbeCorrelation(pts, rho, pv, rp, pp)
