"""A ready GPU check: extraction, parity with the CPU, the probe engine and a fine-tuning
step on one device, in a few minutes and with no download.

Builds a randomly initialised bert-base-sized encoder (12 layers, hidden 768; ``--quick``: 2
layers, hidden 128) with the embedded MiniLM tokenizer in a temporary folder, then
measures and asserts:

* the device's matmul peak (float32 and bfloat16, a short ``torch.mm``);
* extraction tokens/s in float32 and bfloat16 compute, writing the HDF5 cache (token level
  and pooled, background writer on), and its fraction of that dtype's peak;
* hidden states on the device equal the CPU ones (float32, relative L2 per layer);
* the probe engine on the device equals the CPU engine (same pairs, same scores) and its
  probes/s on all pairs of the hidden dims;
* a wide ``C = "auto"`` probe (:func:`probekit.probes.select_C` and
  :func:`probekit.probes.cselect.refit_wide`, the matrix-free Newton-CG) on the device equals
  the CPU one, with the basis kept as one copy and as two (``newton_cg.ONE_COPY_ELEMS``);
* a fine-tuning run (bf16 autocast on CUDA) whose training loss falls, stopped after a few
  steps (``stop_after_steps``) and resumed to the end.

It prints one table and writes a JSON (``--out``); the exit status is 1 when a check fails.

Usage: python benchmarks/gpu_check.py [--device cuda] [--quick] [--out gpu_check.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_extract import flops_per_token

from probekit._io import write_json
from probekit.cache import ActivationCache
from probekit.extract import extract, forward_batch
from probekit.finetune import FinetuneConfig, finetune
from probekit.hardware import cpu_capability
from probekit.models import embedded_model_dir, load_encoder, resolve_device
from probekit.probes import ProbeEngine, cselect, newton_cg, select_C
from probekit.provenance import versions
from probekit.tasks import TaskData, load_demo
from probekit.tokenize import encode

FULL = {"layers": 12, "hidden": 768, "heads": 12, "examples": 1024, "join": 8, "batch": 64}
QUICK = {"layers": 2, "hidden": 128, "heads": 2, "examples": 96, "join": 4, "batch": 16}


def make_model(root: Path, size: dict[str, int]) -> Path:
    """A randomly initialised BERT of ``size`` with the embedded MiniLM tokenizer, saved."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    h = size["hidden"]
    cfg = BertConfig(
        hidden_size=h,
        num_hidden_layers=size["layers"],
        num_attention_heads=size["heads"],
        intermediate_size=4 * h,
        max_position_embeddings=512,
    )
    BertModel(cfg).eval().save_pretrained(root)
    AutoTokenizer.from_pretrained(str(embedded_model_dir())).save_pretrained(root)
    return root


