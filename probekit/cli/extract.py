"""``probekit extract``, ``info`` and ``merge``: making and inspecting activation caches."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ._common import (
    SubParsers,
    add_data,
    add_device,
    add_model,
    add_overwrite,
    check_output,
    device,
    load_data,
    positive_int,
)


def add_extract(sub: SubParsers) -> None:
    p = sub.add_parser("extract")
    add_model(p)
    add_data(p)
    p.add_argument("--out", required=True, help="output cache file (.h5)")
    p.add_argument(
        "--max-length",
        type=positive_int,
        default=128,
        help="tokens per example, special tokens included; at most the model's positions",
    )
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument(
        "--dtype",
        default="float16",
        choices=["float16", "float32"],
        help="storage dtype of the vectors",
    )
    p.add_argument(
        "--compute-dtype",
        default="float32",
        choices=["float32", "bfloat16", "float16"],
        help="dtype of the forward pass "
        "(bfloat16 is faster on GPUs; hidden states then differ by ~1%%)",
    )
    add_device(p, "auto")
    p.add_argument(
        "--no-tokens", action="store_true", help="store only the pooled sentence-level views"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted extraction (FILE.h5.partial)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing complete cache")
    p.add_argument(
        "--shard", help="i/n: extract only the i-th of n parts (merge them with `probekit merge`)"
    )
    p.add_argument(
        "--window-tokens",
        type=positive_int,
        help="tokens buffered per write window (default: ~256 MiB of vectors); "
        "an interruption loses at most one window",
    )
    p.add_argument(
        "--no-background-write",
        action="store_true",
        help="write each window in the main thread (default: on a writer thread, overlapping "
        "the forward pass; the file is the same either way)",
    )
    p.set_defaults(func=cmd_extract)


def cmd_extract(args: argparse.Namespace) -> int:
    from probekit._io import writer_lock
    from probekit.extract import extract
    from probekit.models import load_encoder

    check_output(args.out, inputs=[args.data], overwrite=True)  # extract refuses existing itself
    data = load_data(args)
    lm = load_encoder(args.model, device=str(device(args)), dtype=args.compute_dtype)
    print(
        f"extracting {len(data)} examples of {data.task.name}/{data.split} with {args.model} "
        f"({lm.n_layers} hidden states x {lm.hidden_size}) on {lm.device}"
    )
    with writer_lock(args.out):
        rep = extract(
            lm,
            data,
            args.out,
            batch_size=args.batch_size,
            max_length=args.max_length,
            store_tokens=not args.no_tokens,
            storage_dtype=args.dtype,
            resume=args.resume,
            overwrite=args.overwrite,
            shard=args.shard,
            window_tokens=args.window_tokens,
            background_write=not args.no_background_write,
        )
    if rep.n_truncated:
        print(
            f"note: {rep.n_truncated} of {rep.n_examples} examples were longer than "
            f"{args.max_length} tokens and were truncated"
        )
    resumed = f" (resumed at example {rep.resumed_from})" if rep.resumed_from else ""
    print(
        f"wrote {rep.path}: {rep.n_examples} examples, {rep.n_tokens} tokens in "
        f"{rep.elapsed_s:.1f} s ({rep.tokens_per_s:,.0f} tokens/s){resumed}"
    )
    return 0


def add_info(sub: SubParsers) -> None:
    p = sub.add_parser("info")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.set_defaults(func=cmd_info)


def fmt_bytes(n: float) -> str:
    """``117.2 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _info_lines(d: dict[str, Any]) -> list[str]:
    m = d["meta"]
    g = m.get
    state = (
        "complete" if g("complete") else f"PARTIAL ({g('n_done')} of {g('n_examples')} examples)"
    )
    lines = [
        f"{d['path']}  {fmt_bytes(d['file_bytes'])}  {state}",
        f"  schema        {g('schema')} v{g('schema_version')}",
        f"  model         {g('model')} ({g('model_type')}, weights {g('model_hash')}, "
        f"compute {g('compute_dtype')})",
        f"  task/split    {g('task')}/{g('split')}  fields {g('text_fields')}  "
        f"labels {g('label_names') or 'regression'}  metrics {g('metrics')}",
        f"  examples      {g('n_examples')}  layers {g('n_layers')} (0 = embeddings)  "
        f"hidden {g('hidden_size')}  storage {g('storage_dtype')}  "
        f"max_length {g('max_length')} (truncated {g('n_truncated')})",
    ]
    if g("shard"):
        lines.append(f"  shard         {g('shard')}")
    lines += [
        f"  source        {g('source')}  data hash {str(g('data_hash'))[:16]}",
        f"  made          {g('created')} by probekit {g('probekit_version')}, "
        f"torch {g('torch_version')}, transformers {g('transformers_version')} "
        f"on {g('device')}",
        "  datasets:",
    ]
    for name, ds in sorted(d["datasets"].items()):
        lines.append(
            f"    {name:<22} {tuple(ds['shape'])!s:<22} {ds['dtype']:<8} "
            f"chunks {tuple(ds['chunks'])!s:<16} {fmt_bytes(ds['bytes'])}"
        )
    return lines


def cmd_info(args: argparse.Namespace) -> int:
    from probekit.cache import describe

    d = describe(args.file)
    if args.json:
        print(json.dumps(d, indent=2, default=str))
    else:
        print("\n".join(_info_lines(d)))
    return 0


def add_merge(sub: SubParsers) -> None:
    p = sub.add_parser("merge")
    p.add_argument("shards", nargs="+", help="shard caches (all of 0..n-1)")
    p.add_argument("--out", required=True, help="the merged cache (.h5)")
    add_overwrite(p, "--out")
    p.set_defaults(func=cmd_merge)


def cmd_merge(args: argparse.Namespace) -> int:
    from probekit._io import writer_lock
    from probekit.cache import merge_shards

    check_output(args.out, inputs=args.shards, overwrite=args.overwrite)
    with writer_lock(args.out):
        path = merge_shards(args.shards, args.out)
    print(f"merged {len(args.shards)} shards into {path}")
    return 0
