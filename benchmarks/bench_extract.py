"""Extraction speed on the embedded model, as ratios against baselines run in this process.

Measures, over the same examples (SST-2 dev from ../shared/glue when present, else the demo
task):

* probekit's extraction to HDF5 (length-bucketed batches, every layer, token level + pooled);
* (b) the bare forward pass with the same batches, writing nothing;
* the bare forward pass in source order (no length sorting);
* (a) one sentence per forward pass, each written as its own HDF5 dataset, as older toolkits
  (NeuroX) do it, and the same loop writing nothing;
* this machine's float32 matrix-multiply rate (torch.mm of MiniLM-shaped and square
  matrices), and the fraction of it that the forward pass reaches.

Usage: python benchmarks/bench_extract.py [--quick] [--glue-dir DIR] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probekit.extract import encode, extract, forward_batch  # noqa: E402
from probekit.models import load_encoder  # noqa: E402
from probekit.tasks import load_demo, load_task  # noqa: E402


def matmul_gflops(m: int, k: int, n: int, seconds: float = 2.0) -> float:
    a, b = torch.randn(m, k), torch.randn(k, n)
    torch.mm(a, b)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b)
        reps += 1
    return 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9


def flops_per_token(cfg, mean_len: float) -> float:
    H, I, L = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    linear = 2 * (4 * H * H + 2 * H * I)  # QKV + output projection, and the two FFN matrices
    attention = 2 * 2 * mean_len * H  # scores and weighted sum
    return L * (linear + attention)


def bare_forward(lm, enc, order: np.ndarray, batch_size: int) -> float:
    t0 = time.perf_counter()
    with torch.inference_mode():
        for a in range(0, len(order), batch_size):
            forward_batch(lm, enc, order[a:a + batch_size])
    return time.perf_counter() - t0


def one_by_one(lm, data, max_length: int, h5_path: Path | None = None) -> float:
    """One sentence per forward pass; with ``h5_path``, each sentence's layers written as its
    own float32 HDF5 dataset, as NeuroX does (keyed by row here, not by text)."""
    f = h5py.File(h5_path, "w") if h5_path is not None else None
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(len(data)):
            args = (data.texts[i], data.pairs[i]) if data.pairs else (data.texts[i],)
            x = lm.tokenizer(*args, return_tensors="pt", truncation=True, max_length=max_length)
            out = lm.model(**x, output_hidden_states=True)
            arr = np.stack([h[0].numpy() for h in out.hidden_states])  # [n_layers, t, H]
            if f is not None:
                f.create_dataset(str(i), data=arr)
    if f is not None:
        f.close()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--glue-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "glue"))
    ap.add_argument("--quick", action="store_true", help="200 examples instead of all")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    args = ap.parse_args()

    lm = load_encoder("minilm", device="cpu")
    if (Path(args.glue_dir) / "SST-2" / "dev.tsv").is_file():
        data = load_task("sst2", "dev", glue_dir=args.glue_dir)
    else:
        data = load_demo("train")
    if args.quick:
        data = data.head(200)
    enc = encode(lm.tokenizer, data, args.max_length)
    n_tok = int(enc.lengths.sum())
    print(f"data: {data.source}, {len(data)} examples, {n_tok} tokens (mean length {enc.lengths.mean():.1f}); "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores")

    t_hash = time.perf_counter()
    lm.weights_hash  # once per model (provenance); timed apart from the per-token work
    t_hash = time.perf_counter() - t_hash
    sorted_order = np.argsort(enc.lengths, kind="stable")
    bare_forward(lm, enc, sorted_order[:64], args.batch_size)  # warm-up
    sub = data.head(min(len(data), 300))
    sub_tok = int(enc.lengths[: len(sub)].sum())
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as d:

        def ext(i: int, tokens: bool) -> float:
            return extract(lm, data, Path(d) / f"bench-{tokens}-{i}.h5", batch_size=args.batch_size,
                           max_length=args.max_length, progress=False, store_tokens=tokens).elapsed_s

        variants = {
            "bare forward, length-sorted (b)": lambda i: bare_forward(lm, enc, sorted_order, args.batch_size),
            "bare forward, source order": lambda i: bare_forward(lm, enc, np.arange(len(data)), args.batch_size),
            "probekit extract -> HDF5 (tokens + pooled)": lambda i: ext(i, True),
            "probekit extract -> HDF5 (pooled only)": lambda i: ext(i, False),
            "(a) one sentence per pass + HDF5 dataset each":
                lambda i: one_by_one(lm, sub, args.max_length, Path(d) / f"neurox-{i}.h5") * n_tok / sub_tok,
            "one sentence per pass, no writing": lambda i: one_by_one(lm, sub, args.max_length) * n_tok / sub_tok,
        }
        for i in range(args.rounds):  # interleaved rounds; the median of each variant is reported
            for name, fn in variants.items():
                times.setdefault(name, []).append(fn(i))
        size_mb = (Path(d) / "bench-True-0.h5").stat().st_size / 2**20
    rows = {name: float(np.median(ts)) for name, ts in times.items()}
    t_bare = rows["bare forward, length-sorted (b)"]
    t_one = rows["(a) one sentence per pass + HDF5 dataset each"]

    fpt = flops_per_token(lm.model.config, float(enc.lengths.mean()))
    peak_shaped = matmul_gflops(args.batch_size * int(enc.lengths.mean()), lm.hidden_size, lm.model.config.intermediate_size)
    peak_square = matmul_gflops(2048, 2048, 2048)
    peak = max(peak_shaped, peak_square)
    print(f"float32 matmul rate: {peak_square:.0f} GFLOP/s (2048^3), {peak_shaped:.0f} GFLOP/s (MiniLM FFN shape); "
          f"forward cost {fpt / 1e6:.1f} MFLOP/token")
    print(f"\nmedians of {args.rounds} interleaved rounds")
    print(f"{'variant':<46} {'tokens/s':>10} {'GFLOP/s':>8} {'% peak':>7} {'vs extract':>10}")
    t_ext = rows["probekit extract -> HDF5 (tokens + pooled)"]
    for name, t in rows.items():
        tps = n_tok / t
        print(f"{name:<46} {tps:>10,.0f} {tps * fpt / 1e9:>8.1f} {100 * tps * fpt / 1e9 / peak:>6.0f}% "
              f"{t / t_ext:>9.2f}x")
    print(f"\nwriting overhead over the bare sorted forward pass: {100 * (t_ext / t_bare - 1):+.1f}% (target <= +15%)")
    print(f"extract speed-up over one sentence per pass with per-sentence HDF5 datasets (a): {t_one / t_ext:.1f}x "
          f"(target >= 5x); over the same loop writing nothing: "
          f"{rows['one sentence per pass, no writing'] / t_ext:.1f}x")
    print(f"weight hash for provenance, once per model: {t_hash:.2f} s (not in the figures above)")
    print(f"forward pass at {100 * n_tok / t_bare * fpt / 1e9 / peak:.0f}% of the measured matmul rate (target >= 50%)")
    print(f"cache size: {size_mb:.1f} MiB for {n_tok} tokens x {lm.n_layers} layers x {lm.hidden_size} (float16)")
    if enc.n_truncated:
        print(f"note: {enc.n_truncated} examples truncated at {args.max_length} tokens")


if __name__ == "__main__":
    main()
