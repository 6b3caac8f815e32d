"""``probekit search VERB``: which few dimensions carry a task (singles, pairs, greedy,
eliminate, layers, tokens, rank, exact)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._backend import joblib_backend, runs_here
from ._common import POOL_CHOICES, SubParsers, add_device, device, fmt_metrics, int_list

_HELPS = {
    "singles": "every dimension of every layer: exact-threshold stump and 1-d probe, ranked",
    "pairs": "all pairs of dimensions of one layer: top pairs and the full score matrix",
    "greedy": "greedy forward selection up to --k dimensions "
    "(or --within a fraction of full width)",
    "eliminate": "remove-one elimination from --start dimensions down to --k, "
    "then all pairs of the survivors",
    "layers": "per layer: full-width score, best pair, greedy-k score",
    "tokens": "cls vs mean vs max_norm pooling at full width and at --k dimensions",
    "rank": "the peers' rankings (mean-diff, f-stat, l1, lca, mi) and ours (stump, greedy): "
    "top-k scores for k = 1..--k with the random band (--method all: one plot of every curve)",
    "exact": "the best --k subset (3 or 4) of the top --m dimensions by --prefilter: "
    "LDA screen of every subset, exact refit of the leaders; the gap to greedy",
}
_RANK_METHODS = ("all", "mean-diff", "f-stat", "l1", "lca", "mi", "stump", "greedy")
# options a verb may have, passed on to run_search under the same name when present
_PASSED = tuple(
    [
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
        "method",
        "prefilter",
        "m",
        "refit",
        "mdl",
        "ablation",
    ]
)


def add_search(sub: SubParsers) -> None:
    p = sub.add_parser("search")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, h in _HELPS.items():
        q = verbs.add_parser(verb, help=h, description=h)
        _add_io(q, verb)
        _add_verb_options(q, verb)
        _add_rank_options(q, verb)
        _add_common_options(q)
        q.set_defaults(func=cmd_search)


def _add_io(q: argparse.ArgumentParser, verb: str) -> None:
    q.add_argument(
        "--train", required=True, help="training cache (.h5); selection uses a validation split"
    )
    q.add_argument(
        "--eval", required=True, help="evaluation cache (.h5, e.g. dev); reported scores"
    )
    q.add_argument(
        "--out", required=True, help="output directory (VERB.json, VERB.csv; checkpoints to resume)"
    )
    if verb in ("singles", "layers"):
        q.add_argument("--layers", help="comma-separated layers (default: all; 0 = embeddings)")
    else:
        q.add_argument(
            "--layer", type=int, default=-1, help="layer (0 = embeddings, -1 = last; default -1)"
        )
    if verb == "tokens":
        q.add_argument(
            "--pools",
            default="cls,mean,max_norm",
            help="pools to compare (default cls,mean,max_norm)",
        )
    else:
        q.add_argument("--pool", default="cls", choices=POOL_CHOICES, help="token pooling")


def _add_verb_options(q: argparse.ArgumentParser, verb: str) -> None:
    if verb in ("greedy", "layers", "tokens", "eliminate", "rank", "exact"):
        q.add_argument(
            "--k",
            type=int,
            default={"greedy": 10, "eliminate": 2, "rank": 10}.get(verb, 3),
            help="number of dimensions (eliminate: survivors; rank: the largest top-k)",
        )
    if verb == "greedy":
        q.add_argument(
            "--within",
            type=float,
            help="stop once within this fraction of the full-width validation score (e.g. 0.02)",
        )
        q.add_argument(
            "--screen",
            type=int,
            help="fit only the M most promising candidates per step (score test at the "
            "current fit; default: all, exhaustive)",
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
            "--repeats", type=int, default=1, help="rerun the selection R times, report stability"
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
        q.add_argument("--top", type=int, default=20, help="rows in the ranked list (default 20)")
    if verb == "singles":
        q.add_argument("--no-probe", action="store_true", help="stumps only (no 1-d probes)")


def _refit(v: str) -> int | None:
    if v == "all":
        return None
    try:
        return int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--refit: a number or 'all', got {v!r}") from None


def _add_rank_options(q: argparse.ArgumentParser, verb: str) -> None:
    """--mdl/--ablation (greedy, eliminate, rank, exact), rank's --method, exact's scan."""
    if verb in ("greedy", "eliminate", "rank", "exact"):
        q.add_argument(
            "--mdl",
            action="store_true",
            help="add the online codelength (MDL) of the selected set, full width and random-k",
        )
        q.add_argument(
            "--ablation",
            action="store_true",
            help="add the scores without the selected set and after erasing it (LEACE)",
        )
    if verb == "rank":
        q.add_argument(
            "--method", default="all", choices=_RANK_METHODS, help="ranking method (default all)"
        )
    if verb == "exact":
        q.add_argument(
            "--prefilter",
            default="mean-diff",
            choices=_RANK_METHODS[1:],
            help="ranking whose top --m dimensions are scanned (default mean-diff)",
        )
        q.add_argument("--m", type=int, default=50, help="prefilter size (default 50)")
        q.add_argument(
            "--refit",
            type=_refit,
            default=200,
            help="screen leaders refitted exactly on validation (default 200; 'all': every "
            "subset, exhaustive)",
        )


def _add_common_options(q: argparse.ArgumentParser) -> None:
    q.add_argument("--seed", type=int, default=0)
    q.add_argument(
        "--val-fraction", type=float, default=0.2, help="validation part of --train (default 0.2)"
    )
    q.add_argument(
        "--n-random", type=int, default=20, help="random-dimension baseline draws (default 20)"
    )
    q.add_argument(
        "--criterion",
        default="metric",
        choices=["metric", "loss"],
        help="selection criterion on validation: the task's primary metric (ties: loss) "
        "or the loss",
    )
    q.add_argument(
        "--C",
        type=str,
        default="auto",
        help="inverse L2 strength of the probes (as scikit-learn), or 'auto' (default): "
        "chosen on the validation split once per (layer, pool, k) from np.logspace(-4, 2, 10)",
    )
    add_device(q, "cpu", "torch device of the probe engine")
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


def _search_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    v = args.verb
    kw: dict[str, Any] = dict(
        seed=args.seed,
        val_fraction=args.val_fraction,
        n_random=args.n_random,
        C=args.C,
        device=str(device(args)),
        criterion=args.criterion,
        out_dir=args.out,
        progress=args.progress,
        n_jobs=1 if runs_here(args) else None,  # else joblib_backend's config decides
    )
    if v in ("singles", "layers"):
        kw["layers"] = int_list(args.layers)
    else:
        kw["layer"] = args.layer
    if v == "tokens":
        kw["pools"] = [p for p in args.pools.split(",") if p]
    else:
        kw["pool"] = args.pool
    kw.update({name: getattr(args, name) for name in _PASSED if hasattr(args, name)})
    if v == "eliminate":
        kw["start"] = args.start
    if v == "singles":
        kw["probe"] = not args.no_probe
    return kw


def _summary(v: str, d: dict[str, Any]) -> list[str]:
    where = f"layer {d.get('layer')}" + (f", pool {d.get('pool')}" if d.get("pool") else "")
    lines = [
        f"selected ({where}): {d.get('selected')}",
        f"  dev      {fmt_metrics(d.get('metrics'))}",
        f"  full     {fmt_metrics(d.get('full_metrics'))}  (all dims)",
    ]
    rb = d.get("random_baseline") or {}
    if rb:
        sd = rb.get("std", {})
        shown = ", ".join(
            f"{m} {mu:.4f} +- {sd.get(m, float('nan')):.4f}" for m, mu in rb["mean"].items()
        )
        lines.append(f"  random   {shown}  ({rb.get('n_draws')} draws of {rb.get('k')} dims)")
    if v == "eliminate" and d.get("best_pair"):
        lines.append(
            f"  best pair among survivors {d['best_pair']}: "
            f"dev {fmt_metrics(d.get('pair_metrics'))}"
        )
    for r in d["per_layer"] if v == "layers" else ():
        lines.append(
            f"  layer {r['layer']:>2}: full {fmt_metrics(r['full_metrics'])} | "
            f"pair {r['best_pair']} {fmt_metrics(r['pair_metrics'])} | "
            f"greedy {r['greedy_selected']} {fmt_metrics(r['greedy_metrics'])}"
        )
    for r in d["per_pool"] if v == "tokens" else ():
        lines.append(
            f"  {r['pool']:>8}: full {fmt_metrics(r['full_metrics'])} | "
            f"k={d['k']} {r['greedy_selected']} {fmt_metrics(r['greedy_metrics'])}"
        )
    lines += _extra_lines(v, d)
    if "stability" in d:
        s = d["stability"]
        top = ", ".join(f"{k}:{f:.2f}" for k, f in list(s["frequency"].items())[:10])
        lines.append(
            f"  stability over {s['n_repeats']} repeats ({s['resample']}): "
            f"Jaccard mean {s['jaccard_mean']:.3f}, min {s['jaccard_min']:.3f}; "
            f"chosen how often: {top}"
        )
    return lines


def _extra_lines(v: str, d: dict[str, Any]) -> list[str]:
    """The rank table, the exact-vs-greedy gap, MDL, ablation and the verdict's headline."""
    lines = []
    for m, r in (d.get("rankings") or {}).items() if v == "rank" else ():
        curve = " ".join(f"{c[d['primary_metric']]:.3f}" for c in r["curve"])
        lines.append(f"  {m:>9}: top {r['order'][:5]} | k=1..{len(r['curve'])}: {curve}")
    if v == "rank":
        band = " ".join(f"{b['mean'][d['primary_metric']]:.3f}" for b in d["random_band"])
        lines.append(f"  {'random':>9}: {band}")
    if v == "exact":
        for key in ("greedy", "greedy_all"):
            g = d[key]
            lines.append(
                f"  {key} {g['selected']}: val {g['val_score']:.4f} "
                f"(exact - greedy = {g['val_gap']:+.4f}), dev {fmt_metrics(g['metrics'])}"
            )
    mdl = d.get("mdl")
    if mdl and "compression" in mdl:
        lines.append(
            f"  MDL      {mdl['codelength_bits']:.0f} bits, compression {mdl['compression']:.2f} "
            f"(full width {mdl['full_compression']:.2f}, random "
            f"{mdl['random_compression_mean']:.2f} +- {mdl['random_compression_std']:.2f})"
        )
        ctl = mdl.get("control") or {}
        if "compression" in ctl:
            lines.append(
                f"  control  task {fmt_metrics(ctl['metrics'])}, selectivity "
                f"{fmt_metrics(ctl['selectivity'])}, compression {ctl['compression']:.2f}"
            )
    ab = d.get("ablation")
    if ab:
        lines.append(
            f"  ablation without {fmt_metrics(ab.get('without'))} | "
            f"erased {fmt_metrics(ab.get('erased'))}"
        )
    if d.get("verdict"):
        lines.append(d["verdict"]["headline"])
    return lines


def cmd_search(args: argparse.Namespace) -> int:
    from probekit.cache import ActivationCache
    from probekit.search import run_search

    v = args.verb
    kw = _search_kwargs(args)
    with ActivationCache(args.train) as tr, ActivationCache(args.eval) as ev, joblib_backend(args):
        print(
            f"search {v}: train {tr.path.name} ({tr.n_examples} ex.), "
            f"eval {ev.path.name} ({ev.n_examples} ex.), "
            f"task {tr.task.name}, {tr.n_layers} layers x {tr.hidden_size} dims"
        )
        res = run_search(v, tr, ev, **kw)
    print("\n".join(_summary(v, res.data)))
    if v == "rank" and len(res.data["methods"]) > 1:
        from probekit.report.rank import plot_rankings

        png = plot_rankings(res.data, Path(args.out) / "rank_curves.png")
        print(f"wrote {png}")
    print(f"wrote {args.out}/{v}.json and {v}.csv in {res.data['elapsed_s']:.1f} s")
    return 0
