"""probekit command line: parses arguments, calls the package, prints.

Each verb has a ``_add_<verb>(sub)`` function that declares its arguments and sets
``func`` to a ``_cmd_<verb>(args)`` function; :func:`main` wires them together. User errors
(:class:`probekit.errors.ProbekitError`) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from probekit.errors import ProbekitError


def _add_common_data(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--task",
        default="demo",
        help="GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli, ax), "
        "GLUE directory name (SST-2, ...), or demo (default; built in, offline)",
    )
    p.add_argument(
        "--split",
        default="train",
        help="train, dev (= validation), test; MNLI: dev_matched, dev_mismatched",
    )
    p.add_argument(
        "--glue-dir", help="local GLUE directory in the download-script layout (glue_data/)"
    )
    p.add_argument("--data", help="your own CSV/TSV/JSONL file instead of GLUE")
    p.add_argument("--text-col", help="text column of --data")
    p.add_argument("--pair-col", help="second-text column of --data (sentence pairs)")
    p.add_argument("--label-col", help="label column of --data")
    p.add_argument("--limit", type=int, help="only the first N examples of the split")


# ---------------------------------------------------------------------------------- extract
def _add_extract(sub) -> None:
    p = sub.add_parser(
        "extract", help="run an encoder over a dataset and cache every layer's vectors (HDF5)"
    )
    p.add_argument(
        "--model",
        default="minilm",
        help="minilm (embedded default), a Hugging Face id, or a local path",
    )
    _add_common_data(p)
    p.add_argument("--out", required=True, help="output cache file (.h5)")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--dtype",
        default="float16",
        choices=["float16", "float32"],
        help="storage dtype of the vectors",
    )
    p.add_argument(
        "--compute-dtype",
        default="float32",
        choices=["float32", "bfloat16", "float16"],
        help="dtype of the forward pass (bfloat16 is faster on GPUs; hidden states then differ by ~1%%)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument(
        "--no-tokens", action="store_true", help="store only the pooled sentence-level views"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted extraction (FILE.h5.partial)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing complete cache")
    p.add_argument(
        "--shard", help="i/n: extract only the i-th of n parts (merge them with `probekit merge`)"
    )
    p.add_argument(
        "--window-tokens",
        type=int,
        help="tokens buffered per write window (default: ~256 MiB of vectors); "
        "an interruption loses at most one window",
    )
    p.set_defaults(func=_cmd_extract)


def _load_data(args):
    from probekit.tasks import load_task

    return load_task(
        args.task,
        args.split,
        glue_dir=args.glue_dir,
        data=args.data,
        text_col=args.text_col,
        pair_col=args.pair_col,
        label_col=args.label_col,
        limit=args.limit,
    )


def _cmd_extract(args) -> int:
    from probekit.extract import extract
    from probekit.models import load_encoder

    data = _load_data(args)
    lm = load_encoder(args.model, device=args.device, dtype=args.compute_dtype)
    print(
        f"extracting {len(data)} examples of {data.task.name}/{data.split} with {args.model} "
        f"({lm.n_layers} hidden states x {lm.hidden_size}) on {lm.device}"
    )
    rep = extract(
        lm,
        data,
        args.out,
        batch_size=args.batch_size,
        max_length=args.max_length,
        store_tokens=not args.no_tokens,
        storage_dtype=args.dtype,
        resume=args.resume,
        overwrite=args.overwrite,
        shard=args.shard,
        window_tokens=args.window_tokens,
    )
    if rep.n_truncated:
        print(
            f"note: {rep.n_truncated} of {rep.n_examples} examples were longer than {args.max_length} tokens "
            "and were truncated"
        )
    resumed = f" (resumed at example {rep.resumed_from})" if rep.resumed_from else ""
    print(
        f"wrote {rep.path}: {rep.n_examples} examples, {rep.n_tokens} tokens in {rep.elapsed_s:.1f} s "
        f"({rep.tokens_per_s:,.0f} tokens/s){resumed}"
    )
    return 0


def _add_info(sub) -> None:
    p = sub.add_parser("info", help="schema, shapes, sizes and provenance of a cache file")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.set_defaults(func=_cmd_info)


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return str(n)


def _cmd_info(args) -> int:
    from probekit.cache import describe

    d = describe(args.file)
    if args.json:
        print(json.dumps(d, indent=2, default=str))
        return 0
    m = d["meta"]
    state = (
        "complete"
        if m.get("complete")
        else f"PARTIAL ({m.get('n_done')} of {m.get('n_examples')} examples)"
    )
    print(f"{d['path']}  {_fmt_bytes(d['file_bytes'])}  {state}")
    print(f"  schema        {m.get('schema')} v{m.get('schema_version')}")
    print(
        f"  model         {m.get('model')} ({m.get('model_type')}, weights {m.get('model_hash')}, "
        f"compute {m.get('compute_dtype')})"
    )
    print(
        f"  task/split    {m.get('task')}/{m.get('split')}  fields {m.get('text_fields')}  "
        f"labels {m.get('label_names') or 'regression'}  metrics {m.get('metrics')}"
    )
    print(
        f"  examples      {m.get('n_examples')}  layers {m.get('n_layers')} (0 = embeddings)  "
        f"hidden {m.get('hidden_size')}  storage {m.get('storage_dtype')}  max_length {m.get('max_length')} "
        f"(truncated {m.get('n_truncated')})"
    )
    if m.get("shard"):
        print(f"  shard         {m.get('shard')}")
    print(f"  source        {m.get('source')}  data hash {str(m.get('data_hash'))[:16]}")
    print(
        f"  made          {m.get('created')} by probekit {m.get('probekit_version')}, torch "
        f"{m.get('torch_version')}, transformers {m.get('transformers_version')} on {m.get('device')}"
    )
    print("  datasets:")
    for name, ds in sorted(d["datasets"].items()):
        print(
            f"    {name:<22} {tuple(ds['shape'])!s:<22} {ds['dtype']:<8} chunks {tuple(ds['chunks'])!s:<16} "
            f"{_fmt_bytes(ds['bytes'])}"
        )
    return 0


def _add_merge(sub) -> None:
    p = sub.add_parser("merge", help="build one cache from the shards of a sharded extraction")
    p.add_argument("shards", nargs="+", help="shard caches (all of 0..n-1)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_cmd_merge)


def _cmd_merge(args) -> int:
    from probekit.cache import merge_shards

    path = merge_shards(args.shards, args.out)
    print(f"merged {len(args.shards)} shards into {path}")
    return 0


# ---------------------------------------------------------------------------------- probe
def _add_probe(sub) -> None:
    p = sub.add_parser(
        "probe",
        help="one linear probe on chosen dimensions of one layer, with majority, "
        "random-dimension (and control-task) baselines",
    )
    p.add_argument("--train", required=True, help="training cache (.h5)")
    p.add_argument(
        "--eval", required=True, help="evaluation cache (.h5, e.g. dev); the reported scores"
    )
    p.add_argument(
        "--layer",
        type=int,
        default=-1,
        help="0 = embeddings, negative counts from the top (default -1)",
    )
    p.add_argument(
        "--pool",
        default="cls",
        choices=["cls", "mean", "max_norm"],
        help="sentence vector (default cls)",
    )
    p.add_argument(
        "--dims", default="all", help="'all' (default) or comma-separated dimensions, e.g. 12,200"
    )
    p.add_argument("--out", required=True, help="result file (.json)")
    p.add_argument(
        "--C",
        type=float,
        default=1.0,
        help="inverse L2 strength, as scikit-learn's LogisticRegression (ridge: alpha = 1/C)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the validation split, random baseline, control task",
    )
    p.add_argument(
        "--n-random", type=int, default=20, help="random-dimension baseline draws (default 20)"
    )
    p.add_argument(
        "--val-fraction", type=float, default=0.2, help="validation part of --train (default 0.2)"
    )
    p.add_argument(
        "--control",
        action="store_true",
        help="also fit a Hewitt & Liang control task (input type = "
        "first content token; needs token fields in both caches) and report selectivity",
    )
    p.add_argument(
        "--device", default="cpu", help="torch device of the probe engine (cpu, cuda, cuda:N)"
    )
    p.add_argument("--progress", action="store_true", help="progress bars")
    p.set_defaults(func=_cmd_probe)


def _probe_types(cache):
    from probekit.probes import input_types

    if not cache.has_tokens:
        from probekit.errors import CacheError

        raise CacheError(f"{cache.path}: --control needs token fields (extracted with --no-tokens)")
    return input_types(
        cache.token_field("input_ids"), cache.offsets, cache.token_field("special_tokens_mask")
    )


def _cmd_probe(args) -> int:
    import platform
    import time

    import numpy as np
    import sklearn
    import torch

    import probekit
    from probekit.cache import ActivationCache
    from probekit.errors import CacheMismatchError
    from probekit.probes import evaluate_probe, parse_dims

    t0 = time.perf_counter()
    with ActivationCache(args.train) as tr, ActivationCache(args.eval) as ev:
        for key in ("task", "model_hash", "hidden_size", "n_layers"):
            if tr.meta.get(key) != ev.meta.get(key):
                raise CacheMismatchError(
                    f"--train {tr.path} and --eval {ev.path} differ in {key}: "
                    f"{tr.meta.get(key)!r} vs {ev.meta.get(key)!r}"
                )
        task = tr.task
        layer = tr.layer_index(args.layer)
        dims = parse_dims(args.dims, tr.hidden_size)
        Xtr = tr.features(layer, args.pool)
        Xev = ev.features(layer, args.pool)
        ytr, yev = tr.labels, ev.labels
        if not task.regression and ((ytr < 0).any() or (yev < 0).any()):
            from probekit.errors import DataError

            raise DataError(
                f"{tr.path if (ytr < 0).any() else ev.path}: has unlabelled examples (label -1)"
            )
        types = (_probe_types(tr), _probe_types(ev)) if args.control else (None, None)
        print(
            f"probe: task {task.name}, layer {layer} of {tr.n_layers - 1} ({args.pool}), {len(dims)} of "
            f"{tr.hidden_size} dims; train {tr.n_examples} ({tr.path.name}), eval {ev.n_examples} ({ev.path.name})"
        )
        res = evaluate_probe(
            Xtr,
            ytr,
            Xev,
            yev,
            dims,
            metrics=task.metrics,
            regression=task.regression,
            C=args.C,
            device=args.device,
            seed=args.seed,
            n_random=args.n_random,
            val_fraction=args.val_fraction,
            types_train=types[0],
            types_eval=types[1],
            progress=args.progress,
        )
        sources = {
            "train": str(tr.path),
            "eval": str(ev.path),
            "model": tr.meta.get("model"),
            "model_hash": tr.meta.get("model_hash"),
            "train_split": tr.meta.get("split"),
            "eval_split": ev.meta.get("split"),
        }
    out = {
        "command": "probe",
        "task": task.name,
        "layer": layer,
        "layer_arg": args.layer,
        "pool": args.pool,
        **res,
        "probe": {
            "kind": "ridge" if task.regression else "logistic",
            "C": args.C,
            "standardized": "train mean/std",
        },
        "seed": args.seed,
        "sources": sources,
        "config": {k: v for k, v in vars(args).items() if k != "func"},
        "versions": {
            "probekit": probekit.__version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
        },
        "wall_time_s": round(time.perf_counter() - t0, 3),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, allow_nan=False) + "\n")

    def f(v):
        return "-" if v is None else f"{v:.4f}"

    names = list(task.metrics)
    rb = res["random_baseline"]
    rows = [
        ("probe (eval)", [f(res["metrics"][m]) for m in names]),
        ("probe (val split)", [f(res["val_metrics"][m]) for m in names]),
        ("majority", [f(res["majority_baseline"][m]) for m in names]),
    ]
    if rb.get("n_draws"):
        rows.append(
            (
                f"random {rb['k']} dims (x{rb['n_draws']})",
                [f"{f(rb['mean'][m])} +- {f(rb['std'][m])}" for m in names],
            )
        )
    if "control" in res:
        rows.append(("control task", [f(res["control"]["metrics"][m]) for m in names]))
        rows.append(("selectivity", [f(res["control"]["selectivity"][m]) for m in names]))
    w = max(len(r[0]) for r in rows) + 2
    print(" " * w + "".join(f"{m:>20}" for m in names))
    for label, vals in rows:
        print(f"{label:<{w}}" + "".join(f"{v:>20}" for v in vals))
    print(f"wrote {args.out} in {out['wall_time_s']:.1f} s")
    return 0


# ---------------------------------------------------------------------------------- search
def _add_search(sub) -> None:
    p = sub.add_parser(
        "search",
        help="which few dimensions carry a task: singles, pairs, greedy, eliminate, "
        "layers, tokens (selection on a validation split of --train, scores on --eval)",
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    helps = {
        "singles": "every dimension of every layer: exact-threshold stump and 1-d probe, ranked",
        "pairs": "all pairs of dimensions of one layer: top pairs and the full score matrix",
        "greedy": "greedy forward selection up to --k dimensions (or --within a fraction of full width)",
        "eliminate": "remove-one elimination from --start dimensions down to --k, then all pairs of the survivors",
        "layers": "per layer: full-width score, best pair, greedy-k score",
        "tokens": "cls vs mean vs max_norm pooling at full width and at --k dimensions",
    }
    for verb, h in helps.items():
        q = verbs.add_parser(verb, help=h, description=h)
        q.add_argument(
            "--train",
            required=True,
            help="training cache (.h5); selection uses a validation split of it",
        )
        q.add_argument(
            "--eval", required=True, help="evaluation cache (.h5, e.g. dev); reported scores"
        )
        q.add_argument(
            "--out",
            required=True,
            help="output directory (VERB.json, VERB.csv; checkpoints to resume)",
        )
        if verb in ("singles", "layers"):
            q.add_argument("--layers", help="comma-separated layers (default: all; 0 = embeddings)")
        else:
            q.add_argument(
                "--layer",
                type=int,
                default=-1,
                help="layer (0 = embeddings, -1 = last; default -1)",
            )
        if verb == "tokens":
            q.add_argument(
                "--pools",
                default="cls,mean,max_norm",
                help="pools to compare (default cls,mean,max_norm)",
            )
        else:
            q.add_argument(
                "--pool", default="cls", choices=["cls", "mean", "max_norm"], help="token pooling"
            )
        if verb in ("greedy", "layers", "tokens", "eliminate"):
            q.add_argument(
                "--k",
                type=int,
                default={"greedy": 10, "eliminate": 2}.get(verb, 3),
                help="number of dimensions (eliminate: survivors)",
            )
        if verb == "greedy":
            q.add_argument(
                "--within",
                type=float,
                help="stop once within this fraction of the full-width validation "
                "score (e.g. 0.02)",
            )
            q.add_argument(
                "--screen",
                type=int,
                help="fit only the M most promising candidates per step (score "
                "test at the current fit; default: all, exhaustive)",
            )
        if verb == "eliminate":
            q.add_argument(
                "--start",
                default="3",
                help="N random dimensions, 'all', or a list like 5,17,203 (default 3)",
            )
            q.add_argument(
                "--tol", type=float, help="stop early when every removal costs more than this"
            )
            q.add_argument(
                "--exact-max",
                type=int,
                default=64,
                help="sets larger than this are first cut by probe weights (default 64)",
            )
        if verb in ("greedy", "eliminate"):
            q.add_argument(
                "--repeats",
                type=int,
                default=1,
                help="rerun the selection R times and report stability",
            )
            q.add_argument(
                "--resample",
                default="split",
                choices=["split", "bootstrap"],
                help="what varies between repeats (default: the validation split)",
            )
        if verb in ("pairs", "greedy"):
            q.add_argument(
                "--candidates",
                type=int,
                help="only the N best single dimensions (stump score) as candidates",
            )
        if verb == "layers":
            q.add_argument(
                "--pair-candidates",
                type=int,
                help="best pair among the N best single dimensions (default: all pairs)",
            )
        if verb in ("singles", "pairs"):
            q.add_argument(
                "--top", type=int, default=20, help="rows in the ranked list (default 20)"
            )
        if verb == "singles":
            q.add_argument("--no-probe", action="store_true", help="stumps only (no 1-d probes)")
        q.add_argument("--seed", type=int, default=0)
        q.add_argument(
            "--val-fraction",
            type=float,
            default=0.2,
            help="validation part of --train (default 0.2)",
        )
        q.add_argument(
            "--n-random", type=int, default=20, help="random-dimension baseline draws (default 20)"
        )
        q.add_argument(
            "--criterion",
            default="metric",
            choices=["metric", "loss"],
            help="selection criterion on validation: the task's primary metric (ties: loss) or the loss",
        )
        q.add_argument(
            "--C",
            type=float,
            default=1.0,
            help="inverse L2 strength of the probes (as scikit-learn)",
        )
        q.add_argument(
            "--device", default="cpu", help="torch device of the probe engine (cpu, cuda, cuda:N)"
        )
        q.add_argument(
            "--backend",
            default="loky",
            choices=["loky", "threading", "sequential", "dask", "ray"],
            help="joblib backend for the fan-out (dask and ray need the extras)",
        )
        q.add_argument(
            "--n-jobs", type=int, default=1, help="joblib workers (default 1; -1 = all cores)"
        )
        q.add_argument(
            "--scheduler",
            help="with --backend dask: scheduler address (default: a local cluster on "
            "127.0.0.1); with ray: the ray address",
        )
        q.add_argument("--progress", action="store_true", help="progress bars")
        q.set_defaults(func=_cmd_search)


def _int_list(s: str | None) -> list[int] | None:
    from probekit.errors import ConfigError

    if s is None:
        return None
    try:
        return [int(t) for t in s.replace(" ", "").split(",") if t]
    except ValueError:
        raise ConfigError(f"expected comma-separated integers, got {s!r}") from None


def _joblib_backend(args):
    """A context manager selecting the joblib backend (and cluster) of --backend."""
    import contextlib

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
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=n, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
                )
            )
            client = stack.enter_context(Client(cluster))
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


def _fmt_metrics(d) -> str:
    if not d:
        return "-"
    return ", ".join(
        f"{k} {v:.4f}" if isinstance(v, (int, float)) else f"{k} -" for k, v in d.items()
    )


def _cmd_search(args) -> int:
    from probekit.cache import ActivationCache
    from probekit.search import run_search

    v = args.verb
    kw = dict(
        seed=args.seed,
        val_fraction=args.val_fraction,
        n_random=args.n_random,
        C=args.C,
        device=args.device,
        criterion=args.criterion,
        out_dir=args.out,
        progress=args.progress,
        n_jobs=None,
    )
    if v in ("singles", "layers"):
        kw["layers"] = _int_list(args.layers)
    else:
        kw["layer"] = args.layer
    if v == "tokens":
        kw["pools"] = [p for p in args.pools.split(",") if p]
    else:
        kw["pool"] = args.pool
    for name in (
        "k",
        "within",
        "screen",
        "tol",
        "exact_max",
        "repeats",
        "resample",
        "candidates",
        "pair_candidates",
        "top",
    ):
        if hasattr(args, name):
            kw[name] = getattr(args, name)
    if v == "eliminate":
        kw["start"] = args.start
    if v == "singles":
        kw["probe"] = not args.no_probe
    with ActivationCache(args.train) as tr, ActivationCache(args.eval) as ev, _joblib_backend(args):
        print(
            f"search {v}: train {tr.path.name} ({tr.n_examples} ex.), eval {ev.path.name} ({ev.n_examples} ex.), "
            f"task {tr.task.name}, {tr.n_layers} layers x {tr.hidden_size} dims"
        )
        res = run_search(v, tr, ev, **kw)
    d = res.data
    where = f"layer {d.get('layer')}" + (f", pool {d.get('pool')}" if d.get("pool") else "")
    print(f"selected ({where}): {d.get('selected')}")
    print(f"  dev      {_fmt_metrics(d.get('metrics'))}")
    print(f"  full     {_fmt_metrics(d.get('full_metrics'))}  (all dims)")
    rb = d.get("random_baseline") or {}
    if rb:
        sd = rb.get("std", {})
        print(
            "  random   "
            + ", ".join(
                f"{m} {mu:.4f} +- {sd.get(m, float('nan')):.4f}" for m, mu in rb["mean"].items()
            )
            + f"  ({rb.get('n_draws')} draws of {rb.get('k')} dims)"
        )
    if v == "eliminate" and d.get("best_pair"):
        print(
            f"  best pair among survivors {d['best_pair']}: dev {_fmt_metrics(d.get('pair_metrics'))}"
        )
    if v == "layers":
        for r in d["per_layer"]:
            print(
                f"  layer {r['layer']:>2}: full {_fmt_metrics(r['full_metrics'])} | pair {r['best_pair']} "
                f"{_fmt_metrics(r['pair_metrics'])} | greedy {r['greedy_selected']} {_fmt_metrics(r['greedy_metrics'])}"
            )
    if v == "tokens":
        for r in d["per_pool"]:
            print(
                f"  {r['pool']:>8}: full {_fmt_metrics(r['full_metrics'])} | k={d['k']} {r['greedy_selected']} "
                f"{_fmt_metrics(r['greedy_metrics'])}"
            )
    if "stability" in d:
        s = d["stability"]
        top = ", ".join(f"{k}:{f:.2f}" for k, f in list(s["frequency"].items())[:10])
        print(
            f"  stability over {s['n_repeats']} repeats ({s['resample']}): Jaccard mean {s['jaccard_mean']:.3f}, "
            f"min {s['jaccard_min']:.3f}; chosen how often: {top}"
        )
    print(f"wrote {args.out}/{v}.json and {v}.csv in {d['elapsed_s']:.1f} s")
    return 0


def _add_report(sub) -> None:
    p = sub.add_parser(
        "report", help="Markdown/CSV tables and PNG plots from the results of `probekit search`"
    )
    p.add_argument(
        "dir", help="directory holding search results (VERB.json files; searched recursively)"
    )
    p.add_argument("--out", help="output directory (default: DIR/report)")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args) -> int:
    from probekit.report import write_report

    rep = write_report(args.dir, args.out)
    print(f"read {len(rep.results)} result(s); wrote {rep.markdown}")
    for f in rep.files:
        print(f"  {f}")
    return 0


# ---------------------------------------------------------------------------------- finetune
def _add_finetune_args(p: argparse.ArgumentParser) -> None:
    """Arguments shared by finetune, cross and multihead (defaults: probekit's choices)."""
    from probekit.finetune import FinetuneConfig

    d = FinetuneConfig()
    p.add_argument(
        "--model",
        default="minilm",
        help="minilm (embedded default), a Hugging Face id, or a local path",
    )
    p.add_argument(
        "--glue-dir",
        help="local GLUE directory (glue_data/ layout); without it: demo task or the HF hub",
    )
    p.add_argument(
        "--out", required=True, help="run directory (result.json, model/, heads.pt, checkpoint.pt)"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument(
        "--layer",
        type=int,
        default=d.layer,
        help="hidden state the head reads (0 = embeddings, -1 = last)",
    )
    p.add_argument(
        "--token",
        default=d.token,
        choices=["cls", "max_norm", "mean", "max"],
        help="token vector fed to the head (max_norm: largest-norm non-special token)",
    )
    p.add_argument(
        "--include-cls", action="store_true", help="with --token max_norm, let [CLS] be chosen too"
    )
    p.add_argument(
        "--freeze",
        default=d.freeze,
        help="none, embeddings, encoder (all pre-trained weights) or bottom-K",
    )
    p.add_argument("--head-layers", type=int, default=d.head_layers, choices=[1, 2])
    p.add_argument(
        "--head-hidden", type=int, help="middle width of 2-layer heads (default: the hidden size)"
    )
    p.add_argument("--head-activation", default=d.head_activation, choices=["tanh", "relu", "gelu"])
    p.add_argument("--head-dropout", type=float, default=d.head_dropout)
    p.add_argument("--lr", type=float, default=d.lr, help=f"encoder learning rate (default {d.lr})")
    p.add_argument(
        "--head-lr", type=float, help="head learning rate (default: --lr; tiny heads like 1e-3)"
    )
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument(
        "--grad-accum", type=int, default=d.grad_accum, help="micro-batches per optimizer step"
    )
    p.add_argument("--eval-batch-size", type=int, default=d.eval_batch_size)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--max-length", type=int, default=d.max_length)
    p.add_argument("--warmup-ratio", type=float, default=d.warmup_ratio)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument(
        "--max-grad-norm", type=float, default=d.max_grad_norm, help="gradient clipping (0: off)"
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--mixed-precision",
        default=d.mixed_precision,
        choices=["auto", "no", "bf16", "fp16"],
        help="auto: bf16/fp16 on CUDA, off elsewhere",
    )
    p.add_argument(
        "--max-train-examples", type=int, help="only the first N training examples (CPU-sized runs)"
    )
    p.add_argument("--max-eval-examples", type=int, help="only the first N dev examples")
    p.add_argument(
        "--eval-split", default=d.eval_split, help="split scored after each epoch (default dev)"
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=d.checkpoint_every,
        help="optimizer steps between checkpoints (0: epoch ends only)",
    )
    p.add_argument(
        "--no-resume", action="store_true", help="start afresh even if OUT has a checkpoint"
    )


def _finetune_config(args, **kw):
    from probekit.finetune import FinetuneConfig

    return FinetuneConfig(
        model=args.model,
        layer=args.layer,
        token=args.token,
        include_cls=args.include_cls,
        freeze=args.freeze,
        head_layers=args.head_layers,
        head_hidden=args.head_hidden,
        head_activation=args.head_activation,
        head_dropout=args.head_dropout,
        lr=args.lr,
        head_lr=args.head_lr,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        eval_batch_size=args.eval_batch_size,
        epochs=args.epochs,
        max_length=args.max_length,
        warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm,
        seed=args.seed,
        mixed_precision=args.mixed_precision,
        max_train_examples=args.max_train_examples,
        max_eval_examples=args.max_eval_examples,
        eval_split=args.eval_split,
        checkpoint_every=args.checkpoint_every,
        **kw,
    )


def _ft_fmt_metrics(m: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in m.items())


def _ft_tasks_arg(s: str) -> list[str]:
    return [t.strip() for t in s.split(",") if t.strip()]


def _add_finetune(sub) -> None:
    p = sub.add_parser(
        "finetune", help="fine-tune an encoder through a head that sees only selected dimensions"
    )
    p.add_argument(
        "--task",
        help="GLUE task name, or demo (default; built in, offline); with --train-data: "
        "a GLUE task whose label set the files use, else a custom task",
    )
    p.add_argument(
        "--dims",
        default="all",
        help="selected head-input dimensions: 'all' or e.g. 3,17 (ranges 0-9)",
    )
    g = p.add_argument_group("your own data (instead of GLUE or the demo task)")
    g.add_argument("--train-data", help="CSV/TSV/JSONL training file with named columns")
    g.add_argument(
        "--eval-data", help="CSV/TSV/JSONL file scored after each epoch (same columns and labels)"
    )
    g.add_argument("--text-col", help="text column of the files")
    g.add_argument("--pair-col", help="second-text column (sentence pairs)")
    g.add_argument("--label-col", help="label column")
    g.add_argument(
        "--regression", action="store_true", help="labels are numbers to regress on (custom task)"
    )
    _add_finetune_args(p)
    p.set_defaults(func=_cmd_finetune)


def _finetune_files(args):
    """``(train, eval)`` TaskData from --train-data/--eval-data, or ``(None, None)``.

    The eval file is read with the training file's task, so both share one label set (a
    label only the eval file has is an error naming the file and line)."""
    from probekit.errors import ConfigError
    from probekit.tasks import load_task

    if args.train_data is None and args.eval_data is None:
        return None, None
    missing = [
        f"--{n.replace('_', '-')}"
        for n in ("train_data", "eval_data", "text_col", "label_col")
        if getattr(args, n) is None
    ]
    if missing:
        raise ConfigError(f"fine-tuning on your own files needs {', '.join(missing)} as well")
    if args.regression and args.task:
        raise ConfigError(
            "--regression is for custom tasks; a GLUE --task already says whether it regresses"
        )
    kw = dict(text_col=args.text_col, pair_col=args.pair_col, label_col=args.label_col)
    train = load_task(
        args.task or "custom", "train", data=args.train_data, regression=args.regression, **kw
    )
    ev = load_task(train.task, "dev", data=args.eval_data, **kw)
    return train, ev


def _cmd_finetune(args) -> int:
    from probekit.finetune import finetune
    from probekit.models import resolve_device

    train, ev = _finetune_files(args)
    task = train.task.name if train is not None else (args.task or "demo")
    cfg = _finetune_config(args, task=task, dims=args.dims)
    dev = resolve_device(args.device)
    source = f" ({args.train_data} -> {args.eval_data})" if train is not None else ""
    print(
        f"fine-tuning {args.model} on {task}{source} (dims {args.dims}, layer {args.layer}, token {args.token}, "
        f"freeze {args.freeze}, {args.head_layers}-layer head) on {dev}"
    )
    r = finetune(
        cfg,
        device=dev,
        out_dir=args.out,
        glue_dir=args.glue_dir,
        train_data=train,
        eval_data=ev,
        resume=not args.no_resume,
    )
    rec = r.record
    for e in rec["epochs"]:
        print(
            f"  epoch {e['epoch']}: train loss {e['train_loss']:.4f}; dev {_ft_fmt_metrics(e['metrics'][_ft_rec_task(rec)])}"
        )
    pc = rec["params"]
    print(
        f"trainable parameters: encoder {pc['encoder_trainable']:,} of {pc['encoder_total']:,}; "
        f"head {sum(h['nominal'] for h in pc['heads'].values()):,} "
        f"({sum(h['effective'] for h in pc['heads'].values()):,} reachable through the selected dims)"
    )
    print(f"dev: {_ft_fmt_metrics(r.metrics)}  ({rec['wall_seconds']:.1f} s)")
    print(
        f"wrote {r.result_path} and {r.model_dir}/ (probe it: probekit extract --model {r.model_dir} ...)"
    )
    return 0


def _ft_rec_task(rec: dict) -> str:
    return next(iter(rec["heads"]))


def _add_cross(sub) -> None:
    p = sub.add_parser(
        "cross", help="fine-tune on task A, then B with a new head: how much of A is forgotten"
    )
    p.add_argument("--tasks", required=True, type=_ft_tasks_arg, help="A,B (e.g. rte,mrpc)")
    p.add_argument("--dims", default="all", help="A's head dimensions ('all' or e.g. 3,17)")
    p.add_argument(
        "--dims-b", help="B's head dimensions (default: A's, or drawn disjoint with --disjoint)"
    )
    p.add_argument("--disjoint", action="store_true", help="give B dimensions disjoint from A's")
    _add_finetune_args(p)
    p.set_defaults(func=_cmd_cross)


def _cmd_cross(args) -> int:
    from probekit.finetune import cross_finetune
    from probekit.models import resolve_device

    if len(args.tasks) != 2:
        print(
            f"probekit cross: error: --tasks needs exactly two tasks, got {args.tasks}",
            file=sys.stderr,
        )
        return 2
    cfg = _finetune_config(args, dims=args.dims)
    r = cross_finetune(
        cfg,
        tuple(args.tasks),
        device=resolve_device(args.device),
        out_dir=args.out,
        glue_dir=args.glue_dir,
        dims_b=args.dims_b,
        disjoint=args.disjoint,
        resume=not args.no_resume,
    )
    a, b = args.tasks
    rec = r.record
    print(f"dims: {a} {rec['dims'][a] or 'all'}, {b} {rec['dims'][b] or 'all'}")
    print(f"{'task':<8} {'single':>10} {'after A->B':>12}")
    for t in (a, b):
        m = rec["primary_metric"][t]
        print(f"{t:<8} {r.single[t][m]:>10.4f} {r.after[t][m]:>12.4f}  ({m})")
    print(f"forgetting of {a}: {r.forgetting:+.4f}; transfer to {b}: {r.transfer:+.4f}")
    print(f"wrote {r.out_dir / 'result.json'}")
    return 0


def _ft_parse_task_dims(s: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (s or "").split(";"):
        if not part.strip():
            continue
        if "=" not in part:
            raise ProbekitError(f"--dims: {part!r} is not TASK=DIMS (e.g. 'sst2=3,17;cola=5,9')")
        t, d = part.split("=", 1)
        out[t.strip()] = d.strip()
    return out


def _add_multihead(sub) -> None:
    p = sub.add_parser(
        "multihead", help="one encoder, one head per task on disjoint dimensions, trained together"
    )
    p.add_argument(
        "--tasks", required=True, type=_ft_tasks_arg, help="comma-separated tasks, e.g. sst2,cola"
    )
    p.add_argument("--dims", help="explicit dims per task: 'sst2=3,17;cola=5,9'")
    p.add_argument(
        "--dims-per-task",
        type=int,
        help="draw this many disjoint dims for each task without --dims",
    )
    p.add_argument(
        "--mode",
        default="alternate",
        choices=["alternate", "mixed"],
        help="alternate: one task's batch per step (round robin); mixed: one batch of every task per step",
    )
    p.add_argument("--allow-overlap", action="store_true", help="accept overlapping dims")
    _add_finetune_args(p)
    p.set_defaults(func=_cmd_multihead)


def _cmd_multihead(args) -> int:
    from probekit.finetune import multihead_finetune
    from probekit.models import resolve_device

    cfg = _finetune_config(args)
    r = multihead_finetune(
        cfg,
        args.tasks,
        device=resolve_device(args.device),
        out_dir=args.out,
        dims=_ft_parse_task_dims(args.dims),
        dims_per_task=args.dims_per_task,
        mode=args.mode,
        glue_dir=args.glue_dir,
        allow_overlap=args.allow_overlap,
        resume=not args.no_resume,
    )
    for t, m in r.metrics.items():
        print(f"{t:<8} dims {r.record['dims'][t]}: {_ft_fmt_metrics(m)}")
    print(f"wrote {r.result_path} and {r.model_dir}/")
    return 0


_REGISTRARS: list = [
    _add_extract,
    _add_info,
    _add_merge,
    _add_finetune,
    _add_cross,
    _add_multihead,
]  # one per verb, in --help order
_REGISTRARS += [_add_search, _add_report]  # search section
_REGISTRARS += [_add_probe]  # probe section


# ---------------------------------------------------------------------------------- run (the main job)
def _add_run(sub) -> None:
    p = sub.add_parser(
        "run",
        help="the main job: extract train/dev once, then find the few dimensions that carry the task",
    )
    p.add_argument(
        "--model",
        default="minilm",
        help="minilm (embedded default), a Hugging Face id, or a local path",
    )
    p.add_argument(
        "--task", default="demo", help="GLUE task name or demo (default; built in, offline)"
    )
    p.add_argument("--glue-dir", help="local GLUE directory (glue_data/ layout); else the hub")
    p.add_argument(
        "--out",
        default="runs/demo",
        help="run directory: caches, search results, report, summary.json",
    )
    p.add_argument("--train-split", default="train")
    p.add_argument(
        "--eval-split",
        default="dev",
        help="the split scores are reported on (dev; MNLI: dev_matched)",
    )
    p.add_argument("--limit", type=int, help="only the first N training examples")
    p.add_argument("--eval-limit", type=int, help="only the first N evaluation examples")
    p.add_argument("--device", default="auto", help="where extraction runs (probes run on the CPU)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument(
        "--layer",
        type=int,
        default=-1,
        help="layer for greedy/eliminate/tokens (0 = embeddings, -1 = last)",
    )
    p.add_argument("--pool", default="cls", choices=["cls", "mean", "max_norm"])
    p.add_argument(
        "--k",
        type=int,
        default=3,
        help="dimensions to select (the paper: 3, then remove one at a time)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-report", action="store_true", help="skip the Markdown/PNG report")
    p.set_defaults(func=_cmd_run)


def _fmt_m(d, name: str) -> str:
    v = (d or {}).get(name)
    return "   n/a" if v is None else f"{100 * v:6.1f}"


def _cmd_run(args) -> int:
    from probekit.pipeline import StudyConfig, run_study

    cfg = StudyConfig(
        model=args.model,
        task=args.task,
        glue_dir=args.glue_dir,
        out=args.out,
        train_split=args.train_split,
        eval_split=args.eval_split,
        limit=args.limit,
        eval_limit=args.eval_limit,
        device=args.device,
        batch_size=args.batch_size,
        max_length=args.max_length,
        layer=args.layer,
        pool=args.pool,
        k=args.k,
        seed=args.seed,
        report=not args.no_report,
    )
    print(f"probekit run: {args.model} on {args.task}; results in {args.out}")
    s = run_study(cfg, progress=None)
    m = s["primary_metric"]
    c = s["caches"]
    print(
        f"caches: train {c['train']['n_examples']} examples ({c['train']['status']}), "
        f"{c['eval']['split']} {c['eval']['n_examples']} ({c['eval']['status']}); "
        f"{s['n_layers']} layers (0 = embeddings) x {s['hidden_size']} dims"
    )
    print(f"\nscores on {c['eval']['split']} ({m}, x100); selection on a validation split of train")
    print(
        f"{'layer':>5} {'full':>6} {'best pair':>14} {'pair':>6} {'greedy-' + str(args.k):>9} {'random-' + str(args.k):>9}"
    )
    for r in s["layers"]:
        print(
            f"{r['layer']:>5} {_fmt_m(r['full'], m)} {r['best_pair']!s:>14} {_fmt_m(r['pair'], m)} "
            f"{_fmt_m(r['greedy'], m):>9} {_fmt_m(r['random'], m):>9}"
        )
    print(
        f"\n{'pool':>9} {'full':>6} {'greedy-' + str(args.k):>9} {'random-' + str(args.k):>9}  (layer {args.layer})"
    )
    for r in s["tokens"]:
        print(
            f"{r['pool']:>9} {_fmt_m(r['full'], m)} {_fmt_m(r['greedy'], m):>9} {_fmt_m(r['random'], m):>9}"
        )
    g, e = s["greedy"], s["eliminate"]
    rb = g["random_baseline"]
    print(
        f"\ngreedy {args.k} dims {g['selected']} (layer {args.layer}, {args.pool}): {m} {_fmt_m(g['metrics'], m).strip()} "
        f"vs full width {_fmt_m(s['full_metrics'], m).strip()} and random {args.k} dims "
        f"{_fmt_m(rb['mean'], m).strip()} +- {100 * (rb['std'].get(m) or 0):.1f}"
        f" (majority {_fmt_m(s.get('majority_baseline'), m).strip()})"
    )
    if e.get("steps"):
        for st in e["steps"]:
            drops = st.get("drops") or {}
            shown = ", ".join(f"{d}: {100 * v:+.1f}" for d, v in drops.items())
            print(
                f"  remove-one from {[int(d) for d in drops]}: validation drop when removed {{{shown}}} -> removed {st.get('removed')}"
            )
    if e.get("best_pair"):
        print(
            f"best pair among the survivors {e['best_pair']}: {m} {_fmt_m(e['pair_metrics'], m).strip()}"
        )
    few = e.get("best_pair") or g["selected"]
    fm = e.get("pair_metrics") or g["metrics"]
    full = (s["full_metrics"] or {}).get(m)
    share = (
        f" = {100 * fm[m] / full:.0f}% of full width"
        if full and fm.get(m) is not None and full > 0
        else ""
    )
    print(
        f"\n=> {len(few)} dimensions carry {args.task}: {few} ({m} {_fmt_m(fm, m).strip()}{share})"
    )
    if s.get("report"):
        print(f"report: {s['report']}")
    return 0


_REGISTRARS.insert(0, _add_run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="probekit", description=__doc__.splitlines()[0])
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _REGISTRARS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:  # the CLI owns the terminal: no weight-loading bars from transformers
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    try:
        rc = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        return rc
    except BrokenPipeError:  # `probekit info FILE | head -1`: the reader has gone
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing left to flush at exit
        return 128 + 13  # as a tool killed by SIGPIPE
    except ProbekitError as e:
        print(f"probekit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"probekit {args.command}: interrupted; partial results are kept and can be resumed",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
