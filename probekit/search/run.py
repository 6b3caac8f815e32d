"""Dispatch by name (:func:`run_search`) and fan-out of whole searches (:func:`run_many`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from . import fanout
from .config import SearchConfig
from .eliminate import eliminate
from .exact import exact
from .greedy import greedy
from .pairs import pairs
from .rank import rank
from .result import SearchResult
from .singles import singles
from .sources import FeatureSource
from .sweeps import layers, tokens

__all__ = ["SEARCHES", "VERBS", "run_many", "run_search"]

#: every search by its name (the CLI verb ``probekit search VERB``)
SEARCHES: dict[str, Callable[..., SearchResult]] = {
    "singles": singles,
    "pairs": pairs,
    "greedy": greedy,
    "eliminate": eliminate,
    "layers": layers,
    "tokens": tokens,
    "rank": rank,
    "exact": exact,
}
VERBS = tuple(SEARCHES)

_CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(SearchConfig))


def run_search(
    verb: str,
    train: FeatureSource,
    eval: FeatureSource | None = None,
    *,
    config: SearchConfig | None = None,
    **kwargs: Any,
) -> SearchResult:
    """Run the search named ``verb`` (one of :data:`VERBS`) with its own keyword options."""
    if verb not in SEARCHES:
        raise ConfigError(f"unknown search {verb!r}; choose one of {', '.join(VERBS)}")
    if eval is not None:
        kwargs["eval"] = eval
    return SEARCHES[verb](train, config=config, **kwargs)


def _run_spec(spec: Mapping[str, Any]) -> SearchResult:
    spec = dict(spec)
    verb, train, eval = spec.pop("verb"), spec.pop("train"), spec.pop("eval")
    settings = {k: spec.pop(k) for k in list(spec) if k in _CONFIG_FIELDS}
    config = dataclasses.replace(spec.pop("config", None) or SearchConfig(), **settings, n_jobs=1)
    if isinstance(train, (str, Path)) or isinstance(eval, (str, Path)):
        from ..cache import ActivationCache

        with ActivationCache(train) as tr, ActivationCache(eval) as ev:
            return run_search(verb, tr, ev, config=config, **spec)
    return run_search(verb, train, eval, config=config, **spec)


def run_many(specs: Sequence[Mapping[str, Any]], n_jobs: int | None = None) -> list[SearchResult]:
    """Fan several searches out over joblib: tasks, models, seeds, verbs.

    Args:
        specs: one mapping per search: ``verb``, ``train`` and ``eval`` (cache paths, opened in
            the worker, or sources), optionally ``config`` (a :class:`SearchConfig`), any
            :class:`SearchConfig` field (``seed``, ``out_dir``, ...: it replaces the config's;
            give each search its own ``out_dir``) and the search's own options. Each search
            runs with ``n_jobs=1`` inside its worker.
        n_jobs: joblib workers (None: joblib's default or the active ``parallel_config``,
            e.g. a Dask cluster).

    Returns:
        The results, in the order of ``specs``.
    """
    for s in specs:
        missing = {"verb", "train", "eval"} - set(s)
        if missing:
            raise ConfigError(f"run_many: spec {dict(s)} lacks {sorted(missing)}")
        if s["verb"] not in SEARCHES:
            raise ConfigError(
                f"run_many: unknown search {s['verb']!r}; choose one of {', '.join(VERBS)}"
            )
    return list(fanout.parallel(n_jobs)(fanout.delayed(_run_spec)(s) for s in specs))
