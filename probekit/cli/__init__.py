"""probekit command line: parses arguments, calls the package, prints.

One module per verb group, each with ``add_<verb>(sub)`` declaring the verb's arguments and
setting ``func`` to its ``cmd_<verb>(args) -> int``: :mod:`.extract` (extract, info, merge),
:mod:`.probe`, :mod:`.search`, :mod:`.report`, :mod:`.finetune`, :mod:`.multitask` (cross,
multihead), :mod:`.run` and :mod:`.study`; :mod:`._common` holds the options several verbs
share and the deprecated-alias mechanism for renamed flags. :func:`main` wires them
together: user errors (:class:`probekit.errors.ProbekitError`) print one line and exit with
status 2, Ctrl-C exits with 130, an environment error (disk full, read-only, permission
denied, file in use: :func:`probekit._io.describe_os_error`) prints one line naming the
path and exits 2, a closed stdout pipe (``probekit info FILE | head -1``) with 141.

Start-up stays short: :func:`main` imports only the module of the verb it runs (the verb
table :data:`_VERBS` gives ``probekit --help`` its one-line helps), and the verb modules
import the package's heavy parts (torch, transformers, scikit-learn) inside their commands.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Collection, Sequence
from typing import Any

from probekit.errors import ProbekitError

from ._common import check_output

__all__ = ["build_parser", "entry", "main"]

#: verb -> (module declaring it with ``add_<verb>(sub)``, the help line ``--help`` lists), in
#: --help order; the one place a verb's help line is written
_VERBS: dict[str, tuple[str, str]] = {
    "run": (
        "probekit.cli.run",
        "the main job: extract train/dev once, then find the few dimensions that carry the task",
    ),
    "study": (
        "probekit.cli.study",
        "the paper's five experiments in one command: seeds, verdicts, report",
    ),
    "extract": (
        "probekit.cli.extract",
        "run an encoder over a dataset and cache every layer's vectors (HDF5)",
    ),
    "info": ("probekit.cli.extract", "schema, shapes, sizes and provenance of a cache file"),
    "merge": ("probekit.cli.extract", "build one cache from the shards of a sharded extraction"),
    "finetune": (
        "probekit.cli.finetune",
        "fine-tune an encoder through a head that sees only selected dimensions",
    ),
    "cross": (
        "probekit.cli.multitask",
        "fine-tune on task A, then B with a new head: how much of A is forgotten",
    ),
    "multihead": (
        "probekit.cli.multitask",
        "one encoder, one head per task on disjoint dimensions, trained together",
    ),
    "search": (
        "probekit.cli.search",
        "which few dimensions carry a task: singles, pairs, greedy, eliminate, layers, tokens "
        "(selection on a validation split of --train, scores on --eval)",
    ),
    "report": (
        "probekit.cli.report",
        "Markdown/CSV tables and PNG plots from the results of `probekit search`",
    ),
    "probe": (
        "probekit.cli.probe",
        "one linear probe on chosen dimensions of one layer, with majority, "
        "random-dimension (and control-task) baselines",
    ),
}


class _VerbSub:
    """The ``sub`` an ``add_<verb>(sub)`` receives: the verb's parser gets its line of
    :data:`_VERBS` as the help ``probekit --help`` lists and as its own description."""

    def __init__(self, sub: Any, help_line: str) -> None:
        self._sub = sub
        self._help = help_line

    def add_parser(self, name: str, **kw: Any) -> argparse.ArgumentParser:
        kw["help"] = self._help
        kw.setdefault("description", self._help)
        parser: argparse.ArgumentParser = self._sub.add_parser(name, **kw)
        return parser


def _parser(declared: Collection[str]) -> argparse.ArgumentParser:
    """The ``probekit`` parser listing every verb; only the ``declared`` ones get their
    arguments (importing their modules), the others are names with a help line."""
    parser = argparse.ArgumentParser(prog="probekit", description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for verb, (module, help_line) in _VERBS.items():
        if verb in declared:
            add = getattr(importlib.import_module(module), f"add_{verb}")
            add(_VerbSub(sub, help_line))
        else:
            sub.add_parser(verb, help=help_line, description=help_line, add_help=False)
    return parser


def _verb_of(argv: Sequence[str]) -> str | None:
    """The verb ``argv`` names: its first argument that is not an option (the top level takes
    none with a value); None when there is none or it is not a verb (argparse then says so)."""
    verb = next((a for a in argv if not a.startswith("-")), None)
    return verb if verb in _VERBS else None


def build_parser() -> argparse.ArgumentParser:
    """The ``probekit`` parser with every verb (imports every verb module)."""
    return _parser(_VERBS)


#: verbs whose --out is a directory of results (checked here for all of them, one way)
_DIR_OUT_VERBS = frozenset({"search", "run", "study", "finetune", "cross", "multihead"})


def _check_output_dir(args: argparse.Namespace) -> None:
    """``--out`` of a directory-writing verb: not a file, not one of the verb's inputs."""
    out = getattr(args, "out", None)
    if args.command not in _DIR_OUT_VERBS or out is None:
        return
    inputs = [getattr(args, k, None) for k in ("train", "eval", "data", "train_data", "eval_data")]
    check_output(out, inputs=inputs, directory=True)


