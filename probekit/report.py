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

Plots use matplotlib's object API (:class:`matplotlib.figure.Figure`), so no global backend
is switched and nothing needs a display.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError
from .report_rank import block_lines, draw_baselines, exact_section, plot_rankings, rank_section

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


# ----------------------------------------------------------------------------- formatting


def _f(v: Any, nd: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "-" if not math.isfinite(v) else f"{v:.{nd}f}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return str(v)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_f(x) for x in r) + " |")
    return "\n".join(lines)


def _pm(rb: dict | None, m: str) -> str:
    if not rb or m not in rb.get("mean", {}):
        return "-"
    return f"{_f(rb['mean'][m])} ± {_f(rb['std'].get(m))}"


def _slug(path: Path, root: Path) -> str:
    rel = path.parent.relative_to(root) if path.is_relative_to(root) else Path(path.parent.name)
    parts = [p for p in rel.parts if p not in (".", "")]
    return "_".join([*parts, path.stem]) if parts else path.stem


def _fig(w: float = 6.0, h: float = 4.0):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=100, layout="constrained")


# ----------------------------------------------------------------------------- sections


def _summary(d: dict[str, Any]) -> str:
    p = d.get("primary_metric")
    mets = d.get("metric_names", [p])
    rows = []
    for m in mets:
        rows.append(
            [
                m,
                (d.get("metrics") or {}).get(m),
                (d.get("full_metrics") or {}).get(m),
                _pm(d.get("random_baseline"), m),
                (d.get("majority_baseline") or {}).get(m),
            ]
        )
    k = (d.get("random_baseline") or {}).get("k", len(d.get("selected") or []))
    lines = [
        f"- selected: `{d.get('selected')}` (layer {d.get('layer')}, pool {d.get('pool', '-')})",
        f"- seed {d.get('seed')}, elapsed {_f(d.get('elapsed_s'), 1)} s; {d.get('protocol', '')}",
        "",
        _table(
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
            f"{_f(s['jaccard_mean'], 3)}, min {_f(s['jaccard_min'], 3)}. Chosen how often: {freq}.",
        ]
    return "\n".join(lines)


def _plot_greedy(d: dict[str, Any], out: Path) -> Path | None:
    curve = d.get("curve") or []
    if not curve:
        return None
    p = d["primary_metric"]
    ks = [c["step"] for c in curve]
    dev = [c["dev"].get(p) for c in curve]
    val = [c["val_score"] for c in curve]
    rm = np.array([c["random_mean"].get(p) for c in curve], dtype=float)
    rs = np.array([c["random_std"].get(p) for c in curve], dtype=float)
    fig = _fig()
    ax = fig.add_subplot()
    ax.plot(ks, dev, "o-", label="greedy (dev)")
    ax.plot(ks, val, "s--", alpha=0.6, label="greedy (validation)")
    draw_baselines(ax, d, p, ks, rm, rs)
    for kk, y, dim in zip(ks, dev, [c["dim"] for c in curve]):
        ax.annotate(
            str(dim), (kk, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7
        )
    ax.set_xticks(ks)
    ax.set_xlabel("dimensions")
    ax.set_ylabel(p)
    ax.set_title(f"greedy selection, layer {d.get('layer')} ({d.get('pool')})")
    ax.legend(fontsize=7)
    fig.savefig(out)
    return out


def _plot_pairs(d: dict[str, Any], mpath: Path, out: Path) -> Path | None:
    if not mpath.exists():
        return None
    M = np.load(mpath)
    fig = _fig(6, 5)
    ax = fig.add_subplot()
    im = ax.imshow(M, cmap="viridis", interpolation="nearest")
    fig.colorbar(
        im, ax=ax, label=f"{d.get('matrix_metric')} ({d.get('matrix_split', 'validation')})"
    )
    sel = d.get("selected") or []
    if len(sel) == 2:
        ax.plot([sel[1]], [sel[0]], "r+", ms=12)
    ax.set_xlabel("dimension")
    ax.set_ylabel("dimension")
    ax.set_title(f"all pairs, layer {d.get('layer')} ({d.get('pool')}): best {sel}")
    fig.savefig(out)
    return out


def _plot_layers(d: dict[str, Any], out: Path) -> Path | None:
    per = d.get("per_layer") or []
    if not per:
        return None
    p = d["primary_metric"]
    L = [r["layer"] for r in per]
    fig = _fig()
    ax = fig.add_subplot()
    ax.plot(L, [r["full_metrics"].get(p) for r in per], "o-", label="all dims")
    ax.plot(L, [r["pair_metrics"].get(p) for r in per], "s-", label="best pair")
    ax.plot(L, [r["greedy_metrics"].get(p) for r in per], "^-", label=f"greedy k={d.get('k')}")
    rm = np.array([r["random_baseline"]["mean"].get(p) for r in per], dtype=float)
    rs = np.array([r["random_baseline"]["std"].get(p) for r in per], dtype=float)
    ax.plot(L, rm, "x-", color="gray", label=f"random {d.get('k')} dims")
    ax.fill_between(L, rm - rs, rm + rs, color="gray", alpha=0.2)
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel(f"{p} (dev)")
    ax.set_xticks(L)
    ax.set_title(f"layer sweep ({d.get('pool')})")
    ax.legend(fontsize=7)
    fig.savefig(out)
    return out


def _plot_tokens(d: dict[str, Any], out: Path) -> Path | None:
    per = d.get("per_pool") or []
    if not per:
        return None
    p = d["primary_metric"]
    x = np.arange(len(per))
    w = 0.27
    fig = _fig()
    ax = fig.add_subplot()
    ax.bar(x - w, [r["full_metrics"].get(p) for r in per], w, label="all dims")
    ax.bar(x, [r["greedy_metrics"].get(p) for r in per], w, label=f"greedy k={d.get('k')}")
    ax.bar(
        x + w,
        [r["random_baseline"]["mean"].get(p) for r in per],
        w,
        yerr=[r["random_baseline"]["std"].get(p) for r in per],
        label=f"random {d.get('k')} dims",
        color="gray",
    )
    ax.set_xticks(x, [r["pool"] for r in per])
    ax.set_ylabel(f"{p} (dev)")
    lo = min(
        v
        for r in per
        for v in (
            r["full_metrics"].get(p),
            r["greedy_metrics"].get(p),
            r["random_baseline"]["mean"].get(p),
        )
        if v is not None
    )
    ax.set_ylim(max(0.0, lo - 0.1) if lo >= 0 else lo - 0.1, None)
    ax.set_title(f"token pooling, layer {d.get('layer')}")
    ax.legend(fontsize=7)
    fig.savefig(out)
    return out


def _plot_eliminate(d: dict[str, Any], out: Path) -> Path | None:
    drops = d.get("final_drops") or {}
    steps = [s for s in d.get("steps") or [] if s.get("method") == "exact" and "score" in s]
    if not drops and not steps:
        return None
    fig = _fig(8, 3.5)
    ax1, ax2 = fig.subplots(1, 2)
    if steps:
        ax1.plot([s["size"] for s in steps], [s["score"] for s in steps], "o-")
        ax1.set_xlabel("set size")
        ax1.set_ylabel(f"{d.get('primary_metric')} (validation)")
        ax1.invert_xaxis()
        ax1.set_title("remove-one elimination")
    if drops:
        ks = list(drops)
        ax2.bar(range(len(ks)), [drops[k] for k in ks])
        ax2.set_xticks(range(len(ks)), ks, rotation=90, fontsize=7)
        ax2.set_ylabel("drop when removed")
        ax2.set_title("survivors")
    fig.savefig(out)
    return out


def _plot_singles(d: dict[str, Any], out: Path) -> Path | None:
    per = d.get("best_per_layer") or []
    if not per:
        return None
    p = d["primary_metric"]
    L = [r["layer"] for r in per]
    fig = _fig()
    ax = fig.add_subplot()
    ax.plot(L, [r["dev"].get(p) for r in per], "o-", label="best single dim")
    ax.plot(L, [r["full_metrics"].get(p) for r in per], "s-", label="all dims")
    ax.plot(
        L,
        [r["random_baseline"]["mean"].get(p) for r in per],
        "x-",
        color="gray",
        label="random single dim",
    )
    for l, r in zip(L, per):
        ax.annotate(
            str(r["dim"]),
            (l, r["dev"].get(p)),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize=7,
        )
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel(f"{p} (dev)")
    ax.set_xticks(L)
    ax.set_title(f"single dimensions ({d.get('pool')})")
    ax.legend(fontsize=7)
    fig.savefig(out)
    return out


def _section(path: Path, d: dict[str, Any], root: Path, out: Path, files: list[Path]) -> str:
    verb = d.get("verb")
    p = d.get("primary_metric")
    slug = _slug(path, root)
    where = path.relative_to(root) if path.is_relative_to(root) else path
    title = f"## {verb}: {d.get('task')} ({where})"
    parts = [title, "", _summary(d), ""]
    img = None
    if verb == "greedy":
        rows = [
            [
                c["step"],
                c["dim"],
                c["val_score"],
                c["dev"].get(p),
                _pm({"mean": c["random_mean"], "std": c["random_std"]}, p),
            ]
            for c in d.get("curve", [])
        ]
        parts.append(_table(["k", "added dim", f"val {p}", f"dev {p}", "random (dev)"], rows))
        img = _plot_greedy(d, out / f"{slug}_curve.png")
    elif verb == "pairs":
        rows = [
            [r["rank"], f"{r['dim_a']}, {r['dim_b']}", r.get(f"val_{p}"), r.get(f"dev_{p}")]
            for r in d.get("top", [])[:20]
        ]
        parts.append(f"{d.get('n_pairs')} pairs of {d.get('n_candidates')} dimensions scored.\n")
        parts.append(_table(["rank", "pair", f"val {p}", f"dev {p}"], rows))
        img = _plot_pairs(
            d, path.parent / (d.get("matrix") or "pairs_matrix.npy"), out / f"{slug}_heatmap.png"
        )
    elif verb == "eliminate":
        rows = [
            [s["size"], s["method"], s.get("removed"), s.get("score"), s.get("score_after")]
            for s in d.get("steps", [])
        ]
        parts.append(_table(["size", "method", "removed", f"val {p} before", "after"], rows))
        if d.get("pairs"):
            parts += [
                "",
                f"Pairs among the survivors (best: `{d.get('best_pair')}`, dev "
                f"{_f((d.get('pair_metrics') or {}).get(p))}):",
                "",
                _table(
                    ["pair", f"val {p}"], [[x["dims"], x["val_score"]] for x in d["pairs"][:20]]
                ),
            ]
        img = _plot_eliminate(d, out / f"{slug}_drops.png")
    elif verb == "layers":
        k = d.get("k")
        rows = [
            [
                r["layer"],
                r["full_metrics"].get(p),
                r["best_pair"],
                r["pair_metrics"].get(p),
                r["greedy_selected"],
                r["greedy_metrics"].get(p),
                _pm(r["random_baseline"], p),
            ]
            for r in d.get("per_layer", [])
        ]
        parts.append(
            _table(
                [
                    "layer",
                    "all dims",
                    "best pair",
                    "pair",
                    f"greedy {k}",
                    f"greedy {k} dev",
                    f"random {k}",
                ],
                rows,
            )
        )
        img = _plot_layers(d, out / f"{slug}_layers.png")
    elif verb == "tokens":
        k = d.get("k")
        rows = [
            [
                r["pool"],
                r["full_metrics"].get(p),
                r["greedy_selected"],
                r["greedy_metrics"].get(p),
                _pm(r["random_baseline"], p),
            ]
            for r in d.get("per_pool", [])
        ]
        parts.append(_table(["pool", "all dims", f"greedy {k}", "dev", f"random {k}"], rows))
        img = _plot_tokens(d, out / f"{slug}_tokens.png")
    elif verb == "singles":
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
        parts.append(f"Ranked by `{d.get('ranked_by')}`.\n")
        parts.append(
            _table(
                ["rank", "layer", "dim", "stump val", "stump dev", "probe val", "probe dev"], rows
            )
        )
        img = _plot_singles(d, out / f"{slug}_singles.png")
    elif verb == "rank":
        parts += rank_section(d)
        img = plot_rankings(d, out / f"{slug}_rankings.png")
    elif verb == "exact":
        parts += exact_section(d)
    parts += block_lines(d)
    if img is not None:
        files.append(img)
        parts += ["", f"![{verb}]({img.name})"]
    return "\n".join(parts) + "\n"


def write_report(root: str | Path, out: str | Path | None = None) -> Report:
    """Read the search results under ``root`` and write ``report.md``, ``summary.csv`` and PNG
    plots into ``out`` (default ``root/report``).

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
    sections = []
    summary_rows = []
    for p, d in results:
        try:
            sections.append(_section(p, d, root, outd, files))
        except (
            KeyError,
            TypeError,
            ValueError,
        ) as e:  # a result of an older/odd layout: keep going
            logger.warning("could not render %s: %s", p, e)
            sections.append(f"## {d.get('verb')}: {p}\n\n(could not render: {e})\n")
        pm = d.get("primary_metric")
        rb = d.get("random_baseline") or {}
        summary_rows.append(
            {
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
        )
    md = outd / "report.md"
    head = (
        f"# probekit search report\n\n{len(results)} result(s) from `{root}`. Selection on a "
        "validation split of the training cache; scores on the evaluation cache.\n\n"
    )
    overview = _table(
        [
            "result",
            "verb",
            "layer",
            "pool",
            "selected",
            "metric",
            "dev",
            "full",
            "random (mean ± sd)",
        ],
        [
            [
                r["result"],
                r["verb"],
                r["layer"],
                r["pool"],
                r["selected"],
                r["metric"],
                r["dev"],
                r["full"],
                "-"
                if r["random_mean"] is None
                else f"{_f(r['random_mean'])} ± {_f(r['random_std'])}",
            ]
            for r in summary_rows
        ],
    )
    md.write_text(head + overview + "\n\n" + "\n".join(sections))
    csvp = outd / "summary.csv"
    with open(csvp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(summary_rows[0]))
        w.writeheader()
        w.writerows(summary_rows)
    files = [md, csvp, *files]
    return Report(results=results, markdown=md, files=files)
