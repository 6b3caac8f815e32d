"""Fine-tuning settings for few-dimension heads: target scaling, head learning rate, warm-up.

Fine-tunes the embedded MiniLM (whole encoder, AdamW at ``lr`` 2e-5, ``max_length`` 64,
batch 32, 2 epochs, one torch thread, seed 0) through 2-dimension heads and full-width heads
on CoLA and SST-2 (``../shared/glue``: the first ``--limit`` training examples, the first
``--eval-limit`` dev examples) and on a regression fixture, and records the dev metric of
each run (CoLA: MCC; SST-2: accuracy; regression: Pearson).

* ``targets``: the regression fixture (``--reg-limit`` training examples) at head lr 1e-3,
  warm-up 0.1, with the targets raw (as before: the head starts near 0), with the raw
  targets and the output bias started at the training mean (2-dimension head), and
  standardised on the training split (probekit's way now); and the standardised
  2-dimension head at head lr 2e-5 and 1e-2.
* ``grid``: CoLA and SST-2 (``--limit`` examples), head lr in {2e-5 (= lr), 1e-3, 1e-2}
  at warm-up 0.1 and head lr 1e-3 at warm-up 0 for 2-dimension heads, head lr 2e-5 and
  1e-2 for full-width heads (``GRID`` below; 2 shared CPU cores allow about 20 runs).

The regression fixture is SST-2 sentences with a planted continuous score in the STS-B
range: ``2.2 + 1.1 * (sentiment - its train mean) + 0.5 * z(log word count)``, clipped to
[0, 5] (mean about 2.2, std about 1.2), so a head must read both the sentiment and the
length. The 2 dimensions of each task are the pair of final-layer [CLS] dimensions of the
pre-trained encoder with the largest absolute correlation with the training labels (a
quick probe: one forward pass over the training examples).

Each run writes one JSON line to ``--out`` (default ``bench_head_lr.jsonl``); a rerun skips
the runs already there. ``--table`` prints the Markdown tables of a results file.

Usage: python benchmarks/bench_head_lr.py [--glue-dir DIR] [--parts targets,grid] [--lr 2e-5]
       [--limit 400] [--reg-limit 1000] [--eval-limit 400] [--out FILE] [--table]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from probekit.finetune import FinetuneConfig, HeadConfig, TaskRun, Trainer
from probekit.models import load_encoder
from probekit.tasks import TaskData, TaskSpec, load_task

REPO = Path(__file__).resolve().parents[1]
GLUE = Path(os.environ.get("PROBEKIT_GLUE_DIR", REPO.parent / "shared" / "glue"))
PLANTED = TaskSpec(
    name="planted",
    glue_dir="SST-2",
    text_fields=("sentence",),
    label_names=(),
    regression=True,
    metrics=("pearson", "spearman"),
)
HEAD_LRS = (2e-5, 1e-3, 1e-2)
#: (task, head, head_lr, warmup_ratio) runs of the grid (3e-3 left out: 2 shared cores)
GRID = [
    *((t, "2dim", lr, 0.1) for t in ("cola", "sst2") for lr in HEAD_LRS),
    *((t, "2dim", 1e-3, 0.0) for t in ("cola", "sst2")),
    *((t, "full", lr, 0.1) for t in ("cola", "sst2") for lr in (2e-5, 1e-2)),
]


def planted_regression(train: TaskData, dev: TaskData) -> tuple[TaskData, TaskData]:
    """SST-2 splits with the planted score of the module docstring as their labels."""
    s_mean = float((2.0 * train.labels - 1.0).mean())
    log_len = np.log([len(t.split()) for t in train.texts])
    mu, sd = float(log_len.mean()), float(log_len.std())

    def scored(d: TaskData) -> TaskData:
        s = 2.0 * d.labels - 1.0
        z = (np.log([len(t.split()) for t in d.texts]) - mu) / sd
        y = np.clip(2.2 + 1.1 * (s - s_mean) + 0.5 * z, 0.0, 5.0).astype(np.float32)
        return replace(d, task=PLANTED, labels=y, source=f"{d.source} (planted score)")

    return scored(train), scored(dev)


def quick_pair(model: str, data: TaskData, max_length: int) -> list[int]:
    """The 2 final-layer [CLS] dims with the largest |correlation| with the labels."""
    lm = load_encoder(model, device="cpu")
    feats = []
    with torch.no_grad():
        for i in range(0, len(data), 64):
            enc = lm.tokenizer(
                data.texts[i : i + 64],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            feats.append(lm.model(**enc).last_hidden_state[:, 0].numpy())
    x = np.concatenate(feats)
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    y = data.labels.astype(np.float64)
    corr = np.abs(x.T @ ((y - y.mean()) / y.std())) / len(y)
    return sorted(int(d) for d in np.argsort(-corr)[:2])


class VariantTrainer(Trainer):
    """A :class:`Trainer` whose regression heads train on raw targets (``raw``), or on raw
    targets with the output bias started at the training mean (``bias_mean``)."""

    def __init__(self, *args, variant: str, **kw) -> None:
        super().__init__(*args, **kw)
        self.variant = variant

    def build(self) -> None:
        super().build()
        if self.variant == "standardized":
            return
        for head in self.heads.values():
            mean = float(head.target_mean[0])
            head.target_mean.fill_(0.0)
            head.target_std.fill_(1.0)
            if self.variant == "bias_mean":
                with torch.no_grad():
                    head.out.bias.fill_(mean)


def run_one(data: dict, key: dict, args: argparse.Namespace) -> dict:
    """One fine-tuning run; its record line."""
    train, dev, dims = data[key["task"]]
    cfg = FinetuneConfig(
        model="minilm",
        task=train.task.name,
        head=HeadConfig(dims="all" if key["head"] == "full" else dims),
        lr=args.lr,
        head_lr=key["head_lr"],
        warmup_ratio=key["warmup_ratio"],
        epochs=args.epochs,
        batch_size=32,
        max_length=args.max_length,
        checkpoint_every=0,
        seed=0,
    )
    head = cfg.head.bind(train.task, 384, 7)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = VariantTrainer(
            cfg,
            [TaskRun(train.task.name, train, dev, head)],
            device="cpu",
            out_dir=tmp,
            progress=False,
            variant=key["targets"],
        )
        t0 = time.perf_counter()
        r = trainer.run(resume=False)
        elapsed = time.perf_counter() - t0
    metric = train.task.metrics[0]
    return {
        **key,
        "lr": args.lr,
        "dims": None if key["head"] == "full" else dims,
        "n_train": len(train),
        "n_eval": len(dev),
        "metric": metric,
        "score": r.metrics[metric],
        "train_loss": [e["train_loss"] for e in r.record["epochs"]],
        "elapsed_s": elapsed,
        "load": os.getloadavg()[0],
    }


def planned(parts: list[str]) -> list[dict]:
    keys = []
    if "targets" in parts:
        runs = [("2dim", t, 1e-3) for t in ("raw", "bias_mean", "standardized")]
        runs += [("full", t, 1e-3) for t in ("raw", "standardized")]
        runs += [("2dim", "standardized", 1e-2), ("2dim", "standardized", 2e-5)]
        for head, targets, lr in runs:
            keys.append(dict(part="targets", task="planted1000", head=head, head_lr=lr,
                             warmup_ratio=0.1, targets=targets))  # fmt: skip
    if "lr" in parts:  # the encoder's lr (--lr) at the chosen head lr, SST-2
        for head in ("2dim", "full"):
            keys.append(dict(part="grid", task="sst2", head=head, head_lr=1e-2, warmup_ratio=0.1,
                             targets="standardized"))  # fmt: skip
    if "grid" in parts:
        for task, head, lr, w in GRID:
            keys.append(dict(part="grid", task=task, head=head, head_lr=lr, warmup_ratio=w,
                             targets="standardized"))  # fmt: skip
    return keys


def load_data(tasks: set[str], args: argparse.Namespace) -> dict:
    """``{task: (train, dev, quick pair)}`` for the tasks the plan needs."""
    out = {}
    for name in sorted(tasks):
        base = "sst2" if name.startswith("planted") else name
        limit = args.reg_limit if name == "planted1000" else args.limit
        train = load_task(base, "train", glue_dir=args.glue_dir, limit=limit)
        dev = load_task(base, "dev", glue_dir=args.glue_dir, limit=args.eval_limit)
        if name.startswith("planted"):
            train, dev = planted_regression(train, dev)
        out[name] = (train, dev, quick_pair("minilm", train, args.max_length))
    return out


def table(rows: list[dict]) -> str:
    """Markdown tables: the target-scaling runs, then the grid (one column per head lr)."""
    lines = ["| head | head lr | targets | Pearson | train loss (epoch 1, 2) | s | load |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in (r for r in rows if r["part"] == "targets"):
        loss = ", ".join(f"{v:.3f}" for v in r["train_loss"])
        lines.append(f"| {r['head']} | {r['head_lr']:g} | {r['targets']} | {r['score']:.3f} "
                     f"| {loss} | {r['elapsed_s']:.0f} | {r['load']:.1f} |")  # fmt: skip
    grid = [r for r in rows if r["part"] == "grid"]
    lines += ["", "| task (metric) | head | warm-up | " + " | ".join(f"{x:g}" for x in HEAD_LRS)
              + " |", "|---|---|---|" + "---|" * len(HEAD_LRS)]  # fmt: skip
    conds = dict.fromkeys((r["task"], r["head"], r["warmup_ratio"]) for r in grid)
    for task, head, w in conds:
        cells = []
        for lr in HEAD_LRS:
            hit = [r for r in grid if (r["task"], r["head"], r["warmup_ratio"], r["head_lr"])
                   == (task, head, w, lr)]  # fmt: skip
            cells.append(f"{hit[0]['score']:.3f}" if hit else "")
        metric = next(r["metric"] for r in grid if r["task"] == task)
        lines.append(f"| {task} ({metric}) | {head} | {w:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--glue-dir", type=Path, default=GLUE)
    p.add_argument("--parts", default="targets,grid")
    p.add_argument("--limit", type=int, default=400)
    p.add_argument("--reg-limit", type=int, default=1000)
    p.add_argument("--eval-limit", type=int, default=400)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=2e-5, help="the encoder's learning rate")
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--out", type=Path, default=Path("bench_head_lr.jsonl"))
    p.add_argument("--table", action="store_true", help="print the tables of --out and exit")
    args = p.parse_args(argv)
    rows = [json.loads(x) for x in args.out.read_text().splitlines()] if args.out.is_file() else []
    if args.table:
        print(table(rows))
        return 0
    torch.set_num_threads(1)
    fields = ("part", "task", "head", "head_lr", "warmup_ratio", "targets")
    done = {tuple(r[f] for f in fields) for r in rows}
    todo = [k for k in planned(args.parts.split(",")) if tuple(k[f] for f in fields) not in done]
    data = load_data({k["task"] for k in todo}, args)
    for i, key in enumerate(todo):
        rec = run_one(data, key, args)
        with args.out.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        rows.append(rec)
        print(f"[{i + 1}/{len(todo)}] {json.dumps(rec)}", file=sys.stderr, flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
