"""Peak memory of a search over one layer of a large cache, against the bound it should keep.

Claim (issue 13, item 3): searching a layer keeps the process's peak resident memory within
the layer's float16 size (train + eval) plus the engine's ``memory_budget`` plus 20%, over
what the process held before it read the layer: no whole-layer float32 upcasts, no float32
row copies of the fitting and validation parts.

Each measurement runs in a fresh subprocess: it imports probekit, opens the caches, resets
the kernel's peak-RSS counter (``/proc/self/clear_refs``), notes its resident memory, runs one
search (``pairs`` over every pair of the last layer, or ``greedy`` to ``k``), and reads the
peak (``VmHWM``). The cache: ``--glue-dir DIR`` extracts SST-2 train (67,349 sentences) and dev
with the embedded MiniLM once (pooled views only, a few minutes); without it, a random
1-layer BERT of hidden 384 over ``--n`` generated sentences (the memory of a search depends
on the array shapes, not on the model).

    python benchmarks/bench_memory.py [--glue-dir ../shared/glue] [--budget-mib 512]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import synthetic_caches  # noqa: E402

MIB = 2**20


def _sst2_caches(work: Path, glue_dir: str) -> dict[str, Path]:
    from probekit.extract import extract
    from probekit.models import load_encoder
    from probekit.tasks import load_task

    paths = {}
    for split in ("train", "dev"):
        paths[split] = work / f"sst2-{split}-minilm.h5"
        if not paths[split].exists():
            print(f"extracting SST-2 {split} with MiniLM into {paths[split]} (once) ...")
            data = load_task("sst2", split, glue_dir=glue_dir)
            extract(load_encoder("minilm", device="cpu"), data, paths[split], store_tokens=False,
                    max_length=64)  # fmt: skip
    return paths


CHILD = r"""
import json, sys, time
from probekit.cache import ActivationCache
from probekit.search import SearchConfig, greedy, pairs

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)

verb, train, dev = sys.argv[1:4]
budget, k = int(sys.argv[4]), int(sys.argv[5])
with ActivationCache(train) as tr, ActivationCache(dev) as dv:
    layer_bytes = (tr.n_examples + dv.n_examples) * tr.hidden_size * 2
    cfg = SearchConfig(memory_budget=budget, n_random=5)
    open("/proc/self/clear_refs", "w").write("5")  # reset VmHWM to the current RSS
    base = status("VmRSS")
    t0 = time.perf_counter()
    if verb == "pairs":
        res = pairs(tr, dv, layer=-1, config=cfg)
    else:
        res = greedy(tr, dv, layer=-1, k=k, config=cfg)
    elapsed = time.perf_counter() - t0
    print(json.dumps({"verb": verb, "base": base, "peak": status("VmHWM"), "elapsed_s": elapsed,
                      "layer_bytes": layer_bytes, "budget": budget, "n_train": tr.n_examples,
                      "n_eval": dv.n_examples, "hidden": tr.hidden_size,
                      "selected": [int(d) for d in res.data["selected"]]}))
"""


#: glibc keeps freed blocks below its (adaptive, up to 32 MiB) mmap threshold in its heap, so
#: the resident peak also counts memory freed earlier; pinned at 1 MiB, freed buffers go back
#: to the system at once and the peak is the memory live at one time
PINNED = {"MALLOC_MMAP_THRESHOLD_": str(2**20), "MALLOC_TRIM_THRESHOLD_": str(2**20)}


def measure(
    verb: str, paths: dict[str, Path], budget: int, k: int, threads: int, pinned: bool
) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    if pinned:
        env.update(PINNED)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, verb, str(paths["train"]), str(paths["dev"]), str(budget),
         str(k)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode:
        raise SystemExit(f"{verb} failed:\n{out.stderr[-3000:]}")
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["used"] = row["peak"] - row["base"]
    row["allocator"] = "glibc, mmap threshold pinned at 1 MiB" if pinned else "glibc defaults"
    row["bound"] = int(1.2 * (row["layer_bytes"] + budget))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--glue-dir", help="GLUE directory: SST-2 train/dev through MiniLM")
    ap.add_argument("--n", type=int, default=60000, help="synthetic training examples")
    ap.add_argument("--workdir", default="/tmp/probekit-bench-memory")
    ap.add_argument("--budget-mib", type=int, default=512, help="the engine's memory_budget")
    ap.add_argument("--k", type=int, default=5, help="greedy steps")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--verbs", default="pairs,greedy")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    paths = _sst2_caches(work, args.glue_dir) if args.glue_dir else synthetic_caches(work, args.n)
    budget = args.budget_mib * MIB
    rows = [
        measure(v, paths, budget, args.k, args.threads, pinned)
        for v in args.verbs.split(",")
        for pinned in (False, True)
    ]
    r0 = rows[0]
    print(f"cache: {paths['train'].name} ({r0['n_train']:,} train, {r0['n_eval']:,} eval, "
          f"hidden {r0['hidden']}); layer float16 {r0['layer_bytes'] / MIB:.1f} MiB; "
          f"memory_budget {args.budget_mib} MiB; {args.threads} threads")  # fmt: skip
    print(
        "| search | allocator | wall, s | peak over start, MiB | bound 1.2 (layer + budget), MiB "
        "| within |"
    )
    print("|---|---|---:|---:|---:|:---:|")
    for r in rows:
        ok = "yes" if r["used"] <= r["bound"] else "NO"
        print(f"| {r['verb']} | {r['allocator']} | {r['elapsed_s']:.1f} | {r['used'] / MIB:.0f} | "
              f"{r['bound'] / MIB:.0f} | {ok} |")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
