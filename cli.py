"""probekit command line: parses arguments, calls the package, prints.

Each verb has a ``_add_<verb>(sub)`` function that declares its arguments and sets
``func`` to a ``_cmd_<verb>(args)`` function; :func:`main` wires them together. User errors
(:class:`probekit.errors.ProbekitError`) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from probekit.errors import ProbekitError


def _add_common_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default="demo", help="GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli, ax), "
                   "GLUE directory name (SST-2, ...), or demo (default; built in, offline)")
    p.add_argument("--split", default="train", help="train, dev (= validation), test; MNLI: dev_matched, dev_mismatched")
    p.add_argument("--glue-dir", help="local GLUE directory in the download-script layout (glue_data/)")
    p.add_argument("--data", help="your own CSV/TSV/JSONL file instead of GLUE")
    p.add_argument("--text-col", help="text column of --data")
    p.add_argument("--pair-col", help="second-text column of --data (sentence pairs)")
    p.add_argument("--label-col", help="label column of --data")
    p.add_argument("--limit", type=int, help="only the first N examples of the split")


# ---------------------------------------------------------------------------------- extract
def _add_extract(sub) -> None:
    p = sub.add_parser("extract", help="run an encoder over a dataset and cache every layer's vectors (HDF5)")
    p.add_argument("--model", default="minilm", help="minilm (embedded default), a Hugging Face id, or a local path")
    _add_common_data(p)
    p.add_argument("--out", required=True, help="output cache file (.h5)")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"], help="storage dtype of the vectors")
    p.add_argument("--compute-dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="dtype of the forward pass (bfloat16 is faster on GPUs; hidden states then differ by ~1%%)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--no-tokens", action="store_true", help="store only the pooled sentence-level views")
    p.add_argument("--resume", action="store_true", help="continue an interrupted extraction (FILE.h5.partial)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing complete cache")
    p.add_argument("--shard", help="i/n: extract only the i-th of n parts (merge them with `probekit merge`)")
    p.set_defaults(func=_cmd_extract)


def _load_data(args):
    from probekit.tasks import load_task

    return load_task(args.task, args.split, glue_dir=args.glue_dir, data=args.data, text_col=args.text_col,
                     pair_col=args.pair_col, label_col=args.label_col, limit=args.limit)


def _cmd_extract(args) -> int:
    from probekit.extract import extract
    from probekit.models import load_encoder

    data = _load_data(args)
    lm = load_encoder(args.model, device=args.device, dtype=args.compute_dtype)
    print(f"extracting {len(data)} examples of {data.task.name}/{data.split} with {args.model} "
          f"({lm.n_layers} hidden states x {lm.hidden_size}) on {lm.device}")
    rep = extract(lm, data, args.out, batch_size=args.batch_size, max_length=args.max_length,
                  store_tokens=not args.no_tokens, storage_dtype=args.dtype, resume=args.resume,
                  overwrite=args.overwrite, shard=args.shard)
    if rep.n_truncated:
        print(f"note: {rep.n_truncated} of {rep.n_examples} examples were longer than {args.max_length} tokens "
              "and were truncated")
    resumed = f" (resumed at example {rep.resumed_from})" if rep.resumed_from else ""
    print(f"wrote {rep.path}: {rep.n_examples} examples, {rep.n_tokens} tokens in {rep.elapsed_s:.1f} s "
          f"({rep.tokens_per_s:,.0f} tokens/s){resumed}")
    return 0


def _add_info(sub) -> None:
    p = sub.add_parser("info", help="schema, shapes, sizes and provenance of a cache file")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.set_defaults(func=_cmd_info)


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return str(n)


def _cmd_info(args) -> int:
    from probekit.cache import describe

    d = describe(args.file)
    if args.json:
        print(json.dumps(d, indent=2, default=str))
        return 0
    m = d["meta"]
    state = "complete" if m.get("complete") else f"PARTIAL ({m.get('n_done')} of {m.get('n_examples')} examples)"
    print(f"{d['path']}  {_fmt_bytes(d['file_bytes'])}  {state}")
    print(f"  schema        {m.get('schema')} v{m.get('schema_version')}")
    print(f"  model         {m.get('model')} ({m.get('model_type')}, weights {m.get('model_hash')}, "
          f"compute {m.get('compute_dtype')})")
    print(f"  task/split    {m.get('task')}/{m.get('split')}  fields {m.get('text_fields')}  "
          f"labels {m.get('label_names') or 'regression'}  metrics {m.get('metrics')}")
    print(f"  examples      {m.get('n_examples')}  layers {m.get('n_layers')} (0 = embeddings)  "
          f"hidden {m.get('hidden_size')}  storage {m.get('storage_dtype')}  max_length {m.get('max_length')} "
          f"(truncated {m.get('n_truncated')})")
    if m.get("shard"):
        print(f"  shard         {m.get('shard')}")
    print(f"  source        {m.get('source')}  data hash {str(m.get('data_hash'))[:16]}")
    print(f"  made          {m.get('created')} by probekit {m.get('probekit_version')}, torch "
          f"{m.get('torch_version')}, transformers {m.get('transformers_version')} on {m.get('device')}")
    print("  datasets:")
    for name, ds in sorted(d["datasets"].items()):
        print(f"    {name:<22} {str(tuple(ds['shape'])):<22} {ds['dtype']:<8} chunks {str(tuple(ds['chunks'])):<16} "
              f"{_fmt_bytes(ds['bytes'])}")
    return 0


def _add_merge(sub) -> None:
    p = sub.add_parser("merge", help="build one cache from the shards of a sharded extraction")
    p.add_argument("shards", nargs="+", help="shard caches (all of 0..n-1)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_cmd_merge)


def _cmd_merge(args) -> int:
    from probekit.cache import merge_shards

    path = merge_shards(args.shards, args.out)
    print(f"merged {len(args.shards)} shards into {path}")
    return 0


# ---------------------------------------------------------------------------------- probe

# ---------------------------------------------------------------------------------- search

# ---------------------------------------------------------------------------------- finetune


_REGISTRARS: list = [_add_extract, _add_info, _add_merge]  # one per verb, in --help order


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="probekit", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _REGISTRARS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:  # the CLI owns the terminal: no weight-loading bars from transformers
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    try:
        return int(args.func(args) or 0)
    except ProbekitError as e:
        print(f"probekit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"probekit {args.command}: interrupted; partial results are kept and can be resumed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
