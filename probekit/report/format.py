"""Formatting shared by the report's sections: numbers, Markdown tables, the summary block."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["fmt", "pm", "slug", "summary", "table"]


def fmt(v: Any, nd: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "-" if not math.isfinite(v) else f"{v:.{nd}f}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return str(v)


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(fmt(x) for x in r) + " |")
    return "\n".join(lines)


def pm(rb: dict | None, m: str) -> str:
    if not rb or m not in rb.get("mean", {}):
        return "-"
    return f"{fmt(rb['mean'][m])} ± {fmt(rb['std'].get(m))}"


def slug(path: Path, root: Path) -> str:
    rel = path.parent.relative_to(root) if path.is_relative_to(root) else Path(path.parent.name)
    parts = [p for p in rel.parts if p not in (".", "")]
    return "_".join([*parts, path.stem]) if parts else path.stem


def summary(d: dict[str, Any]) -> str:
    p = d.get("primary_metric")
    mets = d.get("metric_names", [p])
    rows = []
    for m in mets:
        rows.append(
            [
                m,
                (d.get("metrics") or {}).get(m),
                (d.get("full_metrics") or {}).get(m),
                pm(d.get("random_baseline"), m),
                (d.get("majority_baseline") or {}).get(m),
            ]
        )
    k = (d.get("random_baseline") or {}).get("k", len(d.get("selected") or []))
    lines = [
        f"- selected: `{d.get('selected')}` (layer {d.get('layer')}, pool {d.get('pool', '-')})",
        f"- seed {d.get('seed')}, elapsed {fmt(d.get('elapsed_s'), 1)} s; {d.get('protocol', '')}",
        "",
        table(
            ["metric (dev)", "selected", "full width", f"random {k} dims (mean ± sd)", "majority"],
            rows,
        ),
    ]
    if "stability" in d:
        s = d["stability"]
        freq = ", ".join(f"{k}: {v:.2f}" for k, v in list(s["frequency"].items())[:12])
        lines += [
            "",
            f"Stability over {s['n_repeats']} repeats ({s.get('resample', '')}): Jaccard mean "
            f"{fmt(s['jaccard_mean'], 3)}, min {fmt(s['jaccard_min'], 3)}. "
            f"Chosen how often: {freq}.",
        ]
    return "\n".join(lines)
