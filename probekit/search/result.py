"""The outcome of one search and its files (``<verb>.json``, ``<verb>.csv``, arrays)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_path, write_json

__all__ = ["RESULT_KIND", "RESULT_SCHEMA", "RESULT_SCHEMA_VERSION", "SearchResult"]

#: ``"kind"`` of every search result file (as every probekit result file carries one)
RESULT_KIND = "search"
#: ``"schema"`` of search result files (kept for readers of older files)
RESULT_SCHEMA = "probekit-search"
RESULT_SCHEMA_VERSION = 1


def _csv_value(v: Any) -> Any:
    if isinstance(v, (list, tuple, np.ndarray)):
        return " ".join(str(int(x)) if isinstance(x, (int, np.integer)) else str(x) for x in v)
    if isinstance(v, (float, np.floating)):
        return "" if not math.isfinite(float(v)) else f"{float(v):.6g}"
    return v


@dataclass
class SearchResult:
    """The outcome of one search.

    Attributes:
        verb: which search (``singles``, ``pairs``, ``greedy``, ``eliminate``, ``layers``,
            ``tokens``).
        data: everything for ``<verb>.json`` (``kind``, ``selected``, ``metrics``,
            ``full_metrics``, ``random_baseline``, ``elapsed_s``, ``config``, ...).
        rows: the table for ``<verb>.csv`` (one dict per row).
        arrays: extra arrays saved as ``<name>.npy`` (e.g. ``pairs_matrix``).
    """

    verb: str
    data: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    @property
    def selected(self) -> list[int]:
        return list(self.data.get("selected", []))

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``<verb>.json``, ``<verb>.csv`` and the arrays into ``out_dir`` (each
        atomically); returns the paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, arr in self.arrays.items():
            paths[name] = out / f"{name}.npy"
            with atomic_path(paths[name], suffix=".npy") as tmp:
                np.save(tmp, arr)
        paths["json"] = out / f"{self.verb}.json"
        write_json(paths["json"], self.data, indent=1)
        if self.rows:
            paths["csv"] = out / f"{self.verb}.csv"
            self._write_csv(paths["csv"])
        return paths

    def _write_csv(self, path: Path) -> None:
        cols: list[str] = []
        for r in self.rows:
            cols += [c for c in r if c not in cols]
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            for r in self.rows:
                w.writerow({k: _csv_value(v) for k, v in r.items()})
