"""``probekit run``: the main job (extract train and dev once, then find the few dimensions
that carry the task) and its summary table."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import (
    POOL_CHOICES,
    SubParsers,
    add_device,
    add_model,
    add_own_files,
    device,
    own_files,
)


def add_run(sub: SubParsers) -> None:
    p = sub.add_parser("run")
    add_model(p)
    p.add_argument(
        "--task",
        default=None,
        help="GLUE task name, or demo (the default; built in, offline); with --train-data: "
        "a GLUE task whose label set the files use, else a custom task",
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
    add_device(p, "auto", "where extraction runs (probes run on the CPU)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument(
        "--layer",
        type=int,
        default=-1,
        help="layer for greedy/eliminate/tokens (0 = embeddings, -1 = last)",
    )
    p.add_argument("--pool", default="cls", choices=POOL_CHOICES)
    p.add_argument(
        "--k", type=int, default=3, help="dimensions to select (the paper: 3, then remove one)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--C",
        type=str,
        default="auto",
        help="inverse L2 strength of the probes (as scikit-learn), or 'auto' (default): "
        "chosen on the validation split once per (layer, pool, k) from np.logspace(-4, 2, 10)",
    )
    p.add_argument("--no-report", action="store_true", help="skip the Markdown/PNG report")
    p.add_argument(
        "--no-mdl", action="store_true", help="skip the online codelength of the final set"
    )
    p.add_argument("--no-ablation", action="store_true", help="skip the ablation of the final set")
    add_own_files(p, "probekit run")
    p.set_defaults(func=cmd_run)


def _pct(d: dict[str, Any] | None, name: str) -> str:
    v = (d or {}).get(name)
    return "   n/a" if v is None else f"{100 * v:6.1f}"


def _tables(s: dict[str, Any], k: int, layer: int) -> list[str]:
    m, c = s["primary_metric"], s["caches"]
    gk, rk = f"greedy-{k}", f"random-{k}"
    lines = [
        f"caches: train {c['train']['n_examples']} examples ({c['train']['status']}), "
        f"{c['eval']['split']} {c['eval']['n_examples']} ({c['eval']['status']}); "
        f"{s['n_layers']} layers (0 = embeddings) x {s['hidden_size']} dims",
        f"\nscores on {c['eval']['split']} ({m}, x100); selection on a validation split of train",
        f"{'layer':>5} {'full':>6} {'best pair':>14} {'pair':>6} {gk:>9} {rk:>9}",
    ]
    for r in s["layers"]:
        lines.append(
            f"{r['layer']:>5} {_pct(r['full'], m)} {r['best_pair']!s:>14} {_pct(r['pair'], m)} "
            f"{_pct(r['greedy'], m):>9} {_pct(r['random'], m):>9}"
        )
    lines.append(f"\n{'pool':>9} {'full':>6} {gk:>9} {rk:>9}  (layer {layer})")
    for r in s["tokens"]:
        lines.append(
            f"{r['pool']:>9} {_pct(r['full'], m)} {_pct(r['greedy'], m):>9} "
            f"{_pct(r['random'], m):>9}"
        )
    return lines


def _conclusion(s: dict[str, Any], args: argparse.Namespace) -> list[str]:
    m, k = s["primary_metric"], args.k
    g, e = s["greedy"], s["eliminate"]
    rb = g["random_baseline"]
    lines = [
        f"\ngreedy {k} dims {g['selected']} (layer {args.layer}, {args.pool}): "
        f"{m} {_pct(g['metrics'], m).strip()} "
        f"vs full width {_pct(s['full_metrics'], m).strip()} and random {k} dims "
        f"{_pct(rb['mean'], m).strip()} +- {100 * (rb['std'].get(m) or 0):.1f}"
        f" (majority {_pct(s.get('majority_baseline'), m).strip()})"
    ]
    for st in e.get("steps") or ():
        drops = st.get("drops") or {}
        shown = ", ".join(f"{d}: {100 * v:+.1f}" for d, v in drops.items())
        lines.append(
            f"  remove-one from {[int(d) for d in drops]}: validation drop when removed "
            f"{{{shown}}} -> removed {st.get('removed')}"
        )
    if e.get("best_pair"):
        lines.append(
            f"best pair among the survivors {e['best_pair']}: "
            f"{m} {_pct(e['pair_metrics'], m).strip()}"
        )
    for line in _block_lines(e, m):
        lines.append(line)
    lines.append("\n" + (s.get("headline") or "=> no verdict (no dimensions were selected)"))
    return lines


def _block_lines(e: dict[str, Any], m: str) -> list[str]:
    """The MDL and ablation lines of the final set, where the run computed them."""
    lines = []
    mdl = e.get("mdl") or {}
    if "compression" in mdl:
        lines.append(
            f"MDL of {mdl['dims']}: compression {mdl['compression']:.2f} "
            f"(full width {mdl['full_compression']:.2f}, "
            f"random {mdl['random_compression_mean']:.2f} +- {mdl['random_compression_std']:.2f})"
        )
    ab = e.get("ablation")
    if ab:
        lines.append(
            f"ablation of {ab['dims']}: without them {m} {_pct(ab.get('without'), m).strip()}, "
            f"erased {_pct(ab.get('erased'), m).strip()}, full width "
            f"{_pct(ab.get('full'), m).strip()}"
        )
    return lines


def cmd_run(args: argparse.Namespace) -> int:
    from probekit.pipeline import RunConfig, run_study
    from probekit.probes import parse_C

    device(args)  # checked here like every verb's; the pipeline resolves "auto" itself
    files = own_files(args, "probekit run")
    task = files.task if files is not None else (args.task or "demo")
    cfg = RunConfig(
        model=args.model,
        task=task,
        files=files,
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
        C=parse_C(args.C),  # refused before any extraction; recorded as a number or "auto"
        report=not args.no_report,
        mdl=not args.no_mdl,
        ablation=not args.no_ablation,
    )
    source = f" ({files.train_data} -> {files.eval_data})" if files is not None else ""
    print(f"probekit run: {args.model} on {task}{source}; results in {args.out}")
    s = run_study(cfg, progress=None)
    print("\n".join(_tables(s, args.k, args.layer) + _conclusion(s, args)))
    if s.get("report"):
        print(f"report: {s['report']}")
    return 0
