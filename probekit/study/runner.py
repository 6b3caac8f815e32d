"""Running a study's fine-tuning runs: one directory per run, finished runs skipped,
interrupted ones resumed, independent runs spread over a backend.

A run is done when ``OUT/runs/RUN_ID/scores.json`` exists (written last, atomically). A run
without it is started again: the fine-tuning :class:`~probekit.finetune.Trainer` resumes from
its checkpoint (or reuses its finished ``result.json``), so a study killed at any point and
restarted ends with the same scores. Runs go in waves: a run whose ``start_from`` run is not
done waits for the next wave. Backends: ``serial``, ``joblib`` (processes), ``dask`` (a
``LocalCluster`` of one-thread workers) and ``ray`` (one task per run asking for one GPU with
``device="cuda"``, else ``threads`` CPUs); every run sets its own torch thread count.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import write_json
from ..tasks import TaskData
from .plan import Run

logger = logging.getLogger(__name__)

__all__ = ["RUNS_DIR", "SCORES_FILE", "RunJob", "execute", "read_scores", "run_all"]

RUNS_DIR = "runs"
SCORES_FILE = "scores.json"


@dataclass
class RunJob:
    """Everything a worker needs to execute runs (picklable).

    Attributes:
        out: the study directory.
        device: where to train.
        threads: torch threads of each run (None: leave torch's setting).
        data: ``{task: (train, eval)}``.
        probe_caches: ``{task: (train.h5, eval.h5)}`` of the pre-trained encoder (probe scores
            of 2- and 3-dimension runs are added when set: "beyond the paper", 6a).
        keep: run ids whose fine-tuned encoder a later run starts from (kept).
        keep_models: keep every run's ``model/``.
        max_length: tokens per example of the re-extraction.
        progress: training bars.
    """

    out: Path
    device: str
    threads: int | None
    data: dict[str, tuple[TaskData, TaskData]]
    probe_caches: dict[str, tuple[Path, Path]] | None = None
    keep: set[str] = field(default_factory=set)
    keep_models: bool = False
    max_length: int = 128
    progress: bool = False


def run_dir(out: Path, run_id: str) -> Path:
    return Path(out) / RUNS_DIR / run_id


def read_scores(out: Path, run_id: str) -> dict[str, Any] | None:
    """The run's ``scores.json`` record, or None when the run is not done."""
    try:
        rec = json.loads((run_dir(out, run_id) / SCORES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("complete") else None


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    import torch

    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _train(run: Run, job: RunJob, rd: Path) -> tuple[dict[str, dict[str, float]], Any]:
    """Fine-tune ``run`` into ``rd``; ``({task: metrics}, FinetuneResult)``."""
    from ..finetune import FinetuneConfig, finetune, multihead_finetune

    cfg = FinetuneConfig.from_dict(run.config)
    if run.kind == "multihead":
        tasks = list(run.dims_per_task or {})
        res = multihead_finetune(
            cfg, tasks, device=job.device, out_dir=rd, dims=run.dims_per_task,
            data={t: job.data[t] for t in tasks}, progress=job.progress,
        )  # fmt: skip
        return dict(res.metrics), res
    model = None
    if run.kind == "cross_then":
        model = str(run_dir(job.out, str(run.start_from)) / "model")
    tr, ev = job.data[run.task]
    res = finetune(
        cfg, device=job.device, out_dir=rd, train_data=tr, eval_data=ev, model=model,
        progress=job.progress, extra_record={"study_run": run.run_id},
    )  # fmt: skip
    scores = {run.task: dict(res.metrics)}
    if run.kind == "cross_then":
        scores[str(run.kept_task)] = _kept_head_score(run, job, rd, cfg)
    return scores, res


def _kept_head_score(run: Run, job: RunJob, rd: Path, cfg: Any) -> dict[str, float]:
    """Task A scored with A's kept head on the encoder fine-tuned on B."""
    from ..finetune import evaluate, load_finetuned, load_heads

    a = str(run.kept_task)
    loaded, _ = load_finetuned(rd, device=job.device)
    heads = load_heads(run_dir(job.out, str(run.start_from)) / "heads.pt", device=job.device)
    return evaluate(
        loaded,
        {a: heads[a]},
        {a: job.data[a][1]},
        max_length=cfg.max_length,
        batch_size=cfg.eval_batch_size,
        mixed_precision=cfg.mixed_precision,
    )[a]


def _probe_block(run: Run, job: RunJob, rd: Path) -> dict[str, Any] | None:
    """Probe scores of the run's dims on the pre-trained and on the fine-tuned encoder."""
    from .probing import extract_pair, probe_score

    if job.probe_caches is None or run.kind != "finetune" or run.k not in (2, 3):
        return None
    pre_tr, pre_ev = job.probe_caches[run.task]
    opts = dict(layer=run.layer, pool=run.pool, seed=run.seed)
    pre = probe_score(pre_tr, pre_ev, run.dims, **opts)
    if run.freeze == "encoder":
        post = pre  # the encoder did not change
    else:
        tr, ev = job.data[run.task]
        cache = rd / "cache"
        ptr, pev = extract_pair(
            str(rd / "model"), tr, ev, cache, device=job.device, max_length=job.max_length
        )
        post = probe_score(ptr, pev, run.dims, **opts)
        shutil.rmtree(cache, ignore_errors=True)
    return {run.task: {"pre": pre, "post": post}}


def execute(run: Run, job: RunJob) -> dict[str, Any]:
    """Execute one run (or return its finished record) and write its ``scores.json``."""
    done = read_scores(job.out, run.run_id)
    if done is not None:
        return done
    rd = run_dir(job.out, run.run_id)
    t0 = time.perf_counter()
    rd.mkdir(parents=True, exist_ok=True)
    with _threads(job.threads):
        write_json(rd / "spec.json", {"kind": "study_run_spec", **run.to_dict()})
        scores, res = _train(run, job, rd)
        probe = _probe_block(run, job, rd)
    rec = {
        "kind": "study_run",
        "run_id": run.run_id,
        "complete": True,
        "scores": scores,
        "probe": probe or {},
        "elapsed_s": time.perf_counter() - t0,
        "train_elapsed_s": float(res.record.get("elapsed_s", 0.0)),
    }
    write_json(rd / SCORES_FILE, rec)
    if not job.keep_models and run.run_id not in job.keep:
        shutil.rmtree(rd / "model", ignore_errors=True)
    return rec


def _waves(runs: Sequence[Run], out: Path) -> list[list[Run]]:
    """Runs in dependency order: a run waits for the wave after its ``start_from``."""
    ids = {r.run_id for r in runs}
    waves, done = [], set()
    left = [r for r in runs if read_scores(out, r.run_id) is None]
    done = ids - {r.run_id for r in left}
    while left:
        ready = [r for r in left if r.start_from is None or r.start_from in done]
        ready = ready or left  # a start_from outside the plan: let it fail loudly
        waves.append(ready)
        done |= {r.run_id for r in ready}
        left = [r for r in left if r.run_id not in done]
    return waves


def _cpu_threads(n_jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // n_jobs)


def _serial(runs: list[Run], job: RunJob, tick: Callable[[], None]) -> None:
    for r in runs:
        execute(r, job)
        tick()


def _joblib(runs: list[Run], job: RunJob, tick: Callable[[], None], n_jobs: int) -> None:
    from joblib import Parallel, delayed

    for _ in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
        delayed(execute)(r, job) for r in runs
    ):
        tick()


def _dask(runs: list[Run], job: RunJob, tick: Callable[[], None], n_jobs: int) -> None:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        from ..errors import ConfigError

        raise ConfigError("--backend dask needs: pip install 'probekit-dims[dask]'") from None
    with (
        LocalCluster(
            n_workers=n_jobs, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        futures = [client.submit(execute, r, job, pure=False) for r in runs]
        for f in as_completed(futures):
            f.result()
            tick()


def _ray(runs: list[Run], job: RunJob, tick: Callable[[], None], n_jobs: int) -> None:
    try:
        import ray
    except ImportError:
        from ..errors import ConfigError

        raise ConfigError("--backend ray needs: pip install 'probekit-dims[ray]'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        gpu = str(job.device).startswith("cuda")
        opts = {"num_gpus": 1, "num_cpus": 1} if gpu else {"num_cpus": job.threads or 1}
        remote = ray.remote(**opts)(execute)
        pending = [remote.remote(r, job) for r in runs]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            ray.get(ready)
            tick()
    finally:
        if started:
            ray.shutdown()


_BACKENDS = {"joblib": _joblib, "dask": _dask, "ray": _ray}


def run_all(
    runs: Sequence[Run],
    job: RunJob,
    *,
    backend: str = "serial",
    n_jobs: int = 1,
    progress: bool = True,
    desc: str = "study",
) -> None:
    """Execute every run not yet done, wave by wave, with one bar over all of them."""
    from tqdm.auto import tqdm

    runs = list(runs)
    todo = sum(read_scores(job.out, r.run_id) is None for r in runs)
    bar = tqdm(
        total=len(runs), initial=len(runs) - todo, desc=desc, unit="run", disable=not progress
    )
    parallel = backend != "serial" and (n_jobs > 1 or backend == "ray")
    if parallel:
        threads = job.threads or _cpu_threads(n_jobs)
        job = RunJob(**{**job.__dict__, "threads": threads, "progress": False})
    try:
        for wave in _waves(runs, job.out):
            if parallel:
                _BACKENDS[backend](wave, job, bar.update, n_jobs)
            else:
                _serial(wave, job, bar.update)
    finally:
        bar.close()
