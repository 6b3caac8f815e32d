"""Extraction speed on the embedded model, as ratios against baselines run in this process.

Measures, over the same examples (SST-2 dev from ../shared/glue when present, else the demo
task):

* probekit's extraction to HDF5 (length-bucketed batches, every layer, token level + pooled),
  with the background writer (the default: writing overlaps the next window's forward pass)
  and without it (``background_write=False``);
* (b) the bare forward pass with the same batches, writing nothing;
* the bare forward pass in source order (no length sorting);
* (a) an older toolkit's extraction itself: NeuroX 1.0.9's ``extract_representations`` (one
  sentence per forward pass, one HDF5 dataset per sentence), when ``neurox`` is importable
  (``pip install --no-deps neurox==1.0.9``: its exact pins, torch 1.8 among them, cannot be
  installed next to a current stack, and its extraction code does not need them);
* (a') a lean one-sentence-per-pass loop (fast tokenizer, inference mode, each sentence
  written as its own HDF5 dataset), the strongest form of that design, and the same loop
  writing nothing;
* probekit's extraction with bfloat16 compute (opt-in ``--compute-dtype bfloat16``), and how
  far its hidden states are from float32;
* how fast this machine gives a process fresh memory (the page cache of a new file and the
  window buffer are fresh memory), which bounds the cost of writing;
* this machine's float32 matrix-multiply rate (torch.mm of MiniLM-shaped and square
  matrices), and the fraction of it that the forward pass reaches.

Usage: python benchmarks/bench_extract.py [--quick] [--glue-dir DIR] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probekit.extract import extract, forward_batch
from probekit.hardware import cpu_capability, cpu_dtype_speed
from probekit.models import DEFAULT_MODEL, load_encoder
from probekit.tasks import load_demo, load_task
from probekit.tokenize import encode


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
            forward_batch(lm, enc, order[a : a + batch_size])
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


def load_neurox() -> tuple[Any, Any] | None:
    """NeuroX 1.0.9's extractor module and its (model, tokenizer) for the embedded model, or
    None when neurox is not installed."""
    try:
        from neurox.data.extraction import transformers_extractor as te
    except ImportError:
        return None
    from probekit.models import resolve_model_path

    with contextlib.redirect_stdout(io.StringIO()):
        return te, te.get_model_and_tokenizer(str(resolve_model_path(DEFAULT_MODEL)))


def neurox_loop(neurox: tuple[Any, Any], texts: list[str], out: Path) -> float:
    """NeuroX's own ``extract_representations`` over ``texts`` with the model ``neurox`` holds
    (loading excluded). Its per-sentence prints go to a string buffer, not a terminal."""
    te, model_and_tokenizer = neurox
    corpus = out.with_suffix(".txt")
    corpus.write_text("\n".join(" ".join(t.split()) for t in texts) + "\n")
    load = te.get_model_and_tokenizer
    te.get_model_and_tokenizer = lambda *a, **k: model_and_tokenizer
    try:
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            te.extract_representations(
                "minilm",
                str(corpus),
                str(out),
                device="cpu",
                aggregation="last",
                output_type="hdf5",
            )
        return time.perf_counter() - t0
    finally:
        te.get_model_and_tokenizer = load


def fresh_memory_gbs(mib: int = 256) -> float:
    """GB/s at which this process can touch memory it has not used before (a new file's page
    cache and a new buffer are such memory). On a VM whose balloon reports free pages to the
    host (Firecracker here), this is far below the memory bandwidth."""
    t0 = time.perf_counter()
    a = np.ones(mib * 2**20 // 8)
    dt = time.perf_counter() - t0
    del a
    return mib * 2**20 / dt / 1e9


def bf16_deviation(lm, lm16, enc, rows: np.ndarray) -> float:
    """Largest, over layers, relative L2 distance of bfloat16 hidden states from float32."""
    with torch.inference_mode():
        h32, att, _ = forward_batch(lm, enc, rows)
        h16, _, _ = forward_batch(lm16, enc, rows)
    m = att[:, :, None, None]
    diff = ((h16.float() - h32) * m).pow(2).sum(dim=(0, 1, 3)).sqrt()
    ref = (h32 * m).pow(2).sum(dim=(0, 1, 3)).sqrt()
    return float((diff / ref).max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--glue-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "glue")
    )
    ap.add_argument("--quick", action="store_true", help="200 examples instead of all")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds; medians are reported"
    )
    args = ap.parse_args()

    fresh = fresh_memory_gbs()  # first, before this process has freed anything
    lm = load_encoder(DEFAULT_MODEL, device="cpu")
    lm16 = load_encoder(DEFAULT_MODEL, device="cpu", dtype="bfloat16")
    if (Path(args.glue_dir) / "SST-2" / "dev.tsv").is_file():
        data = load_task("sst2", "dev", glue_dir=args.glue_dir)
    else:
        data = load_demo("train")
    if args.quick:
        data = data.head(200)
    enc = encode(lm.tokenizer, data, args.max_length)
    n_tok = int(enc.lengths.sum())
    bf = cpu_dtype_speed("bfloat16")
    print(
        f"CPU kernels: {cpu_capability()}; bfloat16 probe matmul {bf.ratio:.2f}x the time "
        f"of float32 ({'slower: extraction warns' if bf.slower else 'not slower'})"
    )
    print(
        f"data: {data.source}, {len(data)} examples, {n_tok} tokens "
        f"(mean length {enc.lengths.mean():.1f}); "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores"
    )

    t_hash = time.perf_counter()
    _ = lm.weights_hash  # once per model (provenance); timed apart from the per-token work
    t_hash = time.perf_counter() - t_hash
    sorted_order = np.argsort(enc.lengths, kind="stable")
    bare_forward(lm, enc, sorted_order[:64], args.batch_size)  # warm-up
    sub = data.head(min(len(data), 300))
    sub_tok = int(enc.lengths[: len(sub)].sum())
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as d:

        def ext(i: int, tokens: bool, model=lm, background: bool = True) -> float:
            path = Path(d) / f"bench-{tokens}-{model.dtype}-{background}-{i}.h5"
            t = extract(
                model,
                data,
                path,
                batch_size=args.batch_size,
                max_length=args.max_length,
                progress=False,
                store_tokens=tokens,
                background_write=background,
            ).elapsed_s
            if i > 0:
                path.unlink()  # keep the page cache of the first round's file only
            return t

        variants = {
            "bare forward, length-sorted (b)": lambda i: bare_forward(
                lm, enc, sorted_order, args.batch_size
            ),
            "bare forward, source order": lambda i: bare_forward(
                lm, enc, np.arange(len(data)), args.batch_size
            ),
            "probekit extract -> HDF5 (tokens + pooled)": lambda i: ext(i, True),
            "  same, background writer off": lambda i: ext(i, True, background=False),
            "probekit extract -> HDF5 (pooled only)": lambda i: ext(i, False),
            "  same, background writer off ": lambda i: ext(i, False, background=False),
            "probekit extract, bfloat16 compute (opt-in)": lambda i: ext(i, True, lm16),
            "(a') lean loop, one sentence per pass + HDF5 each": lambda i: (
                one_by_one(lm, sub, args.max_length, Path(d) / f"lean-{i}.h5") * n_tok / sub_tok
            ),
            "lean loop, one sentence per pass, no writing": lambda i: (
                one_by_one(lm, sub, args.max_length) * n_tok / sub_tok
            ),
        }
        neurox = (
            load_neurox() if sub.pairs is None else None
        )  # NeuroX extracts single sentences only
        if neurox is not None:
            variants["(a) NeuroX 1.0.9 extract_representations"] = lambda i: (
                neurox_loop(neurox, sub.texts, Path(d) / f"neurox-{i}.hdf5") * n_tok / sub_tok
            )
        for i in range(args.rounds):  # interleaved rounds; the median of each variant is reported
            for name, fn in variants.items():
                times.setdefault(name, []).append(fn(i))
        size_mb = (Path(d) / f"bench-True-{lm.dtype}-True-0.h5").stat().st_size / 2**20
    dev_bf16 = bf16_deviation(
        lm, lm16, enc, sorted_order[len(data) // 2 : len(data) // 2 + args.batch_size]
    )
    rows = {name: float(np.median(ts)) for name, ts in times.items()}
    t_bare = rows["bare forward, length-sorted (b)"]
    t_lean = rows["(a') lean loop, one sentence per pass + HDF5 each"]
    t_neurox = rows.get("(a) NeuroX 1.0.9 extract_representations")

    fpt = flops_per_token(lm.model.config, float(enc.lengths.mean()))
    peak_shaped = matmul_gflops(
        args.batch_size * int(enc.lengths.mean()), lm.hidden_size, lm.model.config.intermediate_size
    )
    peak_square = matmul_gflops(2048, 2048, 2048)
    peak = max(peak_shaped, peak_square)
    print(
        f"float32 matmul rate: {peak_square:.0f} GFLOP/s (2048^3), "
        f"{peak_shaped:.0f} GFLOP/s (MiniLM FFN shape); "
        f"forward cost {fpt / 1e6:.1f} MFLOP/token"
    )
    print(f"\nmedians of {args.rounds} interleaved rounds")
    print(f"{'variant':<50} {'tokens/s':>10} {'GFLOP/s':>8} {'% peak':>7} {'vs extract':>10}")
    t_ext = rows["probekit extract -> HDF5 (tokens + pooled)"]
    for name, t in rows.items():
        tps = n_tok / t
        print(
            f"{name:<50} {tps:>10,.0f} {tps * fpt / 1e9:>8.1f} "
            f"{100 * tps * fpt / 1e9 / peak:>6.0f}% "
            f"{t / t_ext:>9.2f}x"
        )
    t_off = rows["  same, background writer off"]
    t_pool, t_pool_off = (
        rows["probekit extract -> HDF5 (pooled only)"],
        rows["  same, background writer off "],
    )
    print(
        "\nwriting overhead over the bare sorted forward pass, tokens + pooled: "
        f"{100 * (t_ext / t_bare - 1):+.1f}% with the background writer, "
        f"{100 * (t_off / t_bare - 1):+.1f}% without (target <= +15%); pooled only: "
        f"{100 * (t_pool / t_bare - 1):+.1f}% / {100 * (t_pool_off / t_bare - 1):+.1f}%"
    )
    fresh_s = size_mb * 2**20 / 1e9 / fresh
    print(
        f"fresh memory: {fresh:.2f} GB/s; the new file alone ({size_mb:.0f} MiB) "
        f"then costs {fresh_s:.2f} s "
        f"= {100 * fresh_s / t_bare:.0f}% of the bare forward pass"
    )
    if t_neurox is not None:
        print(
            f"extract speed-up over (a) NeuroX 1.0.9 itself: {t_neurox / t_ext:.1f}x (target >= 5x)"
        )
    else:
        print("(a) NeuroX not installed: pip install --no-deps neurox==1.0.9 to measure it")
    print(
        "extract speed-up over (a') the lean one-sentence loop with per-sentence HDF5 "
        f"datasets: {t_lean / t_ext:.1f}x; over the same loop writing nothing: "
        f"{rows['lean loop, one sentence per pass, no writing'] / t_ext:.1f}x; "
        f"the bare batched forward pass is {t_lean / t_bare:.1f}x that loop"
    )
    t16 = rows["probekit extract, bfloat16 compute (opt-in)"]
    print(
        f"bfloat16 compute (opt-in): {t_ext / t16:.1f}x the float32 extraction, "
        f"{t_lean / t16:.1f}x (a')"
        + (f", {t_neurox / t16:.1f}x (a)" if t_neurox is not None else "")
        + f"; hidden states within {100 * dev_bf16:.1f}% (relative L2, worst layer) of float32"
    )
    print(f"weight hash for provenance, once per model: {t_hash:.2f} s (not in the figures above)")
    print(
        f"forward pass at {100 * n_tok / t_bare * fpt / 1e9 / peak:.0f}% "
        "of the measured matmul rate (target >= 50%)"
    )
    print(
        f"cache size: {size_mb:.1f} MiB for {n_tok} tokens x {lm.n_layers} layers "
        f"x {lm.hidden_size} (float16)"
    )
    if enc.n_truncated:
        print(f"note: {enc.n_truncated} examples truncated at {args.max_length} tokens")


if __name__ == "__main__":
    main()
