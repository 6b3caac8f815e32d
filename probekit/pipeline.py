"""The main job, end to end: extract a task's train and dev splits once, then find the few
dimensions that carry it.

:func:`run_study` chains the one-way flow ``tasks -> extract -> cache -> search -> report``:

1. extract (or reuse, or resume) ``OUT/cache/<task>-train.h5`` and ``<task>-<dev>.h5``;
2. a layer sweep: per layer, the full-width score, the best pair and the greedy-k score;
3. greedy forward selection of ``k`` dimensions on the chosen layer (selection on a
   validation split carved from train, scores on dev), with a random-k baseline;
4. the paper's remove-one elimination starting from the greedy set, then all pairs of the
   survivors, with the MDL and ablation blocks of the survivors (``mdl``, ``ablation``);
5. the token comparison (``cls`` vs ``mean`` vs ``max_norm``) at full width and at k;
6. tables and plots (``probekit report``) and ``OUT/summary.json``, whose ``headline`` is the
   verdict on the survivors against the majority and random baselines (paired bootstrap):
   dimensions are named only when they beat both.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import DEFAULT_MODEL
from ._io import write_json
from .cache import ActivationCache, partial_path
from .errors import CacheError
from .extract import extract
from .models import LoadedModel, load_encoder
from .provenance import DATA_FIELDS, MODEL_FIELDS, TASK_FIELDS, mismatches
from .tasks import OwnFiles, TaskData, load_own_files, load_task, normalize_split

logger = logging.getLogger(__name__)

__all__ = ["RunConfig", "StudyConfig", "ensure_cache", "run_study"]

#: what a reused cache must match (the model, how the vectors were made, the task, the data)
REUSE_FIELDS = (
    *MODEL_FIELDS,
    "max_length",
    "storage_dtype",
    "compute_dtype",
    *TASK_FIELDS,
    *(f for f in DATA_FIELDS if f != "full_data_hash"),
    "shard",
)


@dataclass
class RunConfig:
    """Settings of :func:`run_study` (``probekit run``).

    ``device`` is where extraction runs (``cpu`` by default: no helper picks a device on its
    own; the CLI passes ``auto`` explicitly). The searches' probes run on the CPU.
    """

    model: str = DEFAULT_MODEL
    task: str = "demo"
    glue_dir: str | None = None
    #: your own train/eval files instead of ``task`` (a custom task unless ``files.task``)
    files: OwnFiles | None = None
    out: str = "runs/demo"
    train_split: str = "train"
    eval_split: str = "dev"
    limit: int | None = None
    eval_limit: int | None = None
    device: str = "cpu"
    batch_size: int = 32
    max_length: int = 128
    layer: int = -1
    pool: str = "cls"
    k: int = 3
    seed: int = 0
    n_random: int = 20
    #: inverse L2 strength of the searches' probes, or ``"auto"``: chosen on the validation
    #: split once per (layer, pool, k) (:class:`probekit.search.SearchConfig`)
    C: float | str = "auto"
    pair_candidates: int | None = 48
    report: bool = True
    #: online codelength and ablation of the final set (a few fits; ``--no-mdl``/``--no-ablation``)
    mdl: bool = True
    ablation: bool = True


@dataclass
class StudyConfig(RunConfig):
    """Deprecated name of :class:`RunConfig` (one release)."""

    def __post_init__(self) -> None:
        warnings.warn(
            "StudyConfig is deprecated; use probekit.pipeline.RunConfig",
            DeprecationWarning,
            stacklevel=3,
        )


def _expected_identity(lm: LoadedModel, data: TaskData, max_length: int) -> dict[str, Any]:
    """The identity fields of a cache :func:`probekit.extract.extract` would write now."""
    return {
        "model_hash": lm.weights_hash,
        "tokenizer": getattr(lm.tokenizer, "name_or_path", "") or lm.path,
        "n_layers": lm.n_layers,
        "hidden_size": lm.hidden_size,
        "max_length": int(max_length),
        "storage_dtype": "float16",
        "compute_dtype": str(lm.dtype).replace("torch.", ""),
        "task": data.task.name,
        "split": data.split,
        "data_hash": data.fingerprint(),
        "n_examples": len(data),
        "shard": "",
    }


def ensure_cache(
    lm: LoadedModel,
    data: TaskData,
    path: Path,
    *,
    batch_size: int,
    max_length: int,
    progress: bool | None = None,
) -> tuple[Path, str]:
    """Extract ``data`` into ``path`` unless an identical cache is already there.

    Returns ``(path, what)`` where ``what`` is ``reused``, ``resumed`` or ``extracted``. A
    complete cache is reused only when every field of :data:`REUSE_FIELDS` (model,
    tokenizer, shape, max_length, dtypes, task, split, data hash, size) matches; otherwise it
    is replaced. A partial one made with the same settings is resumed.
    """
    if path.exists():
        try:
            with ActivationCache(path) as c:
                m = c.meta
            bad = mismatches(m, _expected_identity(lm, data, max_length), REUSE_FIELDS)
            if not bad:
                return path, "reused"
            logger.info("%s differs in %s; extracting again", path, ", ".join(k for k, _, _ in bad))
        except CacheError as e:
            logger.warning("replacing unreadable cache %s (%s)", path, e)
    resume = partial_path(path).exists()
    rep = extract(
        lm,
        data,
        path,
        batch_size=batch_size,
        max_length=max_length,
        resume=resume,
        overwrite=True,
        progress=progress,
    )
    return rep.path, "resumed" if rep.resumed_from else "extracted"


def _summary(
    cfg: RunConfig, caches: dict[str, Any], shape: dict[str, Any], results: dict[str, Any]
) -> dict[str, Any]:
    """``summary.json`` of a run (without the report path and the timing)."""
    return {
        "kind": "run",
        "config": asdict(cfg),
        "caches": caches,
        **shape,
        "primary_metric": shape["metrics"][0],
        "layer": results["greedy"].get("layer", cfg.layer),
        "full_metrics": results["greedy"]["full_metrics"],
        "greedy": {
            "selected": results["greedy"]["selected"],
            "metrics": results["greedy"]["metrics"],
            "random_baseline": results["greedy"]["random_baseline"],
            "verdict": results["greedy"].get("verdict"),
        },
        "eliminate": {
            "selected": results["eliminate"]["selected"],
            "metrics": results["eliminate"]["metrics"],
            "steps": results["eliminate"].get("steps"),
            "best_pair": results["eliminate"].get("best_pair"),
            "pair_metrics": results["eliminate"].get("pair_metrics"),
            "random_baseline": results["eliminate"]["random_baseline"],
            "verdict": results["eliminate"].get("verdict"),
            "mdl": results["eliminate"].get("mdl"),
            "ablation": results["eliminate"].get("ablation"),
        },
        "layers": [
            {
                "layer": r["layer"],
                "full": r["full_metrics"],
                "best_pair": r["best_pair"],
                "pair": r["pair_metrics"],
                "greedy_selected": r["greedy_selected"],
                "greedy": r["greedy_metrics"],
                "random": r["random_baseline"]["mean"],
            }
            for r in results["layers"]["per_layer"]
        ],
        "tokens": [
            {
                "pool": r["pool"],
                "full": r["full_metrics"],
                "greedy_selected": r["greedy_selected"],
                "greedy": r["greedy_metrics"],
                "random": r["random_baseline"]["mean"],
            }
            for r in results["tokens"]["per_pool"]
        ],
        "majority_baseline": results["greedy"].get("majority_baseline"),
        **_final_verdict(results),
    }


def _final_verdict(results: dict[str, Any]) -> dict[str, Any]:
    """The run's verdict and headline: the survivors of elimination (else the greedy set),
    judged against the majority and random-k baselines (:func:`probekit.search.verdict`)."""
    v = results["eliminate"].get("verdict") or results["greedy"].get("verdict")
    return {"verdict": v, "headline": v["headline"] if v else None}


def _load_data(cfg: RunConfig) -> tuple[TaskData, TaskData]:
    if cfg.files is not None:
        return load_own_files(cfg.files, limit=cfg.limit, eval_limit=cfg.eval_limit)
    train = load_task(cfg.task, cfg.train_split, glue_dir=cfg.glue_dir, limit=cfg.limit)
    eval_split = normalize_split(train.task, cfg.eval_split)
    return train, load_task(cfg.task, eval_split, glue_dir=cfg.glue_dir, limit=cfg.eval_limit)


def run_study(cfg: RunConfig, *, progress: bool | None = None) -> dict[str, Any]:
    """Run the main job and return its summary (also written to ``OUT/summary.json``)."""
    from . import search

    t0 = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    train_data, eval_data = _load_data(cfg)
    lm = load_encoder(cfg.model, device=cfg.device)
    caches: dict[str, Any] = {}
    for name, data in (("train", train_data), ("eval", eval_data)):
        path = out / "cache" / f"{data.task.name}-{data.split}.h5"
        p, what = ensure_cache(
            lm, data, path, batch_size=cfg.batch_size, max_length=cfg.max_length, progress=progress
        )
        caches[name] = {
            "path": str(p),
            "split": data.split,
            "n_examples": len(data),
            "status": what,
        }
    del lm
    common: dict[str, Any] = dict(
        config=search.SearchConfig(
            seed=cfg.seed,
            n_random=cfg.n_random,
            C=cfg.C,
            out_dir=out / "search",
            progress=bool(progress),
        )
    )
    results: dict[str, Any] = {}
    with (
        ActivationCache(caches["train"]["path"]) as tr,
        ActivationCache(caches["eval"]["path"]) as ev,
    ):
        shape = {
            "n_layers": tr.n_layers,
            "hidden_size": tr.hidden_size,
            "metrics": list(tr.task.metrics),
        }
        lay = search.layers(
            tr, ev, pool=cfg.pool, k=cfg.k, pair_candidates=cfg.pair_candidates, **common
        )
        results["layers"] = lay.data
        gr = search.greedy(tr, ev, layer=cfg.layer, pool=cfg.pool, k=cfg.k, **common)
        results["greedy"] = gr.data
        el = search.eliminate(
            tr,
            ev,
            layer=cfg.layer,
            pool=cfg.pool,
            start=gr.selected,
            k=2,
            mdl=cfg.mdl,
            ablation=cfg.ablation,
            **common,
        )
        results["eliminate"] = el.data
        tok = search.tokens(tr, ev, layer=cfg.layer, k=cfg.k, **common)
        results["tokens"] = tok.data
    summary = _summary(cfg, caches, shape, results)
    if cfg.report:
        from .report import write_report

        summary["report"] = str(write_report(out / "search", out / "report").markdown)
    summary["elapsed_s"] = time.perf_counter() - t0
    write_json(out / "summary.json", summary)
    return summary
