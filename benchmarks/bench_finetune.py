"""Fine-tuning speed on the embedded model, against a plain Hugging Face training step.

Measures training examples per second, over the same examples and the same batches
(SST-2 train from ../shared/glue when present, else the demo task), of:

* probekit's training loop (:func:`probekit.finetune.finetune`, one epoch; only the
  training loop is timed, as recorded in ``result.json``) with the full head (``dims all``);
* the same with a 2-dimension head (``dims 3,17``, head lr 1e-2);
* the baseline: ``AutoModelForSequenceClassification`` with a plain PyTorch loop
  (``DataCollatorWithPadding``, forward with labels, backward, clip, AdamW, linear schedule),
  fed the identical batches.

The three are interleaved (order rotated every round) for ``--rounds`` rounds and the median
and the best (least disturbed by other processes) of each is reported, with probekit /
baseline ratios (>= 1 means probekit is no slower).

Usage: python benchmarks/bench_finetune.py [--quick] [--glue-dir DIR] [--examples N]
       [--rounds R] [--batch-size 32] [--max-length 128] [--threads T] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probekit.finetune import FinetuneConfig, HeadConfig, epoch_schedule, finetune
from probekit.models import DEFAULT_MODEL, resolve_device, resolve_model_path
from probekit.tasks import load_demo, load_task

REPO = Path(__file__).resolve().parents[1]


def hf_baseline(data, cfg: FinetuneConfig, device: torch.device) -> float:
    """Examples/s of a plain HF sequence-classification training loop on probekit's batches."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        get_linear_schedule_with_warmup,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    path = resolve_model_path(cfg.model)
    tok = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(cfg.seed)
    model = (
        AutoModelForSequenceClassification.from_pretrained(path, num_labels=2).to(device).train()
    )
    enc = tok(data.texts, truncation=True, max_length=cfg.max_length)
    feats = [
        {
            "input_ids": enc["input_ids"][i],
            "token_type_ids": enc["token_type_ids"][i],
            "attention_mask": enc["attention_mask"][i],
            "labels": int(data.labels[i]),
        }
        for i in range(len(data))
    ]
    collate = DataCollatorWithPadding(tok)
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
    )
    schedule = epoch_schedule([len(data)], cfg.batch_size, cfg.seed, 0, "alternate")
    sched = get_linear_schedule_with_warmup(
        opt, int(cfg.warmup_ratio * len(schedule)), len(schedule)
    )
    t0 = time.perf_counter()
    for step in schedule:
        idx = step[0][1]
        batch = {k: v.to(device) for k, v in collate([feats[i] for i in idx]).items()}
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(data) / (time.perf_counter() - t0)


def probekit_run(train, dev, cfg: FinetuneConfig, device: torch.device, tmp: Path) -> float:
    r = finetune(
        cfg,
        device=device,
        out_dir=tmp,
        train_data=train,
        eval_data=dev,
        resume=False,
        progress=False,
    )
    e = r.record["epochs"][0]
    return e["train_examples"] / e["train_seconds"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="64 examples, 1 round")
    ap.add_argument("--glue-dir", default=str(REPO.parent / "shared" / "glue"))
    ap.add_argument("--examples", type=int, default=320)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.quick:
        args.examples, args.rounds = 64, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    device = resolve_device(args.device)
    if (Path(args.glue_dir) / "SST-2" / "train.tsv").is_file():
        train = load_task("sst2", "train", glue_dir=args.glue_dir, limit=args.examples)
        dev = load_task("sst2", "dev", glue_dir=args.glue_dir, limit=8)
        source = "SST-2 train"
    else:
        train, dev = load_demo("train", limit=args.examples), load_demo("dev", limit=8)
        source = "demo train"
    base = dict(
        model=DEFAULT_MODEL,
        task=train.task.name,
        epochs=1,
        batch_size=args.batch_size,
        max_length=args.max_length,
        checkpoint_every=0,
        mixed_precision="no",
    )  # fp32, as the baseline
    configs = {
        "probekit, full head": FinetuneConfig(head=HeadConfig(dims="all"), **base),
        "probekit, 2-dim head": FinetuneConfig(head=HeadConfig(dims="3,17"), head_lr=1e-2, **base),
    }
    hf_cfg = configs["probekit, full head"]
    rates: dict[str, list[float]] = {
        k: [] for k in [*configs, "HF AutoModelForSequenceClassification"]
    }
    print(
        f"{len(train)} {source} examples, batch {args.batch_size}, max_length {args.max_length}, "
        f"device {device}, torch threads {torch.get_num_threads()}, {args.rounds} round(s)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        names = list(rates)
        for r in range(args.rounds):
            for name in names[r % 3 :] + names[: r % 3]:  # rotate the order each round
                if name in configs:
                    rates[name].append(
                        probekit_run(train, dev, configs[name], device, Path(tmp) / f"r{r}")
                    )
                else:
                    rates[name].append(hf_baseline(train, hf_cfg, device))
            print(
                f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rates.items()),
                flush=True,
            )
    med = {k: statistics.median(v) for k, v in rates.items()}
    best = {k: max(v) for k, v in rates.items()}
    key = "HF AutoModelForSequenceClassification"
    print(f"\n{'contender':<40} {'median ex/s':>12} {'vs HF':>7} {'best ex/s':>10} {'vs HF':>7}")
    for k in rates:
        print(
            f"{k:<40} {med[k]:>12.1f} {med[k] / med[key]:>7.2f} "
            f"{best[k]:>10.1f} {best[k] / best[key]:>7.2f}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "rates": rates,
                    "median": med,
                    "best": best,
                    "examples": len(train),
                    "source": source,
                    "threads": torch.get_num_threads(),
                    "device": str(device),
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
