"""Fan-out of a search's units of work over joblib, without naming a backend.

The caller chooses the backend: ``with joblib.parallel_config(backend="dask"): greedy(...)``
runs on a Dask cluster. Modules call ``fanout.parallel`` (not a copy of it), so a test can
watch which backend ran. ``n_jobs=1`` runs the units in this process without importing joblib
(0.1 s of every search's start-up), as joblib's sequential backend would.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["delayed", "parallel", "progress", "run_units"]


def delayed(fn: Callable) -> Callable[..., tuple]:
    """``delayed(fn)(*args, **kwargs)``: the ``(fn, args, kwargs)`` task that
    :func:`joblib.delayed` makes, without importing joblib."""

    def task(*args: Any, **kwargs: Any) -> tuple:
        return fn, args, kwargs

    return task


def parallel(n_jobs: int | None):
    """A :class:`joblib.Parallel` with ``n_jobs`` workers (None: the active config's)."""
    from joblib import Parallel

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
    """Run :func:`delayed` (or joblib ``delayed``) ``jobs`` on :func:`parallel`, or here when
    ``n_jobs == 1``, with a progress bar; results in order."""
    # here unless joblib is in use: a parallel_config (e.g. Dask's, which ignores n_jobs)
    # may then send even one job elsewhere, as before
    if n_jobs == 1 and "joblib" not in sys.modules:
        return [fn(*a, **kw) for fn, a, kw in progress(jobs, total, show, desc)]
    return list(progress(parallel(n_jobs)(jobs), total, show, desc))
