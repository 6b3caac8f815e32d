"""``python cli.py ...``: the command line lives in :mod:`probekit.cli`."""

import sys

from probekit.cli import build_parser, main  # noqa: F401  (build_parser: old import path)

if __name__ == "__main__":
    sys.exit(main())
