"""PNG plots of a study (matplotlib's object API via :func:`probekit.report.plots.figure`:
no global backend, no display; matplotlib is imported only when a plot is drawn).

Each function takes the study's :class:`~.results.Condition` cells and a path, draws one
figure with one panel per task, and returns the path (None when there is nothing to draw).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..report.plots import figure
from .results import Condition, Stats, StudyResults, natural, probe_points, spearman

__all__ = [
    "plot_cross",
    "plot_dims",
    "plot_freeze",
    "plot_layers",
    "plot_probe_scatter",
    "plot_tokens",
]


def _by_task(cells: list[Condition], experiment: str) -> dict[str, list[Condition]]:
    out: dict[str, list[Condition]] = {}
    for c in cells:
        if c.experiment == experiment and c.stats.n:
            out.setdefault(c.task, []).append(c)
    return dict(sorted(out.items()))


def _panels(n: int, w: float = 4.5, h: float = 3.5):
    fig = figure(w * n, h)
    return fig, [fig.add_subplot(1, n, i + 1) for i in range(n)]


def _finish(ax, c: Condition, title: str, legend_size: int = 7) -> None:
    """What every panel ends with: the majority line, the metric's label, title and legend."""
    if c.majority is not None:
        ax.axhline(c.majority, color="grey", ls=":", lw=1, label="majority")
    ax.set_ylabel(c.metric or "score")
    ax.set_title(title)
    ax.legend(fontsize=legend_size)


def _bars(cells: list[Condition], names: tuple[str, ...], experiment: str, out: Path, title: str):
    tasks = _by_task(cells, experiment)
    if not tasks:
        return None
    fig, axes = _panels(len(tasks))
    for ax, (task, cs) in zip(axes, tasks.items()):
        by = {c.condition: c for c in cs}
        shown = [n for n in names if n in by]
        ax.bar(shown, [by[n].stats.mean for n in shown],
               yerr=[by[n].stats.std for n in shown], capsize=4)  # fmt: skip
        ax.tick_params(axis="x", labelsize=7)
        _finish(ax, cs[0], f"{task}: {title}")
    fig.savefig(out)
    return out


def plot_tokens(cells: list[Condition], out: Path) -> Path | None:
    """Token-wise bars: cls, max_norm, mean (mean ± sd over seeds)."""
    return _bars(cells, ("cls", "max_norm", "mean"), "token", out, "token-wise")


def plot_freeze(cells: list[Condition], out: Path) -> Path | None:
    """Freezing bars: full fine-tuning, frozen with a 2-layer head, frozen with 2 dims."""
    names = ("full_1layer", "frozen_2layer", "frozen_2dim")
    return _bars(cells, names, "freeze", out, "freezing")


def plot_dims(results: StudyResults, cells: list[Condition], out: Path) -> Path | None:
    """Fine-tuned score vs k (probe-chosen dims), the random-pair band at k = 2, the cached
    probe's scores per k and the full-width and majority lines."""
    tasks = _by_task(cells, "dims")
    if not tasks:
        return None
    fig, axes = _panels(len(tasks))
    for ax, (task, cs) in zip(axes, tasks.items()):
        by = {c.condition: c for c in cs}
        ks = [k for k in (1, 2, 3) if f"probe_k{k}" in by]
        ax.errorbar(ks, [by[f"probe_k{k}"].stats.mean for k in ks],
                    yerr=[by[f"probe_k{k}"].stats.std for k in ks], fmt="o-", capsize=4,
                    label="fine-tuned, probe-chosen dims")  # fmt: skip
        rnd = Stats.pooled([c.stats for c in cs if c.condition == "random_pair"])
        if rnd.n:
            ax.fill_between([1.8, 2.2], rnd.mean - rnd.std, rnd.mean + rnd.std, alpha=0.3,
                            color="tab:orange", label="random pairs (mean ± sd)")  # fmt: skip
        pr = (results.probes.get(task) or {}).get("ranked_scores") or {}
        pk = sorted(int(k) for k in pr)
        if pk:
            ax.plot(pk, [pr[str(k)] for k in pk], "s--", alpha=0.6, label="cached probe")
        if cs[0].reference is not None and cs[0].reference.n:
            ax.axhline(cs[0].reference.mean, color="k", lw=1, label="full width")
        ax.set_xticks([1, 2, 3])
        ax.set_xlabel("dimensions (k)")
        _finish(ax, cs[0], f"{task}: score vs k", legend_size=6)
    fig.savefig(out)
    return out