#: verbs that hold a writer lock on their --out here (extract, merge and finetune take it
#: themselves, around exactly what they write)
_LOCKED_VERBS = frozenset({"probe", "search", "run", "study", "cross", "multihead"})

#: verbs whose results are complete and closed when :func:`main` returns (no thread or process
#: of theirs outlives it), so that the console script may end them with :func:`_quick_exit`
_QUICK_EXIT_VERBS = frozenset({"info", "probe", "search"})

#: verbs that load a model with transformers (the CLI turns its loading bars off for them)
_MODEL_VERBS = frozenset({"run", "study", "extract", "finetune", "cross", "multihead"})


def _run_verb(args: argparse.Namespace) -> int:
    out = getattr(args, "out", None)
    if args.command not in _LOCKED_VERBS or out is None:
        return int(args.func(args) or 0)
    from probekit._io import writer_lock

    with writer_lock(out):  # a second writer to the same --out is told which process holds it
        return int(args.func(args) or 0)


def main(argv: list[str] | None = None) -> int:
    """Run ``probekit ARGV``; the exit status (0 ok, 2 user error, 130 Ctrl-C, 141 closed pipe)."""
    verb = _verb_of(sys.argv[1:] if argv is None else argv)
    args = _parser({verb} if verb else ()).parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose < 2 and args.command in _MODEL_VERBS:  # the CLI owns the terminal
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
        from probekit._io import describe_os_error

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


def entry() -> None:
    """The ``probekit`` console script: :func:`main`, then the process's exit. After a verb of
    :data:`_QUICK_EXIT_VERBS` with nothing else left running, the exit skips the interpreter's
    teardown of every module (0.3-0.7 s once torch is imported, a tenth of a fresh ``search
    pairs``) but not what a normal exit must do: the ``atexit`` handlers run (logging's
    shutdown among them) and stdout / stderr are flushed. While joblib's workers, other
    threads or child processes live, the exit is the normal one."""
    rc = main()
    if _verb_of(sys.argv[1:]) in _QUICK_EXIT_VERBS and _nothing_else_running():
        _quick_exit(rc)
    sys.exit(rc)


def _nothing_else_running() -> bool:
    """No thread a normal exit would wait for (non-daemon; daemon threads, as tqdm's monitor,
    end with the process either way) and no child process of ``multiprocessing``."""
    import multiprocessing
    import threading

    me = threading.current_thread()
    others = [t for t in threading.enumerate() if t is not me and not t.daemon]
    return not others and not multiprocessing.active_children()


def _quick_exit(rc: int) -> None:
    import atexit

    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if run_exitfuncs is None:  # not CPython: the normal exit
        sys.exit(rc)
    run_exitfuncs()  # logging registered its shutdown here too
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # a reader gone or a stream closed: nothing to keep
        pass
    os._exit(rc)
