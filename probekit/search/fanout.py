"""Fan-out of a search's units of work over joblib, without naming a backend.

The caller chooses the backend: ``with joblib.parallel_config(backend="dask"): greedy(...)``
runs on a Dask cluster. Modules call ``fanout.parallel`` (not a copy of it), so a test can
watch which backend ran.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from joblib import Parallel

__all__ = ["parallel", "progress", "run_units"]


def parallel(n_jobs: int | None) -> Parallel:
    """A :class:`joblib.Parallel` with ``n_jobs`` workers (None: the active config's)."""
    return Parallel(n_jobs=n_jobs)


def progress(it: Iterable, total: int, show: bool, desc: str) -> Iterable:
    """``it`` wrapped in a tqdm bar when ``show``."""
    if not show:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, total=total, desc=desc)


def run_units(
    jobs: Iterable, total: int, *, n_jobs: int | None, show: bool, desc: str
) -> list[Any]:
    """Run joblib ``delayed`` ``jobs`` on :func:`parallel` with a progress bar; results in order."""
    return list(progress(parallel(n_jobs)(jobs), total, show, desc))
