"""Cache-sized tiles for the eager kernels that sum over examples, run on worker threads.

An eager pass on the CPU materialises a dozen ``[B, n]`` temporaries; over a whole chunk
(e.g. ``[500, 10000]``) they stream through memory, 3-4x slower than over tiles whose
temporaries stay in the core's cache. :func:`tiled` runs such a kernel tile by tile, and
:func:`threaded` runs independent tiles on worker threads of one torch thread each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

__all__ = ["TILE_ELEMS", "TILE_N", "threaded", "tiled"]

#: an eager pass on the CPU runs over tiles of at most TILE_ELEMS probe-examples, TILE_N
#: examples wide: each of its [B, n] temporaries is then ~0.5 MiB and stays in the core's
#: cache (a whole chunk's, e.g. [500, 10000], streamed through memory: 3-4x slower)
TILE_N = 2048
TILE_ELEMS = 2**17

T = TypeVar("T")

_WORKER = threading.local()  # .active: this thread is one of threaded()'s workers


def threaded(jobs: Sequence[Callable[[], T]]) -> list[T]:
    """The results of ``jobs`` (in their order), run on as many worker threads as the
    caller's torch threads (``torch.get_num_threads()``), each worker with one torch thread,
    taking the next job when it finishes one.

    Small eager operations split over OpenMP threads wait at a barrier after each one, so a
    tile runs at the pace of the slower core (on a shared VM, often 2x slower than the
    other); independent tiles on threads of their own don't wait for each other (the eager pass
    over all pairs of 384 on 2 threads: 2.3-2.6 s against 3.9-5.3 s, ``benchmarks/README.md``).
    Each job's result does not depend on which worker runs it; workers run with the caller's
    grad mode (not its autocast or denormal settings, which the eager kernels do not use).
    Runs the jobs in the calling thread, with its own torch threads (so a lone job's bits may
    differ from a worker's), when it has one torch thread, when there is one job, or inside a
    worker. A failed job (or an interrupt) cancels the jobs not yet started and re-raises.
    ``torch.set_num_threads`` also sets the count that threads new to torch start with, for
    the whole process: while two callers in different threads run this at once, such a thread
    may start with one (speed only)."""
    workers = min(torch.get_num_threads(), len(jobs))
    if workers <= 1 or getattr(_WORKER, "active", False):
        return [job() for job in jobs]
    caller, grad = torch.get_num_threads(), torch.is_grad_enabled()  # (both per thread)

    def run(job: Callable[[], T]) -> T:
        with torch.set_grad_enabled(grad):
            return job()

    try:
        # (map's results cancel the jobs not yet started when one raises)
        with ThreadPoolExecutor(workers, initializer=_one_thread) as pool:
            return list(pool.map(run, jobs))
    finally:
        # set_num_threads also records the count new threads start with: give that back
        torch.set_num_threads(caller)


def _one_thread() -> None:
    _WORKER.active = True
    torch.set_num_threads(1)


def tiled(
    fn: Callable,
    X: torch.Tensor,
    d: torch.Tensor,
    theta: torch.Tensor,
    y: torch.Tensor,
    *,
    elems: int | None = None,
    width: int | None = None,
):
    """``fn(X, d, theta, y)`` for a kernel whose output ``[B, c]`` is sums over the examples
    (the columns of ``X [Du, n]``, the entries of ``y [n]``) per probe (the rows of
    ``d [B, k]`` and ``theta [B, p]``): on the CPU, tile by tile (the example tiles' sums
    added in float64; the same sums up to float32 rounding; blocks of probes on worker
    threads, :func:`threaded`), elsewhere in one call. Tiles of at most ``elems``
    probe-examples, ``width`` examples wide (default :data:`TILE_ELEMS`, :data:`TILE_N`)."""
    elems = TILE_ELEMS if elems is None else elems
    width = TILE_N if width is None else width
    B, n = d.shape[0], X.shape[1]
    if X.device.type != "cpu" or B * n <= elems:
        return fn(X, d, theta, y)
    nc = min(n, width)
    tb = max(1, elems // nc)

    def block(b: int) -> torch.Tensor:
        db, thb = d[b : b + tb], theta[b : b + tb]
        first = fn(X[:, :nc], db, thb, y[:nc])
        acc = first.to(torch.float64)  # (float32 sums of many tiles would drift at large n)
        for i in range(nc, n, nc):
            acc += fn(X[:, i : i + nc], db, thb, y[i : i + nc])
        return acc.to(first.dtype)

    return torch.cat(threaded([lambda b=b: block(b) for b in range(0, B, tb)]))
