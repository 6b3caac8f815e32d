"""pairs: all ``C(D, 2)`` pairs of dimensions of one layer, in checkpointed chunks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..metrics import batch_metrics
from ..probes import Prepared
from ..probes.engine import CPU_CHUNK
from ..stumps import fit_stumps, predict_stumps
from . import fanout
from .checkpoint import Checkpoint
from .config import SearchConfig, resolve_call
from .driver import Driver
from .problem import Problem
from .result import SearchResult
from .sources import FeatureSource

__all__ = ["UNIT_PAIRS", "PairScores", "candidate_dims", "pairs", "scan_compile", "score_pairs"]

#: pairs per checkpointed unit of a scan (and per joblib task): the engine's largest CPU chunk,
#: so that a unit is one chunk and pays the per-unit setup (engine plan, start, checkpoint)
#: half as often as units of 4,096 did (measured only together with the float32 LDA start: a
#: fresh 768-dimension scan's work 3.84 -> 3.55 s)
UNIT_PAIRS = CPU_CHUNK


def candidate_dims(pb: Problem, candidates: int | Sequence[int] | None) -> np.ndarray:
    """All dimensions (None), an explicit list, or the ``candidates`` best single dimensions
    by validation stump score (ties: the better training score): ``[m]`` sorted indices."""
    if candidates is None:
        return np.arange(pb.n_dims)
    if not isinstance(candidates, (int, np.integer)):
        c = np.unique(np.asarray(candidates, dtype=np.int64))
        if c.size < 1 or c.min() < 0 or c.max() >= pb.n_dims:
            raise ConfigError(
                f"candidates: dimensions must lie in 0..{pb.n_dims - 1}, "
                f"got {list(candidates)[:10]}"
            )
        return c
    m = int(candidates)
    if m < 2:
        raise ConfigError(f"candidates must be >= 2, got {m}")
    if m >= pb.n_dims:
        return np.arange(pb.n_dims)
    sf = fit_stumps(pb.X_fit, pb.y_fit, regression=pb.regression, metric=pb.primary)
    s = batch_metrics((pb.primary,), pb.y_val, predict_stumps(sf, pb.X_val))[pb.primary]
    return np.sort(pb.rank(s, -sf.train_score)[:m])


@dataclass(frozen=True)
class _Chunk:
    """One checkpointed unit of pairs, scored on validation in a worker (with its own
    engine: workers of the threading backend share only the read-only prepared data)."""

    data: Prepared  # the problem's fitting / validation parts, standardised once
    regression: bool
    config: SearchConfig
    primary: str
    pairs: np.ndarray  # [B, 2]
    unit: str
    compile: bool | None  # True: the whole scan repays compiling (see score_pairs)


def _score_chunk(ch: _Chunk, ckpt: Checkpoint) -> np.ndarray:
    arr = ckpt.load_array(ch.unit)
    if arr is not None and arr.shape == (2, len(ch.pairs)):
        return arr
    sc = ch.config.engine(ch.regression, compile=ch.compile).fit_score_prepared(
        ch.data, ch.pairs, metrics=(ch.primary,)
    )
    arr = np.stack([sc[ch.primary], sc["loss"]])
    ckpt.save_array(ch.unit, arr)
    return arr


@dataclass(frozen=True)
class PairScores:
    """Validation scores of every pair: ``pairs [P, 2]``, ``score [P]``, ``loss [P]``."""

    pairs: np.ndarray
    score: np.ndarray
    loss: np.ndarray


def scan_compile(pb: Problem, n_pairs: int) -> bool | None:
    """The engine's ``compile`` for a scan of ``n_pairs`` pairs on ``pb``'s fitting part:
    True when the whole scan (pairs times fitting examples) reaches the engine's
    ``compile_threshold``, else None (the engine decides per call)."""
    eng = pb.config.engine(pb.regression)
    return True if n_pairs * len(pb.y_fit) >= eng.compile_threshold else None


def score_pairs(
    pb: Problem,
    cand: np.ndarray,
    ckpt: Checkpoint,
    *,
    prefix: str = "",
    chunk: int = UNIT_PAIRS,
    n_jobs: int | None = 1,
    progress: bool = False,
) -> PairScores:
    """Validation scores of every pair of ``cand``, ``chunk`` pairs per checkpointed unit
    (``<prefix>pairs-<start>-<stop>``), fanned out over joblib.

    Whether the engine compiles is decided on the whole scan (all pairs times the fitting
    examples against the engine's ``compile_threshold``), not per unit: a unit alone
    (:data:`UNIT_PAIRS`) never reaches it, and every unit after the first reuses the compiled
    kernels."""
    iu, ju = np.triu_indices(len(cand), k=1)
    P = np.stack([cand[iu], cand[ju]], axis=1).astype(np.int64)
    if len(P) == 0:
        return PairScores(P, np.zeros(0), np.zeros(0))
    starts = list(range(0, len(P), chunk))
    part = (pb.selection_data(), pb.regression, pb.config, pb.primary)
    whole = scan_compile(pb, len(P))
    units = [
        _Chunk(*part, P[s : s + chunk], f"{prefix}pairs-{s}-{min(len(P), s + chunk)}", whole)
        for s in starts
    ]
    # the first unit in this thread: a compiled scan compiles here, once, before any worker
    # calls the kernels (torch.compile's first call is not documented as thread-safe)
    first = [_score_chunk(units[0], ckpt)] if whole else []
    jobs = (fanout.delayed(_score_chunk)(u, ckpt) for u in units[len(first) :])
    rest = fanout.run_units(
        jobs, len(units) - len(first), n_jobs=n_jobs, show=progress, desc="pair chunks"
    )
    arr = np.concatenate(first + rest, axis=1)
    return PairScores(P, arr[0], arr[1])


def _top_rows(ps: PairScores, order: np.ndarray, dev: dict, primary: str, metrics) -> list:
    rows = []
    for r, i in enumerate(order):
        row = {
            "rank": r + 1,
            "dim_a": int(ps.pairs[i, 0]),
            "dim_b": int(ps.pairs[i, 1]),
            f"val_{primary}": float(ps.score[i]),
            "val_loss": float(ps.loss[i]),
        }
        row.update({f"dev_{m}": float(dev[m][r]) for m in metrics})
        rows.append(row)
    return rows


def pairs(
    train: FeatureSource,
    eval: FeatureSource | None = None,
    *,
    layer: int = -1,
    pool: str = "cls",
    top: int = 20,
    candidates: int | None = None,
    chunk: int = UNIT_PAIRS,
    config: SearchConfig | None = None,
    **legacy: Any,
) -> SearchResult:
    """All pairs of dimensions of one layer.

    Args:
        layer: 0 = embeddings, -1 = last.
        top: how many of the best pairs (by validation score) are refitted and scored on eval.
        candidates: restrict to the ``candidates`` best single dimensions by validation stump
            score (default: every dimension, ``C(D, 2)`` pairs).
        chunk: pairs per checkpointed unit of work (and per joblib task).
        config: the shared settings.
        **legacy: deprecated: ``dev=`` and the :class:`SearchConfig` fields as keywords.

    Returns:
        ``SearchResult``: ``selected`` (the best pair), ``metrics``, ``top`` pairs with
        validation and eval scores, ``full_metrics``, ``random_baseline`` (k=2); the array
        ``pairs_matrix`` ``[D, D]`` of validation scores (NaN on the diagonal and for pairs
        not scored); rows: the top pairs.
    """
    eval, config = resolve_call("pairs", eval, config, legacy)
    li = int(train.layer_index(layer))
    opts = dict(layer=li, pool=pool, top=top, candidates=candidates, chunk=chunk)
    run = Driver("pairs", train, eval, opts, config)
    cfg, p = run.config, run.primary
    pb = run.problem(li, pool)
    D = pb.n_dims
    cand = candidate_dims(pb, candidates)
    ps = score_pairs(pb, cand, run.ckpt, chunk=chunk, n_jobs=cfg.n_jobs, progress=cfg.progress)
    M = np.full((D, D), np.nan, dtype=np.float32)
    M[ps.pairs[:, 0], ps.pairs[:, 1]] = ps.score
    M[ps.pairs[:, 1], ps.pairs[:, 0]] = ps.score
    order = pb.rank(ps.score, ps.loss)[:top]
    dev = pb.report(ps.pairs[order])
    top_rows = _top_rows(ps, order, dev, p, cfg.metrics)
    found = len(order) > 0
    data = {
        "layer": li,
        "pool": pool,
        "n_dims": D,
        "n_candidates": len(cand),
        "n_pairs": len(ps.pairs),
        "selected": [int(x) for x in ps.pairs[order[0]]] if found else [],
        "metrics": {m: float(dev[m][0]) for m in cfg.metrics} if found else {},
        "val_score": float(ps.score[order[0]]) if found else None,
        "full_metrics": pb.full(),
        "random_baseline": pb.random(2),
        "majority_baseline": pb.majority(),
        "top": top_rows,
        "matrix": "pairs_matrix.npy",
        "matrix_split": "validation",
        "matrix_metric": p,
    }
    return run.finish(data, top_rows, {"pairs_matrix": M})
