"""``probekit study``: the paper's five experiments (and two beyond it) in one command, with
seeds, a verdict per claim and a report; ``--dry-run`` prints the plan and its estimated time."""

from __future__ import annotations

import argparse

from ._common import SubParsers, add_device, add_own_files, own_files, positive_int


def add_study(sub: SubParsers) -> None:
    p = sub.add_parser(
        "study",  # its help line is the verb table's (probekit.cli)
        description="Fine-tune the encoder through the paper's conditions (token-wise, "
        "dimension-wise, layer-wise, freezing, cross-task, and beyond: probe scores vs "
        "fine-tuned scores, multi-head), with seeds; verdicts and a report in OUT/report/. "
        "Rerunning the same command skips finished runs and resumes an interrupted one.",
    )
    p.add_argument(
        "--model",
        help="minilm (embedded; the default), a Hugging Face id or a local path "
        "(--budget full: bert-base-uncased)",
    )
    p.add_argument(
        "--tasks",
        help="GLUE tasks, comma-separated (default cola,sst2; --budget full: every GLUE task "
        "but WNLI)",
    )
    p.add_argument("--glue-dir", help="local GLUE directory (glue_data/ layout); else the hub")
    p.add_argument("--out", required=True, help="the study directory")
    p.add_argument(
        "--budget",
        default="small",
        choices=("smoke", "small", "full"),
        help="smoke: seconds per run (CI); small: CoLA+SST-2 with MiniLM on a laptop CPU in "
        "<= 90 min; full: the paper's scale (bert-base-uncased, all data, 3 epochs, a GPU)",
    )
    p.add_argument(
        "--seeds", type=positive_int, help="seeds of the compared conditions (budget's default)"
    )
    p.add_argument(
        "--random-pairs", type=positive_int, help="random final-layer pairs (budget's default)"
    )
    p.add_argument(
        "--experiments",
        default="token,dims,layers,freeze,cross,beyond",
        help="a subset of token,dims,layers,freeze,cross,beyond",
    )
    p.add_argument(
        "--cross",
        help="ordered task pairs A:B,... of the cross-task experiment "
        "(default: each task followed by the next); each runs with the same and with "
        "disjoint dimensions",
    )
    p.add_argument("--seed", type=int, default=0, help="first seed (seeds are SEED, SEED+1, ...)")
    add_device(p, "cpu", "where fine-tuning and extraction run")
    p.add_argument("--backend", default="serial", choices=("serial", "joblib", "dask", "ray"))
    p.add_argument("--n-jobs", type=positive_int, default=1, help="parallel runs (not serial)")
    p.add_argument("--threads", type=positive_int, help="torch threads of every run")
    p.add_argument("--keep-models", action="store_true", help="keep every run's model/")
    p.add_argument("--dry-run", action="store_true", help="print the plan and its time estimate")
    p.add_argument("--no-report", action="store_true", help="skip the report")
    add_own_files(p, "study")
    p.add_argument("--task", help=argparse.SUPPRESS)  # the GLUE label set of --train-data
    p.set_defaults(func=cmd_study)


def _config(args: argparse.Namespace):  # -> StudyConfig
    from probekit import DEFAULT_MODEL
    from probekit.study import BUDGETS, StudyConfig, parse_cross

    budget = BUDGETS[args.budget]
    spec = args.tasks or ",".join(budget.tasks or ("cola", "sst2"))
    tasks = tuple(t.strip() for t in spec.split(",") if t.strip())
    files = own_files(args, "study")
    if files is not None:
        tasks = ()
    return StudyConfig(
        model=args.model or budget.model or DEFAULT_MODEL,
        tasks=tasks,
        out=args.out,
        glue_dir=args.glue_dir,
        files=files,
        budget=args.budget,
        seeds=args.seeds,
        random_pairs=args.random_pairs,
        experiments=tuple(e.strip() for e in args.experiments.split(",") if e.strip()),
        cross=parse_cross(args.cross, tasks) if args.cross else None,
        seed=args.seed,
        device=args.device,
        backend=args.backend,
        n_jobs=args.n_jobs,
        threads=args.threads,
        keep_models=args.keep_models,
    )


def cmd_study(args: argparse.Namespace) -> int:
    from probekit.study import plan_study, study

    cfg = _config(args)
    if args.dry_run:
        for line in plan_study(cfg).lines():
            print(line)
        return 0
    rec = study(cfg, report=not args.no_report)
    print(f"study: {rec['n_runs']} runs in {rec['elapsed_s'] / 60:.1f} min")
    if "report" in rec:
        print_verdicts(args.out)
        print(f"report: {rec['report']}")
    return 0


def print_verdicts(out: str) -> None:
    """One line per claim: verdict, claim, our numbers (from the saved files)."""
    from probekit.study import Thresholds, judge, load_study

    results = load_study(out)
    for v in judge(results, Thresholds.from_dict(results.thresholds)):
        print(f"  {v.verdict:>14}  {v.claim}: {v.numbers}")
