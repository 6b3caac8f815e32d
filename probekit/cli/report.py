"""``probekit report``: Markdown/CSV tables and PNG plots from search results, or a study's
report rebuilt from its saved run files."""

from __future__ import annotations

import argparse

from ._common import SubParsers


def add_report(sub: SubParsers) -> None:
    p = sub.add_parser("report")
    p.add_argument(
        "dir",
        help="directory holding search results (VERB.json files; searched recursively), "
        "or a study directory (study.json: its report is rebuilt from the saved runs)",
    )
    p.add_argument("--out", help="output directory (default: DIR/report)")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    if (Path(args.dir) / "study.json").is_file():
        return _study_report(args)
    from probekit.report import write_report

    rep = write_report(args.dir, args.out)
    print(f"read {len(rep.results)} result(s); wrote {rep.markdown}")
    for f in rep.files:
        print(f"  {f}")
    return 0


def _study_report(args: argparse.Namespace) -> int:
    from probekit.errors import ConfigError
    from probekit.study import write_study_report

    from .study import print_verdicts

    if args.out is not None:
        raise ConfigError("a study's report is always written to DIR/report (drop --out)")
    path = write_study_report(args.dir)
    print_verdicts(args.dir)
    print(f"report: {path}")
    return 0
