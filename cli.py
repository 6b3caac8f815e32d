"""``python cli.py ...``: the command line lives in :mod:`probekit.cli`."""

import sys

from probekit.cli import main

if __name__ == "__main__":
    sys.exit(main())
