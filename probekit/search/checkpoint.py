"""Atomic per-unit checkpoints of one search, so that a rerun continues where it stopped."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_path, atomic_write_text, to_jsonable
from ..provenance import stable_hash

logger = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_DIR", "Checkpoint"]

#: the directory under a search's ``out_dir`` that holds its checkpoints
CHECKPOINT_DIR = ".probekit-ckpt"


class Checkpoint:
    """Atomic per-unit checkpoints of one search, keyed by a hash of its arguments and inputs.

    Units live in ``out_dir/.probekit-ckpt/<verb>-<key[:16]>/<unit>.json`` (or ``.npy``);
    ``key.json`` there records what the key hashes. ``Checkpoint(None, ...)`` is a no-op
    (nothing saved, nothing loaded). Picklable (paths only), so joblib workers write their
    own units.
    """

    def __init__(self, out_dir: str | Path | None, verb: str, key: Mapping[str, Any]):
        self.key = stable_hash(to_jsonable(dict(key)))
        self.dir = (
            None if out_dir is None else Path(out_dir) / CHECKPOINT_DIR / f"{verb}-{self.key[:16]}"
        )
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            kp = self.dir / "key.json"
            if not kp.exists():
                text = json.dumps(to_jsonable(dict(key)), indent=1, sort_keys=True, default=str)
                atomic_write_text(kp, text)

    def _p(self, unit: str, ext: str) -> Path:
        assert self.dir is not None
        return self.dir / f"{unit}.{ext}"

    def load(self, unit: str) -> Any:
        """The saved object of ``unit``, or None."""
        if self.dir is None:
            return None
        p = self._p(unit, "json")
        if not p.exists():
            return None
        try:
            return json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            logger.warning("ignoring unreadable checkpoint %s", p)
            return None

    def save(self, unit: str, obj: Any) -> None:
        """Save ``obj`` (JSON-able after :func:`probekit._io.to_jsonable`) as ``unit``."""
        if self.dir is not None:
            atomic_write_text(self._p(unit, "json"), json.dumps(to_jsonable(obj)))

    def load_array(self, unit: str) -> np.ndarray | None:
        """The saved array of ``unit``, or None."""
        if self.dir is None:
            return None
        p = self._p(unit, "npy")
        if not p.exists():
            return None
        try:
            return np.load(p)
        except (OSError, ValueError):
            return None

    def save_array(self, unit: str, arr: np.ndarray) -> None:
        """Save ``arr`` as ``unit``."""
        if self.dir is None:
            return
        with atomic_path(self._p(unit, "npy"), suffix=".npy") as tmp:
            np.save(tmp, arr)
