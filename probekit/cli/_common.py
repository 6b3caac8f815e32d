"""What several verbs share: the data options, the model and device options, renamed flags
kept as deprecated aliases, and small parsing and formatting helpers.

Heavy libraries (torch, transformers) are imported inside the functions that need them, so
that ``probekit --help`` and argument errors stay fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probekit import DEFAULT_MODEL
from probekit.errors import ConfigError

SubParsers = Any  # what add_<verb>(sub) gets: like argparse's (private) _SubParsersAction
POOL_CHOICES = ["cls", "mean", "max_norm"]  # the pools a cache stores


class _DeprecatedFlag(argparse.Action):
    """Stores into the new flag's destination and prints a warning naming the new flag."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, new: str, **kw: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kw)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(
            f"{parser.prog}: warning: {option_string} is deprecated and will be removed; "
            f"use {self.new}",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def deprecated_alias(p: argparse.ArgumentParser, old: str, new: str, **kw: Any) -> None:
    """Accept the flag ``old`` as a hidden, deprecated spelling of ``new`` (one release).

    ``kw`` (``type``, ``choices``) should repeat what ``new`` declares, so that the old
    spelling is validated the same way.
    """
    dest = new.lstrip("-").replace("-", "_")
    hidden = argparse.SUPPRESS
    p.add_argument(
        old, dest=dest, action=_DeprecatedFlag, new=new, default=hidden, help=hidden, **kw
    )
    p.epilog = ((p.epilog or "") + f" {old} is a deprecated spelling of {new}.").strip()


def add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="minilm (embedded default), a Hugging Face id, or a local path",
    )


def add_device(p: argparse.ArgumentParser, default: str = "auto", what: str = "") -> None:
    p.add_argument(
        "--device",
        default=default,
        help=f"{what + ': ' if what else ''}auto, cpu, cuda or cuda:N (default {default})",
    )


def device(args: argparse.Namespace) -> Any:
    """``--device`` checked the one way every verb checks it (a ``torch.device``).

    Raises:
        ConfigError: an unknown device, or one this machine lacks.
    """
    from probekit.models import resolve_device

    return resolve_device(args.device)


def add_data(p: argparse.ArgumentParser) -> None:
    """``--task --split --glue-dir --data --text-col --pair-col --label-col --limit``."""
    p.add_argument(
        "--task",
        default=None,
        help="GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli, ax), "
        "GLUE directory name (SST-2, ...), demo (the default without --data; built in, "
        "offline) or custom (the default with --data: the label set is the file's own "
        "sorted label values; name a GLUE task to use its label set instead)",
    )
    p.add_argument(
        "--split",
        default="train",
        help="train, dev (= validation), test; MNLI: dev_matched, dev_mismatched",
    )
    p.add_argument(
        "--glue-dir", help="local GLUE directory in the download-script layout (glue_data/)"
    )
    p.add_argument("--data", help="your own CSV/TSV/JSONL file instead of GLUE")
    p.add_argument("--text-col", help="text column of --data")
    p.add_argument("--pair-col", help="second-text column of --data (sentence pairs)")
    p.add_argument("--label-col", help="label column of --data")
    p.add_argument(
        "--limit", type=positive_int, help="only the first N examples of the split (N >= 1)"
    )


def add_own_files(p: argparse.ArgumentParser, verb: str) -> None:
    """``--train-data --eval-data --text-col --pair-col --label-col --regression``."""
    g = p.add_argument_group("your own data (instead of GLUE or the demo task)")
    g.add_argument("--train-data", help="CSV/TSV/JSONL training file with named columns")
    g.add_argument(
        "--eval-data", help=f"CSV/TSV/JSONL file {verb} scores on (same columns and labels)"
    )
    g.add_argument("--text-col", help="text column of the files")
    g.add_argument("--pair-col", help="second-text column (sentence pairs)")
    g.add_argument("--label-col", help="label column")
    g.add_argument(
        "--regression", action="store_true", help="labels are numbers to regress on (custom task)"
    )


