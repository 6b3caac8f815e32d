"""``python cli.py ...``: the command line lives in :mod:`probekit.cli`."""

from probekit.cli import build_parser, entry, main  # noqa: F401  (build_parser, main: old paths)

if __name__ == "__main__":
    entry()
