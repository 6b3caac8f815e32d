"""PNG plots of search results, with matplotlib's object API (no global backend, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .rank import draw_baselines

__all__ = [
    "figure",
    "plot_eliminate",
    "plot_greedy",
    "plot_layers",
    "plot_pairs",
    "plot_singles",
    "plot_tokens",
]


def figure(w: float = 6.0, h: float = 4.0):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=100, layout="constrained")


def plot_greedy(d: dict[str, Any], out: Path) -> Path | None:
    curve = d.get("curve") or []
    if not curve:
        return None
    p = d["primary_metric"]
    ks = [c["step"] for c in curve]
    dev = [c["dev"].get(p) for c in curve]
    val = [c["val_score"] for c in curve]
    rm = np.array([c["random_mean"].get(p) for c in curve], dtype=float)
    rs = np.array([c["random_std"].get(p) for c in curve], dtype=float)
    fig = figure()
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


def plot_pairs(d: dict[str, Any], mpath: Path, out: Path) -> Path | None:
    if not mpath.exists():
        return None
    M = np.load(mpath)
    fig = figure(6, 5)
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


def plot_layers(d: dict[str, Any], out: Path) -> Path | None:
    per = d.get("per_layer") or []
    if not per:
        return None
    p = d["primary_metric"]
    L = [r["layer"] for r in per]
    fig = figure()
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


def plot_tokens(d: dict[str, Any], out: Path) -> Path | None:
    per = d.get("per_pool") or []
    if not per:
        return None
    p = d["primary_metric"]
    x = np.arange(len(per))
    w = 0.27
    fig = figure()
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


def plot_eliminate(d: dict[str, Any], out: Path) -> Path | None:
    drops = d.get("final_drops") or {}
    steps = [s for s in d.get("steps") or [] if s.get("method") == "exact" and "score" in s]
    if not drops and not steps:
        return None
    fig = figure(8, 3.5)
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


def plot_singles(d: dict[str, Any], out: Path) -> Path | None:
    per = d.get("best_per_layer") or []
    if not per:
        return None
    p = d["primary_metric"]
    L = [r["layer"] for r in per]
    fig = figure()
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
