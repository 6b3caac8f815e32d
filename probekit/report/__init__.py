"""Tables and plots from the results of :mod:`probekit.search`.

:func:`write_report` reads every search result (``VERB.json`` with ``"kind": "search"``, or
``schema: "probekit-search"`` in files written before ``kind`` existed) under a directory,
recursively, and writes into the output directory:

* ``report.md``: per result, a summary (selected dimensions, dev metrics against the
  full-width score, the random-dimension baseline and the majority baseline) and the
  search's own table;
* ``summary.csv``: one row per result;
* PNG plots: the pairs heatmap, the greedy curve against the random baseline, the layer
  sweep, the token comparison, the elimination drops, the best single dimensions.

The package: :mod:`.format` (numbers, tables, the summary block), :mod:`.sections` (one
section per search verb), :mod:`.plots` and :mod:`.rank` (the rankings and exact-subset
sections). Plots use matplotlib's object API (:class:`matplotlib.figure.Figure`), so no
global backend is switched and nothing needs a display.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import atomic_path, atomic_write_text
from ..errors import DataError
from .format import fmt, table
from .sections import section

logger = logging.getLogger(__name__)

__all__ = ["Report", "is_search_result", "load_results", "write_report"]

SCHEMA = "probekit-search"
KIND = "search"


def is_search_result(d: Any) -> bool:
    """Whether a parsed JSON file is a search result (by ``kind``, or ``schema`` for old files)."""
    return isinstance(d, dict) and (d.get("kind") == KIND or d.get("schema") == SCHEMA)


@dataclass
class Report:
    """What :func:`write_report` wrote.

    Attributes:
        results: ``(path, data)`` of every result read.
        markdown: path of ``report.md``.
        files: every file written (Markdown, CSV, PNG).
    """

    results: list[tuple[Path, dict[str, Any]]]
    markdown: Path
    files: list[Path] = field(default_factory=list)


def load_results(root: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every search result under ``root`` (a directory, searched recursively, or one JSON
    file), sorted by path. Checkpoint directories are skipped."""
    root = Path(root)
    if root.is_file():
        paths = [root]
    elif root.is_dir():
        paths = sorted(p for p in root.rglob("*.json") if ".probekit-ckpt" not in p.parts)
    else:
        raise DataError(f"no such results directory: {root}")
    out = []
    for p in paths:
        try:
            d = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as e:
            logger.warning("skipping %s: %s", p, e)
            continue
        if is_search_result(d):
            out.append((p, d))
    return out


def _summary_row(p: Path, d: dict[str, Any], root: Path) -> dict[str, Any]:
    pm = d.get("primary_metric")
    rb = d.get("random_baseline") or {}
    return {
        "result": str(p.relative_to(root) if p.is_relative_to(root) else p),
        "verb": d.get("verb"),
        "task": d.get("task"),
        "layer": d.get("layer"),
        "pool": d.get("pool"),
        "selected": " ".join(str(x) for x in d.get("selected") or []),
        "metric": pm,
        "dev": (d.get("metrics") or {}).get(pm),
        "full": (d.get("full_metrics") or {}).get(pm),
        "random_mean": rb.get("mean", {}).get(pm),
        "random_std": rb.get("std", {}).get(pm),
        "random_k": rb.get("k"),
        "seed": d.get("seed"),
        "elapsed_s": d.get("elapsed_s"),
    }


def _overview(rows: list[dict[str, Any]]) -> str:
    head = ["result", "verb", "layer", "pool", "selected", "metric", "dev", "full"]
    cells = []
    for r in rows:
        rand = (
            "-" if r["random_mean"] is None else f"{fmt(r['random_mean'])} ± {fmt(r['random_std'])}"
        )
        cells.append([*(r[k] for k in head), rand])
    return table([*head, "random (mean ± sd)"], cells)


def _render(p: Path, d: dict[str, Any], root: Path, outd: Path, files: list[Path]) -> str:
    try:
        return section(p, d, root, outd, files)
    except (KeyError, TypeError, ValueError) as e:  # a result of an older/odd layout: go on
        logger.warning("could not render %s: %s", p, e)
        return f"## {d.get('verb')}: {p}\n\n(could not render: {e})\n"


def write_report(root: str | Path, out: str | Path | None = None) -> Report:
    """Read the search results under ``root`` and write ``report.md``, ``summary.csv`` and PNG
    plots into ``out`` (default ``root/report``); each file is written atomically.

    Raises:
        DataError: when ``root`` holds no search results.
    """
    root = Path(root)
    results = load_results(root)
    if root.is_file():
        root = root.parent
    outd = Path(out) if out is not None else root / "report"
    results = [(p, d) for p, d in results if outd not in p.parents]
    if not results:
        raise DataError(f"no probekit search results (VERB.json) found under {root}")
    outd.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    sections = [_render(p, d, root, outd, files) for p, d in results]
    rows = [_summary_row(p, d, root) for p, d in results]
    md = outd / "report.md"
    head = (
        f"# probekit search report\n\n{len(results)} result(s) from `{root}`. Selection on a "
        "validation split of the training cache; scores on the evaluation cache.\n\n"
    )
    atomic_write_text(md, head + _overview(rows) + "\n\n" + "\n".join(sections))
    csvp = outd / "summary.csv"
    with atomic_path(csvp) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return Report(results=results, markdown=md, files=[md, csvp, *files])
