"""Report sections of the rank and exact searches, and the verdict / MDL / ablation lines every
result with those blocks gets (used by :mod:`probekit.report`; :func:`plot_rankings` also by
``probekit search rank --method all``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .format import fmt, pm, table

__all__ = ["block_lines", "draw_baselines", "exact_section", "plot_rankings", "rank_section"]


def draw_baselines(ax, d: dict[str, Any], p: str, ks, rm: np.ndarray, rs: np.ndarray) -> None:
    """The random band (``rm +- rs [len(ks)]``), the full-width and majority lines of ``d``."""
    ax.plot(ks, rm, "x-", color="gray", label="random dims (dev, mean)")
    ax.fill_between(ks, rm - rs, rm + rs, color="gray", alpha=0.2, label="random ± 1 sd")
    full = (d.get("full_metrics") or {}).get(p)
    if full is not None:
        ax.axhline(full, color="k", ls=":", label="all dims (dev)")
    maj = (d.get("majority_baseline") or {}).get(p)
    if maj is not None and math.isfinite(maj):
        ax.axhline(maj, color="r", ls=":", alpha=0.5, label="majority")


def plot_rankings(d: dict[str, Any], out: str | Path) -> Path:
    """Every ranking's eval score against k on one PNG, with the random band and baselines.

    Args:
        d: a ``rank`` result (``rankings``, ``random_band``, ``primary_metric``).
        out: the PNG path.
    """
    from matplotlib.figure import Figure

    out = Path(out)
    p = d["primary_metric"]
    fig = Figure(figsize=(7, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for m, r in d["rankings"].items():
        ys = [c.get(p) for c in r["curve"]]
        ax.plot(range(1, len(ys) + 1), ys, "o-", ms=3, label=m)
    band = d.get("random_band") or []
    ks = [b["k"] for b in band]
    rm = np.array([b["mean"].get(p) for b in band], dtype=float)
    rs = np.array([b["std"].get(p) for b in band], dtype=float)
    draw_baselines(ax, d, p, ks, rm, rs)
    ax.set_xlabel("top-k dimensions of the ranking")
    ax.set_ylabel(f"{p} (eval)")
    ax.set_title(f"rankings, layer {d.get('layer')} ({d.get('pool')}): {d.get('task')}")
    ax.legend(fontsize=7, ncol=2)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def rank_section(d: dict[str, Any]) -> list[str]:
    """Table: per method, the eval score of its top-k for each k, the random band last."""
    p = d["primary_metric"]
    K = d.get("k", 0)
    rows = []
    for m, r in d.get("rankings", {}).items():
        rows.append(
            [
                m,
                r["order"][:5],
                *[c.get(p) for c in r["curve"]],
                r["verdict"]["status"],
                r["seconds"],
            ]
        )
    rows.append(["random k", "-", *[pm(b, p) for b in d.get("random_band", [])], "-", None])
    head = ["method", "top 5", *[f"k={k}" for k in range(1, K + 1)], "verdict (top-K)", "rank s"]
    best = (
        f"Best by validation: `{d.get('best_method')}`; majority "
        f"{fmt((d.get('majority_baseline') or {}).get(p))}."
    )
    return [
        f"Eval {p} of each ranking's top-k (ranked on the fit part).",
        "",
        table(head, rows),
        "",
        best,
    ]


def exact_section(d: dict[str, Any]) -> list[str]:
    """The optimum, the screen's leaders and the gap of greedy."""
    p = d["primary_metric"]
    lines = [
        f"Exact best {d['k']}-subset of the top {d['m']} by `{d['prefilter']}`: "
        f"{d['n_subsets']} subsets screened ({d['screen_s']:.2f} s), {d['n_refit']} refitted "
        f"({d['refit_s']:.2f} s); the optimum was #{d['screen_rank']} of the screen.",
        "",
        table(
            ["set", f"val {p}", f"dev {p}", "exact - greedy (val)"],
            [
                ["exact", d["val_score"], d["metrics"].get(p), 0.0],
                *[
                    [
                        f"greedy ({key})",
                        d[key]["val_score"],
                        d[key]["metrics"].get(p),
                        d[key]["val_gap"],
                    ]
                    for key in ("greedy", "greedy_all")
                ],
            ],
        ),
    ]
    return lines


def block_lines(d: dict[str, Any]) -> list[str]:
    """The verdict's headline and the MDL and ablation blocks, where a result has them."""
    p = d.get("primary_metric")
    lines = []
    if d.get("verdict"):
        lines += ["", f"**Verdict** ({d['verdict']['status']}): {d['verdict']['headline']}"]
    mdl = d.get("mdl")
    if mdl and "compression" in mdl:
        lines += [
            "",
            f"- MDL (online code): {fmt(mdl['codelength_bits'], 0)} bits, compression "
            f"{fmt(mdl['compression'], 2)}; full width {fmt(mdl['full_compression'], 2)}; random "
            f"{fmt(mdl['random_compression_mean'], 2)} ± {fmt(mdl['random_compression_std'], 2)} "
            f"(uniform code {fmt(mdl['uniform_codelength_bits'], 0)} bits)",
        ]
        ctl = mdl.get("control") or {}
        if "compression" in ctl:
            lines.append(
                f"- control task (Hewitt & Liang, {ctl['n_types']} input types): {p} "
                f"{fmt(ctl['metrics'].get(p))}, selectivity {fmt(ctl['selectivity'].get(p))}, "
                f"compression {fmt(ctl['compression'], 2)}"
            )
    ab = d.get("ablation")
    if ab:
        lines += [
            f"- ablation ({p}): without the set {fmt((ab.get('without') or {}).get(p))}, "
            f"after erasing it (LEACE) {fmt((ab.get('erased') or {}).get(p))}, full width "
            f"{fmt((ab.get('full') or {}).get(p))}",
        ]
    return lines
