"""``probekit study``: the paper's five experiments in one command (being written)."""

from __future__ import annotations

import argparse

from ._common import SubParsers


def add_study(sub: SubParsers) -> None:
    p = sub.add_parser("study", help="the paper's five experiments in one command")
    p.add_argument("--out", required=True, help="study directory")
    p.set_defaults(func=cmd_study)


def cmd_study(args: argparse.Namespace) -> int:
    raise SystemExit("probekit study: not built yet")