def plot_layers(cells: list[Condition], out: Path) -> Path | None:
    """2-dimension heads by layer (0 = embeddings): the probe pair and a random pair."""
    tasks = _by_task(cells, "layers")
    if not tasks:
        return None
    fig, axes = _panels(len(tasks))
    for ax, (task, cs) in zip(axes, tasks.items()):
        for cond in sorted({c.condition for c in cs}):
            pts = sorted((int(c.group), c.stats) for c in cs if c.condition == cond)
            ax.errorbar([x for x, _ in pts], [s.mean for _, s in pts],
                        yerr=[s.std for _, s in pts], fmt="o-", capsize=3, label=cond)  # fmt: skip
        ax.set_xlabel("layer (0 = embeddings)")
        _finish(ax, cs[0], f"{task}: score by layer")
    fig.savefig(out)
    return out


def plot_cross(cells: list[Condition], out: Path) -> Path | None:
    """Cross-task matrix per mode: row A, column B, cell = A's change after B (points)."""
    cs = [c for c in cells if c.experiment == "cross" and c.stats.n]
    modes: dict[str, dict[tuple[str, str], dict[str, float]]] = {}
    for c in cs:
        bits = c.group.split(":")
        if len(bits) == 3:
            modes.setdefault(bits[2], {}).setdefault((bits[0], bits[1]), {})[c.condition] = (
                c.stats.mean
            )
    if not modes:
        return None
    tasks = sorted({t for m in modes.values() for pair in m for t in pair}, key=natural)
    idx = {t: i for i, t in enumerate(tasks)}
    fig, axes = _panels(len(modes), 4.0, 3.6)
    for ax, (mode, pairs) in zip(axes, sorted(modes.items())):
        M = np.full((len(tasks), len(tasks)), np.nan)
        for (a, b), v in pairs.items():
            if "A_single" in v and "A_after_B" in v:
                M[idx[a], idx[b]] = 100 * (v["A_after_B"] - v["A_single"])
        im = ax.imshow(M, cmap="coolwarm_r", vmin=-20, vmax=20)
        for (i, j), x in np.ndenumerate(M):
            if np.isfinite(x):
                ax.text(j, i, f"{x:+.1f}", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(tasks)), tasks)
        ax.set_yticks(range(len(tasks)), tasks)
        ax.set_xlabel("then trained on B")
        ax.set_ylabel("A (kept head)")
        ax.set_title(f"A's change after B, pts ({mode} dims)")
        fig.colorbar(im, ax=ax)
    fig.savefig(out)
    return out


def plot_probe_scatter(results: StudyResults, out: Path) -> Path | None:
    """Per task, the cached-probe score (pre-trained encoder) of each fine-tuned head's dims
    against its fine-tuned score, with Spearman's rho."""
    tasks = sorted({e["task"] for e in results.entries})
    pts = {t: [p for p in probe_points(results, t) if p.pre is not None] for t in tasks}
    pts = {t: p for t, p in pts.items() if p}
    if not pts:
        return None
    fig, axes = _panels(len(pts))
    for ax, (task, ps) in zip(axes, pts.items()):
        x, y = [p.pre for p in ps], [p.finetuned for p in ps]
        rho, pv = spearman(x, y)  # type: ignore[arg-type]
        ax.scatter(x, y, s=18)
        ax.set_xlabel("cached probe, pre-trained encoder")
        ax.set_ylabel(f"fine-tuned ({results.metric(task)})")
        ax.set_title(f"{task}: Spearman rho {rho:.2f} (p {pv:.3f}, n {len(ps)})")
    fig.savefig(out)
    return out
