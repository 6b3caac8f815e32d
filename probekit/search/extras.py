"""MDL and ablation blocks of a selected set, for the search results (``--mdl``, ``--ablation``).

* ``mdl``: Voita & Titov's online codelength (:func:`probekit.probes.online_codelength`) of
  the selected set, of full width and of ``n_random`` random sets of the same size, with the
  compression of each against the uniform code; next to it, ``mdl.control``: Hewitt &
  Liang's control task on the same set (its eval scores, the selectivity, and its own
  codelength and compression, as Voita & Titov report them), when both caches hold token
  fields (the input type of an example is its first content token);
* ``ablation``: :func:`probekit.probes.ablate`: eval scores of the probe on every dimension
  except the set (``without``) and on all after LEACE erasure of it (``erased``), next to the
  full-width score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DataError
from ..probes import ablate, control_task_baseline, control_task_labels, online_codelength
from .problem import Problem
from .verdict import judge, probe_engine

__all__ = ["ablation_block", "add_verdict", "c_record", "control_block", "extras", "mdl_block"]

#: random sets coded next to the selected one (MDL is a few fits per block; keep it small)
MDL_RANDOM_SETS = 5


def mdl_block(
    pb: Problem,
    dims: Sequence[int],
    *,
    n_random: int = MDL_RANDOM_SETS,
    types: tuple[Sequence, Sequence] | None = None,
) -> dict:
    """Codelengths (bits) and compressions of ``dims``, full width and random sets of its size,
    and the control task's (:func:`control_block`) when ``types`` (train, eval input types)
    are given.

    Classification only: ``{"skipped": reason}`` for regression.
    """
    if pb.regression:
        return {"skipped": "MDL online codelength is defined for classification only"}
    sel = np.asarray(dims, dtype=np.int64)
    seed = pb.config.seed
    eng, eng_full = probe_engine(pb, len(sel)), probe_engine(pb, pb.n_dims)
    one = online_codelength(eng, pb.X_train, pb.y_train, sel[None, :], seed=seed)
    full = online_codelength(
        eng_full, pb.X_train, pb.y_train, np.arange(pb.n_dims)[None, :], seed=seed
    )
    rng = np.random.default_rng(seed + 7)
    rdims = np.stack(
        [np.sort(rng.choice(pb.n_dims, len(sel), replace=False)) for _ in range(n_random)]
    )
    rnd = online_codelength(eng, pb.X_train, pb.y_train, rdims, seed=seed)
    return {
        "dims": sel.tolist(),
        "codelength_bits": float(one.codelength[0]),
        "compression": float(one.compression[0]),
        "uniform_codelength_bits": one.uniform_codelength,
        "full_codelength_bits": float(full.codelength[0]),
        "full_compression": float(full.compression[0]),
        "random_codelength_bits_mean": float(rnd.codelength.mean()),
        "random_compression_mean": float(rnd.compression.mean()),
        "random_compression_std": float(rnd.compression.std()),
        "random_dims": rdims.tolist(),
        "block_ends": one.block_ends.tolist(),
        "seed": seed,
        "control": control_block(pb, sel, types),
    }


def control_block(pb: Problem, dims: np.ndarray, types: tuple[Sequence, Sequence] | None) -> dict:
    """Hewitt & Liang's control task on ``dims [k]``: the probe's eval scores on the task and
    on the control labels, the selectivity (task minus control), and the control task's
    online codelength and compression. ``{"skipped": reason}`` without input types."""
    if types is None:
        return {
            "skipped": "needs token fields in both caches (extract without --no-tokens): the "
            "input type of an example is its first content token"
        }
    seed = pb.config.seed
    eng = probe_engine(pb, len(dims))
    try:
        cb = control_task_baseline(
            eng, pb.X_train, pb.y_train, pb.X_eval, pb.y_eval, dims[None, :], *types,
            seed=seed, metrics=pb.metrics,
        )  # fmt: skip
    except DataError as e:  # every type drew one label: no control task to fit
        return {"skipped": str(e)}
    yc, _ = control_task_labels(types[0], pb.y_train, types[1], seed=seed)
    code = online_codelength(eng, pb.X_train, yc, dims[None, :], seed=seed)
    return {
        "input_type": "first content token id (see probekit.probes.input_types)",
        "n_types": len(set(types[0])),
        "metrics": {m: float(cb["control"][m][0]) for m in pb.metrics},
        "selectivity": {m: float(v[0]) for m, v in cb["selectivity"].items()},
        "codelength_bits": float(code.codelength[0]),
        "compression": float(code.compression[0]),
        "seed": seed,
    }


def ablation_block(pb: Problem, dims: Sequence[int]) -> dict[str, Any]:
    """``{"without": {metric: ...}, "erased": {...}, "full": {...}}`` on eval (probes at the
    full-width ``C``: both ablated probes see all or all but ``k`` dimensions)."""
    out: dict[str, Any] = ablate(
        probe_engine(pb, pb.n_dims),
        pb.X_train,
        pb.y_train,
        pb.X_eval,
        pb.y_eval,
        dims,
        metrics=pb.metrics,
    )
    out["full"] = pb.full()
    out["dims"] = [int(d) for d in dims]
    return out


def c_record(pb: Problem) -> dict[str, Any]:
    """The ``C`` block of a result: the problem's own record (``C="auto"``: grid and choice per
    k) where it keeps one, else the fixed ``C``."""
    if hasattr(pb, "C_record"):
        return pb.C_record()
    return {"mode": "fixed", "chosen": float(pb.config.C)}


def extras(
    pb: Problem,
    dims: Sequence[int],
    *,
    mdl: bool,
    ablation: bool,
    types: tuple[Sequence, Sequence] | None = None,
) -> dict[str, Any]:
    """The ``mdl`` (with its control task when ``types`` are given) and ``ablation`` blocks
    asked for (empty dict for neither)."""
    out: dict[str, Any] = {}
    if mdl and len(dims):
        out["mdl"] = mdl_block(pb, dims, types=types)
    if ablation and len(dims):
        out["ablation"] = ablation_block(pb, dims)
    return out


def add_verdict(
    out: dict[str, Any],
    pb: Problem,
    task: str,
    *,
    mdl: bool,
    ablation: bool,
    types: tuple[Sequence, Sequence] | None = None,
) -> None:
    """Add to a search result ``out`` the ``verdict`` of its ``selected`` dims against the
    majority baseline and its ``random_baseline`` (none when nothing was selected), then the
    asked-for ``mdl`` / ``ablation`` blocks (:func:`extras`)."""
    sel = out["selected"]
    if sel:
        rnd = out["random_baseline"]["dims"]
        out["verdict"] = judge(pb, sel, task=task, random_dims=rnd).to_dict()
    out.update(extras(pb, sel, mdl=mdl, ablation=ablation, types=types))
