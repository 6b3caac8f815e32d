"""probekit: find out how few dimensions of a BERT-family encoder a task needs.

Data flows one way: ``tasks -> extract -> cache -> probes -> search -> report``;
``finetune`` uses ``tasks`` and feeds ``extract``.
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__"]
