"""``probekit probe``: one linear probe on chosen dimensions of one layer, with baselines."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import (
    POOL_CHOICES,
    SubParsers,
    add_device,
    add_overwrite,
    check_output,
    device,
    positive_int,
)


def add_probe(sub: SubParsers) -> None:
    p = sub.add_parser("probe")
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
        "--pool", default="cls", choices=POOL_CHOICES, help="sentence vector (default cls)"
    )
    p.add_argument(
        "--dims",
        default="all",
        help="'all' (default), comma-separated dimensions and ranges, e.g. 12,200 or 0-9",
    )
    p.add_argument("--out", required=True, help="result file (.json)")
    add_overwrite(p, "--out")
    p.add_argument(
        "--C",
        type=str,
        default="auto",
        help="inverse L2 strength, as scikit-learn's LogisticRegression (ridge: alpha = 1/C), "
        "or 'auto' (default): chosen on the validation split from np.logspace(-4, 2, 10) by "
        "the primary metric, then refitted on all of train",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the validation split, random baseline, control"
    )
    p.add_argument(
        "--n-random",
        type=positive_int,
        default=20,
        help="random-dimension baseline draws (default 20)",
    )
    p.add_argument(
        "--val-fraction", type=float, default=0.2, help="validation part of --train (default 0.2)"
    )
    p.add_argument(
        "--control",
        action="store_true",
        help="also fit a Hewitt & Liang control task (input type = first content token; "
        "needs token fields in both caches) and report selectivity",
    )
    add_device(p, "cpu", "torch device of the probe engine")
    p.add_argument("--progress", action="store_true", help="progress bars")
    p.set_defaults(func=cmd_probe)


def _probe(args: argparse.Namespace) -> dict[str, Any]:
    """Fit and score the probe (:func:`probekit.search.probe_sources`); its record."""
    from probekit.cache import ActivationCache
    from probekit.dims import parse_dims
    from probekit.search import SearchConfig, probe_sources

    cfg = SearchConfig(
        C=args.C,
        device=str(device(args)),
        seed=args.seed,
        n_random=args.n_random,
        val_fraction=args.val_fraction,
        progress=args.progress,
    )
    with ActivationCache(args.train) as tr, ActivationCache(args.eval) as ev:
        print(
            f"probe: task {tr.task.name}, layer {tr.layer_index(args.layer)} of "
            f"{tr.n_layers - 1} ({args.pool}), {len(parse_dims(args.dims, tr.hidden_size))} of "
            f"{tr.hidden_size} dims; train {tr.n_examples} ({tr.path.name}), "
            f"eval {ev.n_examples} ({ev.path.name})"
        )
        return probe_sources(
            tr,
            ev,
            layer=args.layer,
            pool=args.pool,
            dims=args.dims,
            config=cfg,
            control=args.control,
        )


def _table(res: dict[str, Any], names: list[str]) -> list[str]:
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.4f}"

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
    lines = [" " * w + "".join(f"{m:>20}" for m in names)]
    lines += [f"{label:<{w}}" + "".join(f"{v:>20}" for v in vals) for label, vals in rows]
    return lines


def cmd_probe(args: argparse.Namespace) -> int:
    from probekit.search import write_probe_record

    check_output(args.out, inputs=[args.train, args.eval], overwrite=args.overwrite)
    out = _probe(args)
    write_probe_record(args.out, out)
    print("\n".join(_table(out, list(out["metrics"]))))
    print(f"wrote {args.out} in {out['elapsed_s']:.1f} s")
    return 0
