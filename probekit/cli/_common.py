"""What several verbs share: the data options, the model and device options, renamed flags
kept as deprecated aliases, and small parsing and formatting helpers.

Heavy libraries (torch, transformers) are imported inside the functions that need them, so
that ``probekit --help`` and argument errors stay fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from probekit import DEFAULT_MODEL
from probekit.errors import ConfigError

SubParsers = Any  # argparse's _SubParsersAction is private
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
        default="demo",
        help="GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli, ax), "
        "GLUE directory name (SST-2, ...), or demo (default; built in, offline)",
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
    p.add_argument("--limit", type=int, help="only the first N examples of the split")


def load_data(args: argparse.Namespace) -> Any:
    """The :class:`~probekit.tasks.TaskData` the options of :func:`add_data` name."""
    from probekit.tasks import load_task

    return load_task(
        args.task,
        args.split,
        glue_dir=args.glue_dir,
        data=args.data,
        text_col=args.text_col,
        pair_col=args.pair_col,
        label_col=args.label_col,
        limit=args.limit,
    )


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
