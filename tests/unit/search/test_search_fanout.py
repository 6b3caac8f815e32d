"""Fan-out inside a search over joblib backends: loky, Dask, Ray give the local result."""

from __future__ import annotations

import sys

import pytest
from search_data import planted

from probekit import search as S
from probekit.search import ArraySource, fanout


def test_dask_matches_local():
    pytest.importorskip("distributed")
    import joblib
    from dask.distributed import Client, LocalCluster, get_task_stream

    Xt, yt = planted(300, D=40, L=2)
    Xd, yd = planted(150, D=40, L=2, seed=1)
    tr, dv = ArraySource(Xt, yt), ArraySource(Xd, yd)
    local = S.greedy(tr, dv, k=2, repeats=2, n_random=20)
    local_s = S.singles(tr, dv, n_jobs=1)
    with joblib.parallel_config(backend="loky", n_jobs=2):  # worker processes: everything pickles
        loky = S.greedy(tr, dv, k=2, repeats=2, n_random=20)
    assert loky["selected"] == local["selected"] and loky["stability"] == local["stability"]
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=False,
            protocol="tcp",
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        assert client.scheduler.address.startswith("tcp://127.0.0.1")
        with joblib.parallel_config(backend="dask"), get_task_stream(client) as ts:
            remote = S.greedy(tr, dv, k=2, repeats=2, n_random=20)
            remote_s = S.singles(tr, dv)
        assert len(ts.data) >= 4  # 2 repeats + 2 layers ran on the cluster
    for key in ("selected", "metrics", "full_metrics", "random_baseline", "curve", "stability"):
        a, b = local[key], remote[key]
        if key == "curve":
            a = [{k: v for k, v in c.items() if k != "seconds"} for c in a]
            b = [{k: v for k, v in c.items() if k != "seconds"} for c in b]
        assert a == b, key
    assert local_s["top"] == remote_s["top"]


def test_ray_matches_local(monkeypatch):
    """The ray joblib backend (probekit-dims[ray]) gives the local result; skipped without ray."""
    ray = pytest.importorskip("ray")
    import joblib
    from ray.util.joblib import register_ray

    Xt, yt = planted(300, D=40, L=2)
    Xd, yd = planted(150, D=40, L=2, seed=1)
    tr, dv = ArraySource(Xt, yt), ArraySource(Xd, yd)
    local = S.greedy(tr, dv, k=2, repeats=2, n_random=20)
    backends = []
    make = fanout.parallel

    def spy(n_jobs):  # which joblib backend the search's fan-out really used
        par = make(n_jobs)
        backends.append(type(par._backend).__name__)
        return par

    monkeypatch.setattr(fanout, "parallel", spy)
    register_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with joblib.parallel_config(backend="ray", n_jobs=2):
            remote = S.greedy(tr, dv, k=2, repeats=2, n_random=20)
    finally:
        ray.shutdown()
    assert backends and all(b == "RayBackend" for b in backends), backends
    for key in ("selected", "metrics", "full_metrics", "random_baseline", "stability"):
        assert local[key] == remote[key], key


def test_one_job_runs_here_in_order_and_any_other_count_goes_to_joblib(monkeypatch):
    """n_jobs=1 runs the tasks in this process (no joblib import on a search's start-up); the
    tasks are joblib's (fn, args, kwargs), so None and counts above 1 still go to joblib."""
    jobs = [fanout.delayed(divmod)(i, 3) for i in range(5)]
    assert jobs[2] == (divmod, (2, 3), {})

    def refuse(n_jobs):
        raise AssertionError("joblib was asked")

    with monkeypatch.context() as m:
        m.setattr(fanout, "parallel", refuse)
        m.delitem(sys.modules, "joblib", raising=False)  # no joblib in use: here
        assert fanout.run_units(iter(jobs), 5, n_jobs=1, show=False, desc="") == [
            divmod(i, 3) for i in range(5)
        ]
        with pytest.raises(AssertionError, match="joblib was asked"):
            fanout.run_units(iter(jobs), 5, n_jobs=None, show=False, desc="")
    import joblib  # noqa: F401  (in use: a parallel_config, e.g. Dask's, may take even one job)

    with monkeypatch.context() as m:
        m.setattr(fanout, "parallel", refuse)
        with pytest.raises(AssertionError, match="joblib was asked"):
            fanout.run_units(iter(jobs), 5, n_jobs=1, show=False, desc="")
    assert fanout.run_units(iter(jobs), 5, n_jobs=2, show=False, desc="") == [
        divmod(i, 3) for i in range(5)
    ]


def test_units_run_here_show_progress_and_stop_at_the_first_failure(monkeypatch, capsys):
    """In this process, the bar counts every unit; a failing unit raises its own error and the
    units after it do not run (those before it have written their checkpoints)."""
    monkeypatch.delitem(sys.modules, "joblib", raising=False)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)  # the bar must draw
    ran = []

    def unit(i):
        ran.append(i)
        if i == 2:
            raise ValueError(f"unit {i} failed")
        return i * i

    jobs = [fanout.delayed(unit)(i) for i in range(4)]
    assert fanout.run_units(iter(jobs[:2]), 2, n_jobs=1, show=True, desc="pairs") == [0, 1]
    err = capsys.readouterr().err
    assert "pairs" in err and "2/2" in err
    ran.clear()
    with pytest.raises(ValueError, match="unit 2 failed"):
        fanout.run_units(iter(jobs), 4, n_jobs=1, show=False, desc="")
    assert ran == [0, 1, 2]
