"""The joblib backend (and cluster) that ``probekit search --backend`` fans out on."""

from __future__ import annotations

import argparse
import contextlib


def runs_here(args: argparse.Namespace) -> bool:
    """The fan-out runs in this process, one unit after another: a local backend with
    ``--n-jobs 1`` (the default), or ``--backend sequential``. Then no joblib is set up or
    imported (0.1 s of the start-up)."""
    local = args.backend in ("loky", "threading", "sequential")
    return local and (args.n_jobs == 1 or args.backend == "sequential")


def joblib_backend(args: argparse.Namespace) -> contextlib.ExitStack:
    """A context manager selecting the joblib backend (and cluster) of ``--backend``
    (nothing where :func:`runs_here`)."""
    if runs_here(args):
        return contextlib.ExitStack()
    import joblib

    from probekit.errors import ConfigError

    stack = contextlib.ExitStack()
    if args.backend == "dask":
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError(
                "--backend dask needs the dask extra: pip install 'probekit-dims[dask]'"
            ) from None
        if args.scheduler:
            client = stack.enter_context(Client(args.scheduler))
        else:
            n = args.n_jobs if args.n_jobs and args.n_jobs > 0 else None
            cluster = LocalCluster(
                n_workers=n, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
            )
            client = stack.enter_context(Client(stack.enter_context(cluster)))
        print(f"dask: {client}")
        stack.enter_context(joblib.parallel_config(backend="dask", n_jobs=-1))
    elif args.backend == "ray":
        try:
            import ray
            from ray.util.joblib import register_ray
        except ImportError:
            raise ConfigError(
                "--backend ray needs the ray extra: pip install 'probekit-dims[ray]'"
            ) from None
        register_ray()
        ray.init(address=args.scheduler, ignore_reinit_error=True)
        stack.callback(ray.shutdown)
        stack.enter_context(joblib.parallel_config(backend="ray", n_jobs=-1))
    else:
        stack.enter_context(joblib.parallel_config(backend=args.backend, n_jobs=args.n_jobs))
    return stack