def own_files(args: argparse.Namespace, verb: str) -> Any:
    """The :class:`~probekit.tasks.OwnFiles` the options of :func:`add_own_files` name, or None.

    ``--task`` then means a GLUE task whose label set the files use; without it the task
    is ``custom``."""
    from probekit.tasks import OwnFiles

    if args.train_data is None and args.eval_data is None:
        return None
    names = ("train_data", "eval_data", "text_col", "label_col")
    missing = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) is None]
    if missing:
        raise ConfigError(f"{verb} on your own files needs {', '.join(missing)} as well")
    return OwnFiles(
        train_data=args.train_data,
        eval_data=args.eval_data,
        text_col=args.text_col,
        label_col=args.label_col,
        pair_col=args.pair_col,
        task=args.task or "custom",
        regression=bool(args.regression),
    )


def task_name(args: argparse.Namespace) -> str:
    """``--task`` as given, else ``custom`` with ``--data`` and ``demo`` without."""
    if args.task:
        return str(args.task)
    return "custom" if getattr(args, "data", None) else "demo"


def load_data(args: argparse.Namespace) -> Any:
    """The :class:`~probekit.tasks.TaskData` the options of :func:`add_data` name.

    ``--data`` means a custom task unless ``--task`` names a GLUE task (whose label set
    the file must then use)."""
    from probekit.tasks import load_task

    return load_task(
        task_name(args),
        args.split,
        glue_dir=args.glue_dir,
        data=args.data,
        text_col=args.text_col,
        pair_col=args.pair_col,
        label_col=args.label_col,
        limit=args.limit,
    )


def positive_int(s: str) -> int:
    """argparse ``type`` of a count: an integer >= 1 (``--limit 0`` and ``-5`` are refused)."""
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (>= 1), got {v}")
    return v


def add_overwrite(p: argparse.ArgumentParser, what: str = "output") -> None:
    p.add_argument(
        "--overwrite", action="store_true", help=f"replace an existing {what} (refused otherwise)"
    )


def check_output(
    out: str | Path,
    *,
    inputs: Sequence[str | Path | None] = (),
    overwrite: bool = False,
    flag: str = "--out",
    directory: bool = False,
) -> Path:
    """Refuse an output path that would destroy something: one of the command's own inputs
    (always), an existing file or a non-empty directory (unless ``overwrite``), a file where
    a directory is expected (or the reverse). Returns ``out`` as a Path.

    Raises:
        ConfigError: naming the flag, the path and what to do.
    """
    path = Path(out)
    for i in inputs:
        if i is None:
            continue
        ip = Path(i)
        if ip.resolve() == path.resolve():
            raise ConfigError(
                f"{flag} {path} is one of this command's inputs; choose another output path"
            )
    if directory:
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{flag} {path} is a file; it must name a directory")
        return path
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a directory; it must name a file")
    if path.exists() and not overwrite:
        raise ConfigError(
            f"{flag} {path} already exists; pass --overwrite to replace it, or choose another path"
        )
    return path


def int_list(s: str | None) -> list[int] | None:
    """``"0,3,5"`` -> ``[0, 3, 5]``; None stays None."""
    if s is None:
        return None
    try:
        return [int(t) for t in s.replace(" ", "").split(",") if t]
    except ValueError:
        raise ConfigError(f"expected comma-separated integers, got {s!r}") from None


def name_list(s: str) -> list[str]:
    """``"rte, mrpc"`` -> ``["rte", "mrpc"]``."""
    return [t.strip() for t in s.split(",") if t.strip()]


def fmt_metrics(d: dict[str, Any] | None) -> str:
    """``accuracy 0.8125, f1 0.7000`` (``-`` for a missing value or no metrics)."""
    if not d:
        return "-"
    return ", ".join(
        f"{k} {v:.4f}" if isinstance(v, (int, float)) else f"{k} -" for k, v in d.items()
    )
