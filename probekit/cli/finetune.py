"""``probekit finetune``: fine-tune an encoder through a head that sees only selected
dimensions; the options it shares with ``cross`` and ``multihead`` (:mod:`.multitask`).

Their defaults and choices come from :class:`~probekit.finetune.FinetuneConfig` and
:mod:`probekit.finetune.head_config`, which import no torch (``--help`` stays fast)."""

from __future__ import annotations

import argparse
from typing import Any

from probekit.finetune.head_config import ACTIVATION_NAMES, POOLS

from ._common import (
    SubParsers,
    add_device,
    add_model,
    add_own_files,
    check_output,
    deprecated_alias,
    device,
    own_files,
    positive_int,
)


def add_training_options(p: argparse.ArgumentParser) -> None:
    """Options shared by finetune, cross and multihead (defaults: ``FinetuneConfig``'s)."""
    from probekit.finetune import FinetuneConfig

    d = FinetuneConfig()
    add_model(p)
    p.add_argument(
        "--glue-dir",
        help="local GLUE directory (glue_data/ layout); without it: demo task or the HF hub",
    )
    p.add_argument(
        "--out", required=True, help="run directory (result.json, model/, heads.pt, checkpoint.pt)"
    )
    add_device(p, "auto")
    _add_head_options(p, d)
    _add_optimizer_options(p, d)
    p.add_argument(
        "--limit", type=positive_int, help="only the first N training examples (CPU-sized runs)"
    )
    p.add_argument("--eval-limit", type=positive_int, help="only the first N evaluation examples")
    deprecated_alias(p, "--max-train-examples", "--limit", type=positive_int)
    deprecated_alias(p, "--max-eval-examples", "--eval-limit", type=positive_int)
    p.add_argument(
        "--eval-split", default=d.eval_split, help="split scored after each epoch (default dev)"
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=d.checkpoint_every,
        help="optimizer steps between checkpoints (0: epoch ends only)",
    )
    p.add_argument(
        "--no-resume", action="store_true", help="start afresh even if OUT has a checkpoint"
    )


def _add_head_options(p: argparse.ArgumentParser, d: Any) -> None:
    p.add_argument(
        "--layer",
        type=int,
        default=d.head.layer,
        help="hidden state the head reads (0 = embeddings, -1 = last)",
    )
    p.add_argument(
        "--pool",
        default=d.head.pool,
        choices=POOLS,
        help="token vector fed to the head (max_norm: largest-norm non-special token)",
    )
    deprecated_alias(p, "--token", "--pool", choices=POOLS)
    p.add_argument(
        "--include-cls", action="store_true", help="with --pool max_norm, let [CLS] be chosen too"
    )
    p.add_argument(
        "--freeze",
        default=d.freeze,
        help="none, embeddings, encoder (all pre-trained weights) or bottom-K",
    )
    p.add_argument("--head-layers", type=int, default=d.head.head_layers, choices=[1, 2])
    p.add_argument(
        "--head-hidden", type=int, help="middle width of 2-layer heads (default: the hidden size)"
    )
    p.add_argument("--head-activation", default=d.head.activation, choices=ACTIVATION_NAMES)
    p.add_argument("--head-dropout", type=float, default=d.head.dropout)


def _add_optimizer_options(p: argparse.ArgumentParser, d: Any) -> None:
    p.add_argument("--lr", type=float, default=d.lr, help=f"encoder learning rate (default {d.lr})")
    p.add_argument(
        "--head-lr", type=float, help="head learning rate (default: --lr; tiny heads like 1e-3)"
    )
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    p.add_argument(
        "--grad-accum",
        type=positive_int,
        default=d.grad_accum,
        help="micro-batches per optimizer step",
    )
    p.add_argument("--eval-batch-size", type=positive_int, default=d.eval_batch_size)
    p.add_argument("--epochs", type=positive_int, default=d.epochs)
    p.add_argument("--max-length", type=positive_int, default=d.max_length)
    p.add_argument("--warmup-ratio", type=float, default=d.warmup_ratio)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument(
        "--max-grad-norm", type=float, default=d.max_grad_norm, help="gradient clipping (0: off)"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        help=f"head init, dropout, data order (default {d.seed})",
    )
    p.add_argument(
        "--mixed-precision",
        default=d.mixed_precision,
        choices=["auto", "no", "bf16", "fp16"],
        help="auto: bf16/fp16 on CUDA, off elsewhere",
    )


