"""The study end to end: data, probes, plan, runs, the second phase, the report.

:func:`study` runs it (``probekit study``); :func:`plan_study` builds the plan without running
anything and estimates its time from a measured step rate (``probekit study --dry-run``).
"""

from __future__ import annotations

import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._io import write_json
from ..provenance import versions
from .config import StudyConfig
from .data import TaskSplits, load_study_data
from .experiments import BUILDERS, Context, add_effective_pairs
from .plan import Plan, Run
from .runner import RunJob, read_scores, run_all

logger = logging.getLogger(__name__)

__all__ = ["STUDY_FILE", "PlanSummary", "plan_study", "study"]

STUDY_FILE = "study.json"
BASELINES_FILE = "baselines.json"


def _machine(device: str) -> dict[str, Any]:
    import torch

    return {
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "n_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def _baselines(data: TaskSplits) -> dict[str, Any]:
    """``baselines.json``: per task the majority (training mean) scores on the eval split."""
    from ..probes import majority_baseline

    out = {}
    for t, (tr, ev) in data.items():
        spec = tr.task
        out[t] = {
            "primary_metric": spec.primary_metric,
            "metrics": list(spec.metrics),
            "regression": spec.regression,
            "majority": majority_baseline(
                tr.labels, ev.labels, list(spec.metrics), regression=spec.regression
            ),
            "n_train": len(tr),
            "n_eval": len(ev),
        }
    return {"kind": "study_baselines", "tasks": out}


def _probe_stage(cfg: StudyConfig, data: TaskSplits, out: Path, progress: bool) -> tuple:
    """Pre-trained caches and ``probes/TASK/probe.json`` of every task (reused when there)."""
    import json

    from ..probes import convergence_rule
    from .probing import PROBE_FILE, extract_pair, probe_task

    probes, caches = {}, {}
    max_length = cfg.resolved_budget().max_length
    for t, (tr, ev) in data.items():
        d = out / "probes" / t
        caches[t] = extract_pair(
            cfg.model, tr, ev, d / "cache", device=cfg.device, max_length=max_length,
            progress=progress,
        )  # fmt: skip
        # what the probes were computed from: a study rerun in OUT with another model,
        # seed, budget (other examples) or probe stopping rule searches again instead of
        # reusing stale dims (runs whose dims stay the same keep their run ids)
        identity = {"model": cfg.model, "seed": cfg.seed, "max_length": max_length,
                    "train": tr.fingerprint(), "eval": ev.fingerprint(),
                    "solver": convergence_rule()}  # fmt: skip
        f = d / PROBE_FILE
        old = json.loads(f.read_text(encoding="utf-8")) if f.is_file() else None
        if old is not None and old.get("identity") == identity:
            probes[t] = old
        else:
            probes[t] = probe_task(*caches[t], f, seed=cfg.seed, identity=identity)
        logger.info("%s: probes rank %s best (pair)", t, probes[t]["best_pair"])
    return probes, caches


def _context(cfg: StudyConfig, data: TaskSplits, probes: dict[str, Any]) -> Context:
    from ..finetune.single import encoder_shape

    hidden, n_layers = encoder_shape(cfg.model)
    return Context(cfg, cfg.resolved_budget(), data, hidden, n_layers, probes)


def _build(ctx: Context) -> Plan:
    plan = Plan()
    for t in ctx.tasks:  # the reference of every relative figure: full width, CLS, 1-layer
        for s in ctx.seeds():
            plan.add(ctx.run(t, s, None), "reference", "full", "full")
    for name in ctx.config.experiments:
        BUILDERS[name](plan, ctx)
    return plan


def _study_record(cfg: StudyConfig, ctx: Context, plan: Plan, **extra: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        "kind": "study",
        "config": cfg.to_dict(),
        "budget": asdict(ctx.budget),
        "thresholds": cfg.thresholds.to_dict(),
        "tasks": ctx.tasks,
        "experiments": list(cfg.experiments),
        "versions": versions(),
        "machine": _machine(cfg.device),
        "n_runs": len(plan.runs),
        **extra,
    }


def _needed(plan: Plan) -> set[str]:
    return {r.start_from for r in plan.runs.values() if r.start_from}


def study(cfg: StudyConfig, *, progress: bool = True, report: bool = True) -> dict[str, Any]:
    """Run the study of ``cfg`` (resuming what an earlier call left) and write its report.

    Returns:
        The ``study.json`` record (``complete: True``), with ``report`` (the report's path).
    """
    t0 = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_study_data(cfg, cfg.resolved_budget())
    write_json(out / BASELINES_FILE, _baselines(data))
    probes, caches = _probe_stage(cfg, data, out, progress)
    ctx = _context(cfg, data, probes)
    plan = _build(ctx)
    plan.write(out)
    write_json(out / STUDY_FILE, _study_record(cfg, ctx, plan, complete=False))
    job = RunJob(
        out, cfg.device, cfg.threads, data, caches if "beyond" in cfg.experiments else None,
        keep=_needed(plan), keep_models=cfg.keep_models, max_length=ctx.budget.max_length,
        progress=progress and cfg.backend == "serial",
    )  # fmt: skip
    opts = dict(backend=cfg.backend, n_jobs=cfg.n_jobs, progress=progress)
    run_all(list(plan.runs.values()), job, desc="study runs", **opts)
    if "dims" in cfg.experiments:
        before = set(plan.runs)
        add_effective_pairs(plan, ctx, lambda rid, t: _score(out, rid, t, ctx))
        plan.write(out)
        new = [r for rid, r in plan.runs.items() if rid not in before]
        run_all(new, job, desc="effective pairs", **opts)
    rec = _study_record(cfg, ctx, plan, complete=True, elapsed_s=time.perf_counter() - t0)
    write_json(out / STUDY_FILE, rec)
    if report:
        from .report import write_study_report

        rec["report"] = str(write_study_report(out))
    return rec


def _score(out: Path, run_id: str, task: str, ctx: Context) -> float | None:
    rec = read_scores(out, run_id)
    if rec is None:
        return None
    v = rec["scores"][task].get(ctx.data[task][0].task.primary_metric)
    return None if v is None else float(v)


# ---------------------------------------------------------------------------- dry run
class PlanSummary(dict):
    """What ``--dry-run`` prints: runs per experiment, examples per run, estimated time."""

    def lines(self) -> list[str]:
        out = [
            f"study plan: {self['n_runs']} fine-tuning runs "
            f"(+ up to {self['max_effective_runs']} effective-pair runs after the triples)",
            f"  examples per run: {self['train_examples']} training x {self['epochs']} "
            f"epoch(s), {self['eval_examples']} eval per epoch",
        ]
        for k, v in self["runs_by_experiment"].items():
            out.append(f"  {k}: {v} run(s)")
        r = self["rate"]
        out.append(
            f"  measured: {r['s_per_step']:.3f} s per training step of {r['batch_size']} "
            f"(batch), {r['s_per_eval_batch']:.3f} s per eval batch, on {r['device']}"
        )
        out.append(f"  estimated time: {self['estimated_s'] / 60:.1f} min")
        return out


def _rate(cfg: StudyConfig, data: TaskSplits) -> dict[str, Any]:
    """Seconds per training step and per eval batch, measured on a few real batches."""
    import torch

    from ..models import load_encoder
    from ..tokenize import collate, encode, pad_id, uses_token_types

    b = cfg.resolved_budget()
    lm = load_encoder(cfg.model, device=cfg.device)
    tr = next(iter(data.values()))[0].head(b.batch_size)
    enc = encode(lm.tokenizer, tr, b.max_length, positions=False)
    batch = collate(
        enc, np.arange(len(enc)), pad_id=pad_id(lm.tokenizer),
        token_types=uses_token_types(lm.model), device=lm.device,
    )  # fmt: skip
    opt = torch.optim.AdamW(lm.model.parameters(), lr=1e-5)

    def step() -> None:
        lm.model(**batch).last_hidden_state.sum().backward()
        opt.step()
        opt.zero_grad()

    def timed(f: Any, n: int = 3) -> float:
        f()
        t = time.perf_counter()
        for _ in range(n):
            f()
        return (time.perf_counter() - t) / n

    s_step = timed(step)
    with torch.no_grad():
        s_eval = timed(lambda: lm.model(**batch))
    return {"s_per_step": s_step, "s_per_eval_batch": s_eval, "batch_size": b.batch_size,
            "device": str(lm.device)}  # fmt: skip


def _estimate(run: Run, ctx: Context, rate: dict[str, Any]) -> float:
    b = ctx.budget
    n_tr = sum(len(ctx.data[t][0]) for t in run.task.split("+"))
    n_ev = sum(len(ctx.data[t][1]) for t in run.task.split("+"))
    steps = -(-n_tr // b.batch_size) * b.epochs
    step_s = rate["s_per_step"] * (0.4 if run.freeze == "encoder" else 1.0)
    evals = -(-n_ev // b.batch_size) * b.epochs * rate["s_per_eval_batch"]
    reextract = 0.0
    probed = run.kind == "finetune" and run.k in (2, 3) and run.freeze == "none"
    if probed and "beyond" in ctx.config.experiments:  # the fine-tuned encoder re-extracted
        reextract = -(-(n_tr + n_ev) // b.batch_size) * rate["s_per_eval_batch"] + 2.0
    return steps * step_s + evals + reextract + 3.0  # + loading and saving


def plan_study(cfg: StudyConfig) -> PlanSummary:
    """The plan of ``cfg`` with placeholder probe dimensions (nothing extracted or trained)."""
    from collections import Counter

    b = cfg.resolved_budget()
    data = load_study_data(cfg, b)
    placeholder = {
        t: {"best_pair": [0, 1], "ranked": {"1": [2], "2": [0, 1], "3": [3, 4, 5]}} for t in data
    }
    ctx = _context(cfg, data, placeholder)
    plan = _build(ctx)
    rate = _rate(cfg, data)
    by_exp = Counter()
    seen: set[str] = set()
    for e in plan.entries:
        if e.run_id not in seen:
            seen.add(e.run_id)
            by_exp[e.experiment] += 1
    max_eff = 3 * b.triples * (3 * b.triples - 1) // 2 * b.seeds if "dims" in cfg.experiments else 0
    est = sum(_estimate(r, ctx, rate) for r in plan.runs.values())
    t0 = next(iter(data.values()))
    return PlanSummary(
        n_runs=len(plan.runs),
        max_effective_runs=max_eff,
        runs_by_experiment=dict(by_exp),
        train_examples=len(t0[0]),
        eval_examples=len(t0[1]),
        epochs=b.epochs,
        rate=rate,
        estimated_s=est,
        budget=b.name,
    )
