"""Small helpers shared by the benchmark scripts: load average, log-log fits and panels, and
the synthetic caches of a random encoder."""

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


def synthetic_caches(work: Path, n: int, hidden: int = 384) -> dict[str, Path]:
    """Caches (pooled views) of a random 1-layer BERT of width ``hidden`` (the MiniLM
    tokenizer) over ``n`` train and ``max(1000, n // 10)`` dev generated sentences with a
    planted label, built once into ``work``: ``{"train": Path, "dev": Path}``. What a search
    costs depends on the array shapes, not on the model."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from probekit.extract import extract
    from probekit.models import load_encoder, resolve_model_path
    from probekit.tasks import load_task

    tag = "" if hidden == 384 else f"-h{hidden}"
    model_dir = work / f"bert-{hidden}"
    if not (model_dir / "config.json").exists():
        torch.manual_seed(0)
        cfg = BertConfig(
            hidden_size=hidden, num_hidden_layers=1, num_attention_heads=4,
            intermediate_size=hidden, max_position_embeddings=64, vocab_size=30522,
        )  # fmt: skip
        BertModel(cfg).eval().save_pretrained(model_dir)
        AutoTokenizer.from_pretrained(resolve_model_path("minilm")).save_pretrained(model_dir)
    rng = np.random.default_rng(0)
    words = np.array(["the", "a", "cat", "dog", "good", "bad", "film", "plot", "not", "dull"])
    paths = {}
    for split, size in (("train", n), ("dev", max(1000, n // 10))):
        tsv = work / f"synthetic-{split}-{size}.tsv"
        if not tsv.exists():
            sent = [" ".join(rng.choice(words, size=8)) for _ in range(size)]
            lab = [int("good" in s) for s in sent]
            rows = ["sentence\tlabel"] + [f"{s}\t{l}" for s, l in zip(sent, lab)]
            tsv.write_text("\n".join(rows) + "\n")
        paths[split] = work / f"synthetic{tag}-{split}-{size}.h5"
        if not paths[split].exists():
            data = load_task("sst2", split, data=tsv, text_col="sentence", label_col="label")
            extract(load_encoder(str(model_dir), device="cpu"), data, paths[split],
                    store_tokens=False, max_length=32)  # fmt: skip
    return paths
