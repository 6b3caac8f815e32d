"""``probekit cross`` (task A, then B: how much of A is forgotten) and ``probekit multihead``
(one encoder, one head per task on disjoint dimensions)."""

from __future__ import annotations

import argparse
import sys

from probekit.errors import ConfigError

from ._common import SubParsers, check_output, device, name_list
from .finetune import add_training_options, fmt_scores, training_config


def add_cross(sub: SubParsers) -> None:
    p = sub.add_parser("cross")
    p.add_argument("--tasks", required=True, type=name_list, help="A,B (e.g. rte,mrpc)")
    p.add_argument("--dims", default="all", help="A's head dimensions ('all' or e.g. 3,17)")
    p.add_argument(
        "--dims-b", help="B's head dimensions (default: A's, or drawn disjoint with --disjoint)"
    )
    p.add_argument("--disjoint", action="store_true", help="give B dimensions disjoint from A's")
    add_training_options(p)
    p.set_defaults(func=cmd_cross)


def cmd_cross(args: argparse.Namespace) -> int:
    from probekit.finetune import cross_finetune

    check_output(args.out, inputs=[args.model], directory=True)
    if len(args.tasks) != 2:
        print(
            f"probekit cross: error: --tasks needs exactly two tasks, got {args.tasks}",
            file=sys.stderr,
        )
        return 2
    r = cross_finetune(
        training_config(args, args.dims),
        tuple(args.tasks),
        device=device(args),
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


def task_dims(s: str | None) -> dict[str, str]:
    """``"sst2=3,17;cola=5,9"`` -> ``{"sst2": "3,17", "cola": "5,9"}``."""
    out: dict[str, str] = {}
    for part in (s or "").split(";"):
        if not part.strip():
            continue
        if "=" not in part:
            raise ConfigError(f"--dims: {part!r} is not TASK=DIMS (e.g. 'sst2=3,17;cola=5,9')")
        t, d = part.split("=", 1)
        out[t.strip()] = d.strip()
    return out


def add_multihead(sub: SubParsers) -> None:
    p = sub.add_parser("multihead")
    p.add_argument(
        "--tasks", required=True, type=name_list, help="comma-separated tasks, e.g. sst2,cola"
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
        help="alternate: one task's batch per step (round robin); "
        "mixed: one batch of every task per step",
    )
    p.add_argument("--allow-overlap", action="store_true", help="accept overlapping dims")
    add_training_options(p)
    p.set_defaults(func=cmd_multihead)


def cmd_multihead(args: argparse.Namespace) -> int:
    from probekit.finetune import multihead_finetune

    check_output(args.out, inputs=[args.model], directory=True)
    r = multihead_finetune(
        training_config(args),
        args.tasks,
        device=device(args),
        out_dir=args.out,
        dims=task_dims(args.dims),
        dims_per_task=args.dims_per_task,
        mode=args.mode,
        glue_dir=args.glue_dir,
        allow_overlap=args.allow_overlap,
        resume=not args.no_resume,
    )
    for t, m in r.metrics.items():
        print(f"{t:<8} dims {r.record['dims'][t]}: {fmt_scores(m)}")
    print(f"wrote {r.result_path} and {r.model_dir}/")
    return 0
