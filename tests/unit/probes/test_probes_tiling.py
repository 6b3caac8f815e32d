"""probekit.probes.tiling.threaded: independent tiles on worker threads of one torch thread
each, with results in order, independent of the workers, and the caller's threads intact."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import probekit.probes.pair_kernels as PK
import probekit.probes.tiling as T


@pytest.fixture
def two_threads():
    """The caller with two torch threads (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _job(i: int):
    return lambda: (i, threading.get_ident(), torch.get_num_threads())


def test_jobs_run_in_order_on_workers_of_one_thread(two_threads):
    out = T.threaded([_job(i) for i in range(40)])
    assert [o[0] for o in out] == list(range(40))
    assert {o[2] for o in out} == {1}
    assert threading.get_ident() not in {o[1] for o in out}
    assert len({o[1] for o in out}) <= 2
    assert torch.get_num_threads() == 2


def test_threads_started_afterwards_keep_the_callers_count(two_threads):
    T.threaded([_job(i) for i in range(4)])
    seen = []
    t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    t.start()
    t.join()
    assert seen == [2]


def test_one_thread_one_job_or_inside_a_worker_runs_inline(two_threads):
    me = threading.get_ident()
    assert T.threaded([_job(0)])[0][1] == me
    nested = T.threaded([lambda: T.threaded([_job(1), _job(2)]) for _ in range(2)])
    for inner in nested:  # each worker ran its inner jobs itself
        assert inner[0][1] == inner[1][1] != me
    torch.set_num_threads(1)
    assert {o[1] for o in T.threaded([_job(i) for i in range(3)])} == {me}


def test_a_failing_job_raises_in_the_caller_with_its_threads_intact(two_threads):
    def bad():
        raise ValueError("tile 3")

    with pytest.raises(ValueError, match="tile 3"):
        T.threaded([_job(0), bad, _job(2)])
    assert torch.get_num_threads() == 2


def test_pair_kernels_give_the_same_bits_on_workers_as_on_one_thread(two_threads, monkeypatch):
    """Tiles of 3 probes x 64 examples, so that a few hundred pairs make many jobs."""
    monkeypatch.setattr(PK, "TILE_N", 64)
    monkeypatch.setattr(PK, "TILE_ELEMS", 3 * 64)
    monkeypatch.setattr(PK, "MIN_GROUP", 2)
    g = torch.Generator().manual_seed(0)
    Xt = torch.randn((24, 300), generator=g)
    y = (torch.rand(300, generator=g) < 0.4).to(torch.float32)
    d = torch.as_tensor(np.stack(np.triu_indices(24, 1), 1))
    theta = 0.4 * torch.randn((len(d), 3), generator=g)
    on_workers = PK.pair_pass(Xt, d, theta, y), PK.pair_eval(Xt, d, theta, y)
    torch.set_num_threads(1)
    inline = PK.pair_pass(Xt, d, theta, y), PK.pair_eval(Xt, d, theta, y)
    for a, b in zip(on_workers, inline, strict=True):
        assert torch.equal(a, b)


def test_a_failing_job_cancels_the_jobs_not_started(two_threads):
    import time

    ran = []

    def slow(i):
        def job():
            time.sleep(0.01)
            ran.append(i)

        return job

    def bad():
        raise RuntimeError("tile 0")

    with pytest.raises(RuntimeError, match="tile 0"):
        T.threaded([bad] + [slow(i) for i in range(50)])
    assert len(ran) < 10  # the queued ones were dropped, not run to the end


def test_workers_run_with_the_callers_grad_mode(two_threads):
    def job():
        return torch.is_grad_enabled()

    with torch.no_grad():
        assert T.threaded([job, job, job]) == [False] * 3
    assert T.threaded([job, job]) == [True] * 2
