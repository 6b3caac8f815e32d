"""One Markdown section per search result: the summary block, the search's own table, its plot.

Each search verb has one small function here, ``(d, ctx) -> (lines, png or None)``,
registered in :data:`SECTIONS`; a new search adds one function and one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .format import fmt, pm, slug, summary, table
from .plots import plot_eliminate, plot_greedy, plot_layers, plot_pairs, plot_singles, plot_tokens
from .rank import block_lines, exact_section, plot_rankings, rank_section

__all__ = ["SECTIONS", "Where", "section"]


@dataclass(frozen=True)
class Where:
    """Where a result lives and where its plots go."""

    path: Path  # the result's JSON
    out: Path  # the report directory
    slug: str  # the plot files' stem


Lines = list[str]
Rendered = tuple[Lines, "Path | None"]


def _greedy(d: dict[str, Any], w: Where, p: str) -> Rendered:
    rows = [
        [
            c["step"],
            c["dim"],
            c["val_score"],
            c["dev"].get(p),
            pm({"mean": c["random_mean"], "std": c["random_std"]}, p),
        ]
        for c in d.get("curve", [])
    ]
    lines = [table(["k", "added dim", f"val {p}", f"dev {p}", "random (dev)"], rows)]
    return lines, plot_greedy(d, w.out / f"{w.slug}_curve.png")


def _pairs(d: dict[str, Any], w: Where, p: str) -> Rendered:
    rows = [
        [r["rank"], f"{r['dim_a']}, {r['dim_b']}", r.get(f"val_{p}"), r.get(f"dev_{p}")]
        for r in d.get("top", [])[:20]
    ]
    lines = [f"{d.get('n_pairs')} pairs of {d.get('n_candidates')} dimensions scored.\n"]
    lines.append(table(["rank", "pair", f"val {p}", f"dev {p}"], rows))
    matrix = w.path.parent / (d.get("matrix") or "pairs_matrix.npy")
    return lines, plot_pairs(d, matrix, w.out / f"{w.slug}_heatmap.png")


def _eliminate(d: dict[str, Any], w: Where, p: str) -> Rendered:
    rows = [
        [s["size"], s["method"], s.get("removed"), s.get("score"), s.get("score_after")]
        for s in d.get("steps", [])
    ]
    lines = [table(["size", "method", "removed", f"val {p} before", "after"], rows)]
    if d.get("pairs"):
        best = fmt((d.get("pair_metrics") or {}).get(p))
        lines += [
            "",
            f"Pairs among the survivors (best: `{d.get('best_pair')}`, dev {best}):",
            "",
            table(["pair", f"val {p}"], [[x["dims"], x["val_score"]] for x in d["pairs"][:20]]),
        ]
    return lines, plot_eliminate(d, w.out / f"{w.slug}_drops.png")


def _layers(d: dict[str, Any], w: Where, p: str) -> Rendered:
    k = d.get("k")
    rows = [
        [
            r["layer"],
            r["full_metrics"].get(p),
            r["best_pair"],
            r["pair_metrics"].get(p),
            r["greedy_selected"],
            r["greedy_metrics"].get(p),
            pm(r["random_baseline"], p),
        ]
        for r in d.get("per_layer", [])
    ]
    head = ["layer", "all dims", "best pair", "pair", f"greedy {k}", f"greedy {k} dev"]
    lines = [table([*head, f"random {k}"], rows)]
    return lines, plot_layers(d, w.out / f"{w.slug}_layers.png")


def _tokens(d: dict[str, Any], w: Where, p: str) -> Rendered:
    k = d.get("k")
    rows = [
        [
            r["pool"],
            r["full_metrics"].get(p),
            r["greedy_selected"],
            r["greedy_metrics"].get(p),
            pm(r["random_baseline"], p),
        ]
        for r in d.get("per_pool", [])
    ]
    lines = [table(["pool", "all dims", f"greedy {k}", "dev", f"random {k}"], rows)]
    return lines, plot_tokens(d, w.out / f"{w.slug}_tokens.png")


def _singles(d: dict[str, Any], w: Where, p: str) -> Rendered:
    rows = [
        [
            r["rank"],
            r["layer"],
            r["dim"],
            r.get(f"stump_val_{p}"),
            r.get(f"stump_dev_{p}"),
            r.get(f"probe_val_{p}"),
            r.get(f"probe_dev_{p}"),
        ]
        for r in d.get("top", [])[:20]
    ]
    head = ["rank", "layer", "dim", "stump val", "stump dev", "probe val", "probe dev"]
    lines = [f"Ranked by `{d.get('ranked_by')}`.\n", table(head, rows)]
    return lines, plot_singles(d, w.out / f"{w.slug}_singles.png")


def _rank(d: dict[str, Any], w: Where, p: str) -> Rendered:
    return rank_section(d), plot_rankings(d, w.out / f"{w.slug}_rankings.png")


def _exact(d: dict[str, Any], w: Where, p: str) -> Rendered:
    return exact_section(d), None


#: the section of each search verb
SECTIONS: dict[str, Callable[[dict[str, Any], Where, str], Rendered]] = {
    "greedy": _greedy,
    "pairs": _pairs,
    "eliminate": _eliminate,
    "layers": _layers,
    "tokens": _tokens,
    "singles": _singles,
    "rank": _rank,
    "exact": _exact,
}


def section(path: Path, d: dict[str, Any], root: Path, out: Path, files: list[Path]) -> str:
    """The Markdown of one result ``d`` read from ``path``; plots written go into ``files``."""
    verb = d.get("verb")
    where = path.relative_to(root) if path.is_relative_to(root) else path
    parts = [f"## {verb}: {d.get('task')} ({where})", "", summary(d), ""]
    img = None
    render = SECTIONS.get(str(verb))
    if render is not None:
        lines, img = render(d, Where(path, out, slug(path, root)), str(d.get("primary_metric")))
        parts += lines
    parts += block_lines(d)
    if img is not None:
        files.append(img)
        parts += ["", f"![{verb}]({img.name})"]
    return "\n".join(parts) + "\n"