def long_examples(n: int, join: int) -> TaskData:
    """``n`` examples, each ``join`` consecutive demo sentences (labelled by the first)."""
    demo = load_demo("train")
    idx = [(i * join + np.arange(join)) % len(demo) for i in range(n)]
    return dataclasses.replace(
        demo,
        texts=[" ".join(demo.texts[j] for j in ix) for ix in idx],
        labels=demo.labels[[ix[0] for ix in idx]],
        example_index=np.arange(n, dtype=np.int64),
        source=f"gpu_check: {n} examples of {join} demo sentences",
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_tflops(device: torch.device, dtype: torch.dtype, n: int, seconds: float) -> float:
    """TFLOP/s of a square ``torch.mm`` of side ``n`` on ``device``."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    sync(device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b)
        reps += 1
        if reps % 10 == 0:
            sync(device)
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12


def check_extraction(model_dir, device, data, size, root) -> tuple[dict[str, Any], Path]:
    """Tokens/s of float32 and bfloat16 extraction to HDF5 (the float32 cache is kept)."""
    out: dict[str, Any] = {}
    kept = root / "fp32.h5"
    for dt in ("float32", "bfloat16"):
        lm = load_encoder(str(model_dir), device=device, dtype=dt)
        path = root / f"{dt}.h5"
        small = data.subset(np.arange(min(len(data), 2 * size["batch"])))
        extract(lm, small, root / f"warm-{dt}.h5", batch_size=size["batch"], progress=False)
        sync(device)
        rep = extract(lm, data, path, batch_size=size["batch"], progress=False)
        fpt = flops_per_token(lm.model.config, rep.n_tokens / rep.n_examples)
        out[dt] = {
            "tokens_per_s": rep.tokens_per_s,
            "tflops": rep.tokens_per_s * fpt / 1e12,
            "n_tokens": rep.n_tokens,
            "elapsed_s": rep.elapsed_s,
        }
        if dt == "float32":
            path.rename(kept)
        else:
            path.unlink()
    return out, kept


def hidden_parity(model_dir: Path, device: torch.device, data: TaskData) -> float:
    """Largest per-layer relative L2 distance of device from CPU hidden states (float32)."""
    lm_dev = load_encoder(str(model_dir), device=device)
    lm_cpu = load_encoder(str(model_dir), device="cpu")
    enc = encode(lm_cpu.tokenizer, data, 128)
    rows = np.arange(min(8, len(data)))
    with torch.inference_mode():
        h_dev, att, _ = forward_batch(lm_dev, enc, rows)
        h_cpu, _, _ = forward_batch(lm_cpu, enc, rows)
    m = att.cpu()[:, :, None, None]
    diff = ((h_dev.cpu().float() - h_cpu) * m).pow(2).sum(dim=(0, 1, 3)).sqrt()
    ref = (h_cpu * m).pow(2).sum(dim=(0, 1, 3)).sqrt()
    return float((diff / ref).max())


def check_engine(cache: Path, device: torch.device, n_parity: int) -> dict[str, Any]:
    """All pairs of the last layer's ``cls`` dims on ``device``; the first ``n_parity``
    pairs again on the CPU engine."""
    with ActivationCache(cache) as c:
        X, y = c.features(-1, "cls"), c.labels
    half = len(y) // 2
    D = X.shape[1]
    pairs = np.stack(np.triu_indices(D, k=1), axis=1)
    args = (X[:half], y[:half], X[half:], y[half:])
    eng = ProbeEngine(device=device, compile=False)
    eng.fit_score(*args, pairs[:256])  # warm-up
    sync(device)
    t0 = time.perf_counter()
    dev = eng.fit_score(*args, pairs)
    sync(device)
    dt = time.perf_counter() - t0
    cpu = ProbeEngine(device="cpu", compile=False).fit_score(*args, pairs[:n_parity])
    loss_diff = np.abs(dev["loss"][:n_parity] - cpu["loss"]) / np.maximum(cpu["loss"], 1e-12)
    agree = float(np.mean(dev["accuracy"][:n_parity] == cpu["accuracy"]))
    return {
        "dims": D,
        "pairs": len(pairs),
        "n_train": half,
        "elapsed_s": dt,
        "probes_per_s": len(pairs) / dt,
        "parity_pairs": n_parity,
        "max_rel_loss_diff": float(loss_diff.max()),
        "accuracy_agreement": agree,
    }


def check_wide_cauto(cache: Path, device: torch.device) -> dict[str, Any]:
    """The ``C = "auto"`` probe of all of the first dims of the last layer's ``cls`` vectors
    (choice and refit on the first half, eval on the second) on ``device``, with the basis
    as one copy and as two, and on the CPU."""
    with ActivationCache(cache) as c:
        X, y = c.features(-1, "cls"), c.labels
    half = len(y) // 2
    # at most half as many dims as training examples (the eigenbasis of X^T X; --quick: 64
    # dims over 48 examples, the basis of X X^T)
    full = np.arange(max(cselect.WIDE_K, min(X.shape[1], half // 2)))
    X = X[:, full]
    out: dict[str, Any] = {"dims": len(full), "n_train": half}
    keep = newton_cg.ONE_COPY_ELEMS
    for name, dev, one_copy in (
        ("cpu", "cpu", keep),
        ("device", device, 2**62),
        ("device two copies", device, 0),
    ):
        newton_cg.ONE_COPY_ELEMS = one_copy
        try:
            eng = ProbeEngine(device=dev, compile=False)
            sync(torch.device(dev))
            t0 = time.perf_counter()
            sel = select_C(eng, X[:half], y[:half], full)
            sc = cselect.refit_wide(
                eng, X[:half], y[:half], X[half:], y[half:], full, sel.C, selection=sel
            )
            sync(torch.device(dev))
            out[name] = {
                "C": sel.C,
                "accuracy": float(sc["accuracy"][0]),
                "loss": float(sc["loss"][0]),
                "elapsed_s": time.perf_counter() - t0,
            }
        finally:
            newton_cg.ONE_COPY_ELEMS = keep
    ref = out["cpu"]
    out["max_rel_loss_diff"] = max(
        abs(out[k]["loss"] - ref["loss"]) / max(ref["loss"], 1e-12)
        for k in ("device", "device two copies")
    )
    out["same_C"] = all(out[k]["C"] == ref["C"] for k in ("device", "device two copies"))
    return out


def check_finetune(model_dir: Path, device: torch.device, root: Path, quick: bool) -> dict:
    """Fine-tune (bf16 autocast on CUDA), stop halfway through the first epoch, resume to
    the end."""
    limit, batch = (64, 16) if quick else (256, 32)
    cfg = FinetuneConfig(
        model=str(model_dir),
        task="demo",
        epochs=4,
        batch_size=batch,
        limit=limit,
        eval_limit=32,
        max_length=64,
        lr=5e-4 if quick else 1e-4,
        head_lr=2e-3,
        warmup_ratio=0.0,
        mixed_precision="bf16" if device.type == "cuda" else "no",
        checkpoint_every=2,
    )
    kw = {"device": device, "out_dir": root / "ft", "progress": False}
    t0 = time.perf_counter()
    part = finetune(cfg, stop_after_steps=limit // batch // 2, **kw)
    done = finetune(cfg, **kw)
    epochs = done.record["epochs"]
    losses = [e["train_loss"] for e in epochs]
    return {
        "mixed_precision": done.record["mixed_precision"],
        "stopped_incomplete": not part.complete,
        "resumed_complete": done.complete,
        "resumed_at_step": next(
            (e["resumed_at_step"] for e in epochs if "resumed_at_step" in e), None
        ),
        "train_loss": losses,
        "elapsed_s": time.perf_counter() - t0,
    }


def run(device: torch.device, quick: bool) -> dict[str, Any]:
    """Every measurement and check; ``{"checks": {name: bool}, ...}``."""
    size = QUICK if quick else FULL
    res: dict[str, Any] = {"kind": "gpu_check", "device": str(device), "quick": quick}
    if device.type == "cuda":
        res["device_name"] = torch.cuda.get_device_name(device)
    res["cpu_capability"] = cpu_capability()
    res["versions"] = versions()
    n_mm, secs = (1024, 0.3) if quick or device.type == "cpu" else (8192, 1.0)
    res["peak_tflops"] = {
        dt: peak_tflops(device, getattr(torch, dt), n_mm, secs) for dt in ("float32", "bfloat16")
    }
    checks: dict[str, bool] = {}
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        model_dir = make_model(root / "model", size)
        data = long_examples(size["examples"], size["join"])
        res["extract"], cache = check_extraction(model_dir, device, data, size, root)
        for dt, r in res["extract"].items():
            r["fraction_of_peak"] = r["tflops"] / res["peak_tflops"][dt]
            checks[f"extract {dt} runs"] = r["tokens_per_s"] > 0
        if device.type == "cuda":
            checks["bf16 extraction faster than fp32"] = (
                res["extract"]["bfloat16"]["tokens_per_s"]
                > res["extract"]["float32"]["tokens_per_s"]
            )
        res["hidden_rel_l2"] = hidden_parity(model_dir, device, data)
        checks["hidden states equal CPU (rel L2 < 1e-3)"] = res["hidden_rel_l2"] < 1e-3
        res["engine"] = check_engine(cache, device, 512 if quick else 4096)
        checks["engine equals CPU (loss rel diff < 1e-3)"] = (
            res["engine"]["max_rel_loss_diff"] < 1e-3
        )
        checks["engine accuracy agrees >= 99%"] = res["engine"]["accuracy_agreement"] >= 0.99
        res["wide_cauto"] = wc = check_wide_cauto(cache, device)
        checks["wide C=auto equals CPU (same C, loss rel diff < 1e-3)"] = bool(
            wc["same_C"] and wc["max_rel_loss_diff"] < 1e-3
        )
        res["finetune"] = ft = check_finetune(model_dir, device, root, quick)
        checks["finetune loss falls"] = ft["train_loss"][-1] < ft["train_loss"][0]
        checks["finetune stops and resumes"] = bool(
            ft["stopped_incomplete"] and ft["resumed_complete"] and ft["resumed_at_step"]
        )
    res["checks"] = checks
    res["passed"] = all(checks.values())
    return res


def table(res: dict[str, Any]) -> str:
    """The results as one aligned text table."""
    ex, en, ft, pk = res["extract"], res["engine"], res["finetune"], res["peak_tflops"]
    rows = [
        ("device", res.get("device_name", res["device"]), ""),
        ("cpu capability", res["cpu_capability"], ""),
        (
            "matmul peak float32 / bfloat16",
            f"{pk['float32']:.2f} / {pk['bfloat16']:.2f}",
            "TFLOP/s",
        ),
    ]
    for dt, r in ex.items():
        rows.append(
            (
                f"extract {dt} (writing on)",
                f"{r['tokens_per_s']:,.0f} tok/s, {100 * r['fraction_of_peak']:.1f}% of peak",
                f"{r['n_tokens']:,} tokens",
            )
        )
    rows += [
        ("hidden states vs CPU", f"{res['hidden_rel_l2']:.2e}", "rel L2, worst layer"),
        (
            f"engine, all {en['pairs']:,} pairs of {en['dims']}",
            f"{en['probes_per_s']:,.0f} probes/s ({en['elapsed_s']:.2f} s)",
            f"n_train {en['n_train']}",
        ),
        (
            f"engine vs CPU ({en['parity_pairs']} pairs)",
            f"loss {en['max_rel_loss_diff']:.1e}, accuracy {100 * en['accuracy_agreement']:.1f}%",
            "",
        ),
        (
            f"wide C=auto, {res['wide_cauto']['dims']} dims",
            f"C {res['wide_cauto']['device']['C']:.3g}, "
            f"{res['wide_cauto']['device']['elapsed_s']:.2f} s (CPU "
            f"{res['wide_cauto']['cpu']['elapsed_s']:.2f} s)",
            f"loss vs CPU {res['wide_cauto']['max_rel_loss_diff']:.1e}",
        ),
        (
            f"finetune ({'float32' if ft['mixed_precision'] == 'no' else ft['mixed_precision']})",
            " -> ".join(f"{v:.4f}" for v in ft["train_loss"]),
            f"resumed at step {ft['resumed_at_step']}, {ft['elapsed_s']:.1f} s",
        ),
    ]
    rows += [(f"check: {k}", "ok" if v else "FAIL", "") for k, v in res["checks"].items()]
    w = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{w}}  {b}  {c}".rstrip() for a, b, c in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N, cpu")
    ap.add_argument("--quick", action="store_true", help="a 2-layer, hidden-128 model")
    ap.add_argument("--out", default="gpu_check.json", help="the JSON written")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    res = run(resolve_device(args.device), args.quick)
    res["elapsed_s"] = time.perf_counter() - t0
    print(table(res))
    print(f"total {res['elapsed_s']:.1f} s; {'all checks passed' if res['passed'] else 'FAILED'}")
    write_json(args.out, res)
    return 0 if res["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