def training_config(args: argparse.Namespace, dims: Any = "all", **kw: Any) -> Any:
    """The :class:`~probekit.finetune.FinetuneConfig` of the options above (``kw`` added)."""
    from probekit.finetune import FinetuneConfig, HeadConfig

    head = HeadConfig(
        dims=dims,
        layer=args.layer,
        pool=args.pool,
        include_cls=args.include_cls,
        head_layers=args.head_layers,
        hidden=args.head_hidden,
        activation=args.head_activation,
        dropout=args.head_dropout,
    )
    return FinetuneConfig(
        model=args.model,
        head=head,
        freeze=args.freeze,
        lr=args.lr,
        head_lr=args.head_lr,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        eval_batch_size=args.eval_batch_size,
        epochs=args.epochs,
        max_length=args.max_length,
        warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm,
        seed=args.seed,
        mixed_precision=args.mixed_precision,
        limit=args.limit,
        eval_limit=args.eval_limit,
        eval_split=args.eval_split,
        checkpoint_every=args.checkpoint_every,
        **kw,
    )


def fmt_scores(m: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in m.items())


def add_finetune(sub: SubParsers) -> None:
    p = sub.add_parser("finetune")
    p.add_argument(
        "--task",
        help="GLUE task name, or demo (default; built in, offline); with --train-data: "
        "a GLUE task whose label set the files use, else a custom task",
    )
    p.add_argument(
        "--dims", default="all", help="selected head-input dimensions: 'all' or e.g. 3,17 or 0-9"
    )
    add_own_files(p, "fine-tuning")
    add_training_options(p)
    p.set_defaults(func=cmd_finetune)


def _own_files(args: argparse.Namespace) -> tuple[Any, Any]:
    """``(train, eval)`` TaskData from --train-data/--eval-data, or ``(None, None)``."""
    from probekit.tasks import load_own_files

    files = own_files(args, "fine-tuning")
    return (None, None) if files is None else load_own_files(files)


def _report(r: Any) -> list[str]:
    rec = r.record
    head_task = next(iter(rec["heads"]))
    lines = [
        f"  epoch {e['epoch']}: train loss {e['train_loss']:.4f}; "
        f"dev {fmt_scores(e['metrics'][head_task])}"
        for e in rec["epochs"]
    ]
    pc = rec["params"]
    lines.append(
        f"trainable parameters: encoder {pc['encoder_trainable']:,} of {pc['encoder_total']:,}; "
        f"head {sum(h['nominal'] for h in pc['heads'].values()):,} "
        f"({sum(h['effective'] for h in pc['heads'].values()):,} reachable through the "
        "selected dims)"
    )
    lines.append(f"dev: {fmt_scores(r.metrics)}  ({rec['elapsed_s']:.1f} s)")
    lines.append(
        f"wrote {r.result_path} and {r.model_dir}/ "
        f"(probe it: probekit extract --model {r.model_dir} ...)"
    )
    return lines


def cmd_finetune(args: argparse.Namespace) -> int:
    from probekit._io import writer_lock
    from probekit.finetune import finetune

    check_output(args.out, inputs=[args.train_data, args.eval_data, args.model], directory=True)
    train, ev = _own_files(args)
    task = train.task.name if train is not None else (args.task or "demo")
    cfg = training_config(args, task=task, dims=args.dims)
    dev = device(args)
    source = f" ({args.train_data} -> {args.eval_data})" if train is not None else ""
    print(
        f"fine-tuning {args.model} on {task}{source} (dims {args.dims}, layer {args.layer}, "
        f"pool {args.pool}, freeze {args.freeze}, {args.head_layers}-layer head) on {dev}"
    )
    with writer_lock(args.out):  # a second run into the same --out is told who holds it
        r = finetune(
            cfg,
            device=dev,
            out_dir=args.out,
            glue_dir=args.glue_dir,
            train_data=train,
            eval_data=ev,
            resume=not args.no_resume,
        )
    print("\n".join(_report(r)))
    return 0
