"""Fan-out of a search's units of work over joblib, without naming a backend.

The caller chooses the backend: ``with joblib.parallel_config(backend="dask"): greedy(...)``
runs on a Dask cluster. Modules call ``fanout.parallel`` (not a copy of it), so a test can
watch which backend ran.
"""

from __future__ import annotations

from collections.abc import Iterable

from joblib import Parallel

__all__ = ["parallel", "progress"]


def parallel(n_jobs: int | None) -> Parallel:
    """A :class:`joblib.Parallel` with ``n_jobs`` workers (None: the active config's)."""
    return Parallel(n_jobs=n_jobs)


def progress(it: Iterable, total: int, show: bool, desc: str) -> Iterable:
    """``it`` wrapped in a tqdm bar when ``show``."""
    if not show:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, total=total, desc=desc)
