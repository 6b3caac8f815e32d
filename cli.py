"""probekit command line: parses arguments, calls the package, prints.

Each verb has a ``_add_<verb>(sub)`` function that declares its arguments and sets
``func`` to a ``_cmd_<verb>(args)`` function; :func:`main` wires them together. User errors
(:class:`probekit.errors.ProbekitError`) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from probekit.errors import ProbekitError


def _add_common_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default="demo", help="GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli, ax), "
                   "GLUE directory name (SST-2, ...), or demo (default; built in, offline)")
    p.add_argument("--split", default="train", help="train, dev (= validation), test; MNLI: dev_matched, dev_mismatched")
    p.add_argument("--glue-dir", help="local GLUE directory in the download-script layout (glue_data/)")
    p.add_argument("--data", help="your own CSV/TSV/JSONL file instead of GLUE")
    p.add_argument("--text-col", help="text column of --data")
    p.add_argument("--pair-col", help="second-text column of --data (sentence pairs)")
    p.add_argument("--label-col", help="label column of --data")
    p.add_argument("--limit", type=int, help="only the first N examples of the split")


# ---------------------------------------------------------------------------------- extract
# (added by the extraction work)

# ---------------------------------------------------------------------------------- probe

# ---------------------------------------------------------------------------------- search

# ---------------------------------------------------------------------------------- finetune


_REGISTRARS: list = []  # filled below, one per verb, in the order shown by --help


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="probekit", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _REGISTRARS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose + 1, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except ProbekitError as e:
        print(f"probekit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"probekit {args.command}: interrupted; partial results are kept and can be resumed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
