"""What cached probes say, in seconds: the study's probe stage and its per-run probe scores.

For every task, the pre-trained encoder's vectors of the study's examples are extracted once
into ``OUT/probes/TASK/cache/`` (every layer, every pool), then the final layer's [CLS]
vectors are searched: the best single dimension (a 1-d probe per dimension), the best pair
(all pairs: exact) and the best triple (exact over a top-50 prefilter), with the full-width
probe, a random-pair band and the majority baseline. ``OUT/probes/TASK/probe.json`` holds
the result; the dimension-wise, layer-wise, freezing and cross-task experiments fine-tune
these dimensions.

:func:`probe_score` scores any dimension set on a pair of caches: the "beyond the paper"
experiment uses it on the pre-trained caches and on a fine-tuned encoder's re-extraction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._io import write_json
from ..cache import ActivationCache
from ..models import load_encoder
from ..tasks import TaskData

logger = logging.getLogger(__name__)

__all__ = ["PROBE_FILE", "extract_pair", "probe_score", "probe_task"]

PROBE_FILE = "probe.json"


def extract_pair(
    model: str,
    train: TaskData,
    ev: TaskData,
    cache_dir: Path,
    *,
    device: str,
    max_length: int,
    batch_size: int = 32,
    progress: bool = False,
) -> tuple[Path, Path]:
    """Extract (or reuse, or resume) the caches of ``train`` and ``ev`` with ``model``."""
    from ..pipeline import ensure_cache

    lm = load_encoder(model, device=device)
    paths = []
    for split, data in (("train", train), ("eval", ev)):
        p, what = ensure_cache(
            lm,
            data,
            cache_dir / f"{data.task.name}-{split}.h5",
            batch_size=batch_size,
            max_length=max_length,
            progress=progress,
        )
        logger.info("%s: %s", p, what)
        paths.append(p)
    return paths[0], paths[1]


def _search_config(seed: int) -> Any:
    from ..search import SearchConfig

    return SearchConfig(seed=seed, n_random=20, n_jobs=1)


def _num(x: Any) -> float | None:
    """A score as a float; None where the metric is undefined (a constant prediction's MCC
    or correlation)."""
    return None if x is None or x != x else float(x)


def probe_score(
    train: Path, ev: Path, dims: Sequence[int] | None, *, layer: int, pool: str, seed: int = 0
) -> float | None:
    """Eval score (primary metric) of a probe fitted on ``dims`` of (layer, pool) of ``train``
    (None where the metric is undefined)."""
    from ..search import probe_sources

    with ActivationCache(train) as tr, ActivationCache(ev) as e:
        rec = probe_sources(tr, e, layer=layer, pool=pool, dims=dims, config=_search_config(seed))
        return _num(rec["metrics"][tr.task.primary_metric])


def probe_task(
    train: Path, ev: Path, out: Path, *, seed: int = 0, m: int = 50, identity: Any = None
) -> dict[str, Any]:
    """Search the final layer's [CLS] vectors of the pre-trained caches; write ``probe.json``
    (``identity``: what the caller computed it from, recorded as given).

    Returns:
        The ``probe.json`` record: ``full``, ``majority``, ``random_pair`` (mean, std),
        ``best_pair``, ``best_pair_score``, ``ranked`` (``{"1": [d], "2": [a, b], "3": [...]}``
        chosen on a validation split of train) and ``ranked_scores`` (their eval scores).
    """
    from .. import search

    t0 = time.perf_counter()
    cfg = _search_config(seed)
    with ActivationCache(train) as tr, ActivationCache(ev) as e:
        p = tr.task.primary_metric
        layer = int(tr.layer_index(-1))
        pr = search.pairs(tr, e, layer=layer, pool="cls", top=5, config=cfg).data
        mm = min(m, tr.hidden_size)
        ranked: dict[str, list[int]] = {"2": [int(d) for d in pr["selected"]]}
        scores: dict[str, float | None] = {"2": _num(pr["metrics"][p])}
        one = search.singles(tr, e, layers=[layer], pool="cls", config=cfg).data
        ex = search.exact(tr, e, layer=layer, pool="cls", k=3, m=mm, config=cfg).data
        for k, res in (("1", one), ("3", ex)):
            ranked[k] = [int(d) for d in res["selected"]]
            scores[k] = _num(res["metrics"][p])
        rb = pr["random_baseline"]
        rec = {
            "kind": "study_probes",
            "task": tr.task.name,
            "layer": layer,
            "pool": "cls",
            "primary_metric": p,
            "full": _num(pr["full_metrics"][p]),
            "majority": _num(pr["majority_baseline"][p]),
            "random_pair": {"mean": _num(rb["mean"][p]), "std": _num(rb["std"][p])},
            "best_pair": ranked["2"],
            "best_pair_score": scores["2"],
            "ranked": ranked,
            "ranked_scores": scores,
            "n_train": tr.n_examples,
            "n_eval": e.n_examples,
            "caches": {"train": str(train), "eval": str(ev)},
            "identity": identity,
            "elapsed_s": time.perf_counter() - t0,
        }
    write_json(out, rec)
    return rec
