"""``probekit report``: Markdown/CSV tables and PNG plots from search results."""

from __future__ import annotations

import argparse

from ._common import SubParsers


def add_report(sub: SubParsers) -> None:
    p = sub.add_parser("report")
    p.add_argument(
        "dir", help="directory holding search results (VERB.json files; searched recursively)"
    )
    p.add_argument("--out", help="output directory (default: DIR/report)")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from probekit.report import write_report

    rep = write_report(args.dir, args.out)
    print(f"read {len(rep.results)} result(s); wrote {rep.markdown}")
    for f in rep.files:
        print(f"  {f}")
    return 0
