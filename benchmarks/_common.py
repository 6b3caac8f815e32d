"""Small helpers shared by the benchmark scripts: load average, log-log fits and panels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages (printed next to every figure)."""
    return [round(v, 2) for v in os.getloadavg()]


def loglog_slope(xs: list[float], ys: list[float]) -> float | None:
    """The slope ``a`` of ``ys ~ xs^a`` (least squares in log-log; None below two distinct
    ``xs``)."""
    if len(set(xs)) < 2:
        return None
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def loglog_panel(ax, xs, series, xlabel: str, ylabel: str, title: str) -> None:
    """One log-log matplotlib panel: ``series`` of ``(label, ys, style)`` against ``xs``,
    ticked at ``xs``."""
    for label, ys, style in series:
        ax.plot(xs, ys, style, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(xs, [f"{x:,}" for x in xs])
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def save_figure(fig, title: str, path: Path) -> str:
    """Title, lay out and write ``fig`` as a PNG at ``path``; returns the path."""
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return str(path)
