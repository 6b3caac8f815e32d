"""probekit: find out how few dimensions of a BERT-family encoder a task needs.

Data flows one way: ``tasks -> extract -> cache -> probes -> search -> report``;
``finetune`` uses ``tasks`` and feeds ``extract``. Below them all sit the leaf modules every
stage may use: ``errors``, ``taskspec`` (what a task is: the cache rebuilds a task from its
attributes with it, without the loaders of ``tasks``), ``metrics``, ``dims``, ``pooling``,
``provenance`` and ``_io``. The command line (``probekit.cli``) sits on top and only
parses, calls these and prints.
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

#: the model every command uses unless told otherwise: the embedded all-MiniLM-L6-v2
#: (defined here, not in :mod:`probekit.models`, so the CLI can name it without importing torch)
DEFAULT_MODEL = "minilm"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["DEFAULT_MODEL", "__version__"]
