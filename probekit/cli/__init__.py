"""probekit command line: parses arguments, calls the package, prints.

One module per verb group, each with ``add_<verb>(sub)`` declaring the verb's arguments and
setting ``func`` to its ``cmd_<verb>(args) -> int``: :mod:`.extract` (extract, info, merge),
:mod:`.probe`, :mod:`.search`, :mod:`.report`, :mod:`.finetune`, :mod:`.multitask` (cross,
multihead) and :mod:`.run`; :mod:`._common` holds the options several verbs share and the
deprecated-alias mechanism for renamed flags. :func:`main` wires them together: user errors
(:class:`probekit.errors.ProbekitError`) print one line and exit with status 2, Ctrl-C
exits with 130, an environment error (disk full, read-only, permission denied, file in
use: :func:`probekit._io.describe_os_error`) prints one line naming the path and exits 2, a
closed stdout pipe (``probekit info FILE | head -1``) with 141.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from probekit._io import describe_os_error
from probekit.errors import ProbekitError

from . import extract, finetune, multitask, probe, report, run, search
from ._common import check_output

__all__ = ["build_parser", "main"]

# one per verb, in --help order
_VERBS = (
    run.add_run,
    extract.add_extract,
    extract.add_info,
    extract.add_merge,
    finetune.add_finetune,
    multitask.add_cross,
    multitask.add_multihead,
    search.add_search,
    report.add_report,
    probe.add_probe,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``probekit`` parser with every verb."""
    parser = argparse.ArgumentParser(prog="probekit", description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _VERBS:
        add(sub)
    return parser


#: verbs whose --out is a directory of results (checked here for all of them, one way)
_DIR_OUT_VERBS = frozenset({"search", "run", "finetune", "cross", "multihead"})


def _check_output_dir(args: argparse.Namespace) -> None:
    """``--out`` of a directory-writing verb: not a file, not one of the verb's inputs."""
    out = getattr(args, "out", None)
    if args.command not in _DIR_OUT_VERBS or out is None:
        return
    inputs = [getattr(args, k, None) for k in ("train", "eval", "data", "train_data", "eval_data")]
    check_output(out, inputs=inputs, directory=True)


#: verbs that hold a writer lock on their --out here (extract, merge and finetune take it
#: themselves, around exactly what they write)
_LOCKED_VERBS = frozenset({"probe", "search", "run", "cross", "multihead"})


def _run_verb(args: argparse.Namespace) -> int:
    out = getattr(args, "out", None)
    if args.command not in _LOCKED_VERBS or out is None:
        return int(args.func(args) or 0)
    from probekit._io import writer_lock

    with writer_lock(out):  # a second writer to the same --out is told which process holds it
        return int(args.func(args) or 0)


def main(argv: list[str] | None = None) -> int:
    """Run ``probekit ARGV``; the exit status (0 ok, 2 user error, 130 Ctrl-C, 141 closed pipe)."""
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:  # the CLI owns the terminal: no weight-loading bars from transformers
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    try:
        _check_output_dir(args)
        rc = _run_verb(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        return rc
    except BrokenPipeError:  # the reader has gone (`| head -1`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush
        return 128 + 13  # as a tool killed by SIGPIPE
    except ProbekitError as e:
        print(f"probekit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, read-only, permission denied, file in use
        msg = describe_os_error(e)
        if msg is None:
            raise
        print(f"probekit {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"probekit {args.command}: interrupted; partial results are kept and can be resumed",
            file=sys.stderr,
        )
        return 130
