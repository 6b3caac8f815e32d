"""Scaling curves (issue 13, item 5): how the cost of a search and of extraction grows.

Measures, in one process, and plots (PNGs under ``--out``, default ``benchmarks/figures/``):

* **all pairs of one layer** as ``probekit search pairs`` scores them
  (:func:`probekit.search.score_pairs`: units of 8,192 pairs in scan order, each one
  ``ProbeEngine.fit_score_prepared`` on the problem's prepared 80/20 fit/validation split,
  compiled when the whole scan repays it: ``search.pairs.scan_compile``), against ``n``
  (training examples) at ``D = 384`` and against ``D`` at ``n = 10,000``. Data: synthetic
  float16 features with a planted 10-dimension logistic signal. At each point
  ``--pair-sample // 8192`` random whole units (8,192 pairs) are timed after one warm-up unit
  and scaled to all ``D(D-1)/2`` pairs (whole units, not random single pairs: those read
  their rows from all over the layer and cost ~4x a scan's pairs); ONE whole
  :func:`score_pairs` call at ``D = 384, n = 10,000`` checks that extrapolation (the ratio is
  printed). Below the compile threshold (small n) the search runs eager kernels, another cost
  curve: the slopes of pairs are fitted on the compiled points;
* **greedy forward selection** to ``k = 10`` (:func:`probekit.search.greedy_select`,
  exhaustive: every candidate fitted at every step) on the same points: the whole run where
  ``n * D <= --greedy-whole-max`` (4e6), else estimated from three whole steps (``0``,
  ``k // 2``, ``k - 1``, each fitting all ``D - t`` candidates after the first ``t`` planted
  dimensions; the others interpolated); at ``D = 384, n = 10,000`` both are run and their
  ratio printed (a sample of candidates per step is no estimate: per candidate, a batch of
  128 costs 2-3x a batch of 380);
* **extraction** (:func:`probekit.extract.extract` on the embedded MiniLM, pooled views only
  and with token-level vectors) against batch size at a fixed sequence length and against
  sequence length at a fixed batch size, on synthetic sentences of exactly that many tokens
  (``[CLS]`` and ``[SEP]`` included), next to the bare forward pass over the same batches.

Baselines in the same process: scikit-learn ``LogisticRegression`` refitted per pair on
``--sk-pairs`` sampled pairs at every point (and per candidate on ``--sk-fits`` candidates of
the greedy middle step), on the same standardised features (``bench_search.Naive``), half
before and half after the engine (so that load from other processes hits both sides); the
engine/sklearn ratio is printed per point. ``C = 1`` throughout (the ``C="auto"`` choice
is not timed). Each curve gets a log-log slope (``numpy.polyfit``) and seconds per unit,
so a bigger run can be predicted. All points go to ``OUT/bench_scaling.json``.

    python benchmarks/bench_scaling.py [--quick] [--out DIR] [--threads 2]
        [--ns 1000,3000,...] [--ds 384,768,1024] [--skip-search] [--skip-extract]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other benchmarks' helpers

from _common import loadavg, loglog_panel, loglog_slope, save_figure
from bench_search import Naive, planted

from probekit import search as S
from probekit._io import write_json
from probekit.search.pairs import UNIT_PAIRS, scan_compile

HERE = Path(__file__).resolve().parent
CHUNK = UNIT_PAIRS  # pairs per unit of score_pairs, as `probekit search pairs` runs it
WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "ran",
    "on",
    "in",
    "red",
    "big",
    "old",
    "new",
    "man",
    "day",
    "way",
    "good",
]


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


# ---------------------------------------------------------------------------- the searches
def sklearn_half(naive: Naive, sets: list[list[int]], half: int) -> tuple[float, list[float]]:
    """Seconds and validation accuracies of scikit-learn refits on the first (``half=0``) or
    second half of ``sets``: one half runs before the engine and one after, so that load from
    other processes affects both sides alike."""
    h = len(sets) // 2
    t0 = time.perf_counter()
    acc = [naive.score(d)[0] for d in (sets[:h] if half == 0 else sets[h:])]
    return time.perf_counter() - t0, acc


def pairs_point(pb: S.Problem, naive: Naive, args) -> dict[str, Any]:
    """All-pairs cost at one (n, D), from a timed sample of pairs; sklearn on a few pairs."""
    D = pb.n_dims
    iu, ju = np.triu_indices(D, k=1)
    # whole units of the scan, in its order (random single pairs read their rows from all
    # over the layer and cost ~4x a scan's pairs, which share their first row): a random
    # choice of the scan's 8,192-pair units
    rng = np.random.default_rng(args.seed)
    starts = np.arange(0, len(iu), CHUNK)
    n_units = max(1, min(len(starts), args.pair_sample // CHUNK))
    pick = np.sort(rng.choice(starts, size=n_units, replace=False))
    take = np.concatenate([np.arange(a, min(a + CHUNK, len(iu))) for a in pick])
    P = np.stack([iu[take], ju[take]], axis=1).astype(np.int64)
    # as score_pairs runs a whole scan: compiled when all the layer's pairs repay it, on the
    # problem's prepared selection data
    eng = pb.config.engine(pb.regression, compile=scan_compile(pb, D * (D - 1) // 2))
    data = pb.selection_data()

    def chunk(p: np.ndarray):
        return eng.fit_score_prepared(data, p, metrics=(pb.primary,))

    sk = [[int(a), int(b)] for a, b in P[: args.sk_pairs]]
    naive.score(sk[0])  # warm-up (imports, first-call overheads)
    t_sk1, acc1 = sklearn_half(naive, sk, 0)
    t0 = time.perf_counter()
    warm = chunk(P[:CHUNK])
    t_warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    acc = np.concatenate([chunk(P[s : s + CHUNK])["accuracy"] for s in range(0, len(P), CHUNK)])
    t_sample = time.perf_counter() - t0
    per_pair = t_sample / len(P)
    t_sk2, acc2 = sklearn_half(naive, sk, 1)
    sk_per_pair, sk_acc = (t_sk1 + t_sk2) / len(sk), np.array(acc1 + acc2)
    n_pairs = D * (D - 1) // 2
    return {
        "sample_pairs": len(P),
        "warmup_s": t_warm,
        "sample_s": t_sample,
        "per_pair_s": per_pair,
        "all_pairs_s": per_pair * n_pairs,
        "n_pairs": n_pairs,
        "s_per_pair_per_1k": per_pair / (len(pb.y_train) / 1000),
        "compiled": bool(warm.stats.compiled),
        "sklearn_pairs": len(sk),
        "sklearn_per_pair_s": sk_per_pair,
        "sklearn_all_pairs_s": sk_per_pair * n_pairs,
        "speedup_vs_sklearn": sk_per_pair / per_pair,
        "max_abs_acc_diff_vs_sklearn": float(np.abs(acc[: len(sk)] - sk_acc).max()),
        "_sample": (P, acc),
    }


def greedy_estimated(pb: S.Problem, dims: list[int], args) -> tuple[float, list[float]]:
    """Greedy to k estimated from three whole steps: steps ``0, k // 2, k - 1`` (prefix: the
    first t planted dims; every one of the ``D - t`` candidates fitted, as a real step does)
    timed, the other steps interpolated linearly in t. Returns ``(seconds, [seconds per
    step timed])``."""
    timed = sorted({0, args.k // 2, args.k - 1})
    secs = []
    for t in timed:
        prefix = np.asarray(dims[:t], dtype=np.int64)
        rest = np.setdiff1d(np.arange(pb.n_dims), prefix)
        cand = np.concatenate([np.tile(prefix, (len(rest), 1)), rest[:, None]], axis=1)
        t0 = time.perf_counter()
        pb.select(cand)
        secs.append(time.perf_counter() - t0)
    return float(np.interp(np.arange(args.k), timed, secs).sum()), secs


def greedy_point(pb: S.Problem, naive: Naive, dims: list[int], args, check: bool):
    """Greedy (exhaustive) to k: the whole run where ``n * D <= --greedy-whole-max``, else
    :func:`greedy_estimated` (also at a whole-run point when ``check``, to validate it);
    scikit-learn refits a few candidates of the middle step."""
    D, k, n = pb.n_dims, args.k, len(pb.y_train)
    prefix = dims[: k // 2]
    sk = [[*prefix, int(c)] for c in np.setdiff1d(np.arange(D), prefix)[: args.sk_fits]]
    naive.score(sk[0])  # warm-up
    t_sk1, _ = sklearn_half(naive, sk, 0)
    pb.select(np.arange(2)[:, None])  # warm-up
    whole = n * D <= args.greedy_whole_max
    out: dict[str, Any] = {"k": k, "mode": "whole" if whole else "3 steps"}
    if whole:
        t0 = time.perf_counter()
        g = S.greedy_select(pb, k)
        out["s"] = time.perf_counter() - t0
        out["steps_s"] = [s["seconds"] for s in g["steps"]]
        out["selected"] = g["selected"]
        out["recovered"] = len(set(g["selected"]) & set(dims))
    if not whole or check:
        est, steps = greedy_estimated(pb, dims, args)
        out.update(estimated_s=est, timed_steps_s=steps)
        out.setdefault("s", est)
        if whole:
            out["estimated_over_whole"] = est / out["s"]
    n_fits = sum(D - t for t in range(k))
    t_sk2, _ = sklearn_half(naive, sk, 1)
    sk_per_fit = (t_sk1 + t_sk2) / len(sk)
    out.update(
        n_fits=n_fits,
        s_per_fit_per_1k=out["s"] / n_fits / (n / 1000),
        sklearn_fits=len(sk),
        sklearn_per_fit_s=sk_per_fit,
        sklearn_s=sk_per_fit * n_fits,
        speedup_vs_sklearn=sk_per_fit * n_fits / out["s"],
    )
    return out


def validate_full(pb: S.Problem, pt: dict[str, Any]) -> dict[str, Any]:
    """ONE whole :func:`score_pairs` call (every pair), against the sample's extrapolation."""
    t0 = time.perf_counter()
    ps = S.score_pairs(pb, np.arange(pb.n_dims), S.Checkpoint(None, "pairs", {}), chunk=CHUNK)
    t_full = time.perf_counter() - t0
    P, acc = pt["_sample"]
    lookup = {(int(a), int(b)): i for i, (a, b) in enumerate(ps.pairs)}
    same = ps.score[[lookup[(int(a), int(b))] for a, b in P]]
    return {
        "full_s": t_full,
        "extrapolated_s": pt["all_pairs_s"],
        "extrapolated_over_full": pt["all_pairs_s"] / t_full,
        "sample_scores_equal_full": bool(np.array_equal(same, acc)),
    }


def scan_search(args) -> dict[str, Any]:
    """Pairs and greedy at every (n, base D) and (base n, D)."""
    points = sorted({(n, args.base_d) for n in args.ns} | {(args.base_n, d) for d in args.ds})
    cfg = S.SearchConfig(metrics=("accuracy",), C=1.0, seed=args.seed)
    rows, validation = [], None
    for n, D in points:
        X, y, dims = planted(n, D, args.k, seed=args.seed)
        X = X.astype(np.float16)
        pb = S.Problem(X, y, X[:10], y[:10], config=cfg)  # eval is not used by selection
        naive = Naive(pb.X_fit, pb.y_fit, pb.X_val, pb.y_val, C=1.0)
        pt = pairs_point(pb, naive, args)
        base = (n, D) == (args.base_n, args.base_d)
        if base and not args.skip_full:
            validation = validate_full(pb, pt)
        pt.pop("_sample")
        gr = greedy_point(pb, naive, dims, args, check=base)
        rows.append({"n": n, "D": D, "pairs": pt, "greedy": gr, "load": loadavg()})
        print(
            f"n={n:>6,} D={D:>5}: all {pt['n_pairs']:,} pairs ~{pt['all_pairs_s']:.2f} s "
            f"(from {pt['sample_pairs']:,}, {'fused' if pt['compiled'] else 'eager'}; "
            f"{pt['s_per_pair_per_1k'] * 1e6:.2f} us/pair/1k ex; "
            f"{pt['speedup_vs_sklearn']:.0f}x sklearn on {pt['sklearn_pairs']}); "
            f"greedy k={gr['k']} {gr['s']:.2f} s ({gr['mode']}; "
            f"{gr['speedup_vs_sklearn']:.1f}x sklearn refit); load {rows[-1]['load'][0]}",
            flush=True,
        )
        if "recovered" in gr:
            print(f"    greedy whole run: planted dims recovered {gr['recovered']}/{args.k}")
        if "estimated_over_whole" in gr:
            print(
                f"    greedy check: estimate from 3 whole steps {gr['estimated_s']:.2f} s / "
                f"whole run {gr['s']:.2f} s = {gr['estimated_over_whole']:.2f}"
            )
    if validation:
        print(
            f"validation at n={args.base_n:,}, D={args.base_d}: one whole score_pairs call "
            f"{validation['full_s']:.2f} s; extrapolated {validation['extrapolated_s']:.2f} s "
            f"(ratio {validation['extrapolated_over_full']:.2f}); sample scores equal the "
            f"full call's: {validation['sample_scores_equal_full']}"
        )
    return {"points": rows, "validation": validation, "fits": search_fits(rows, args)}


def search_fits(rows: list[dict], args) -> dict[str, Any]:
    """Log-log slopes of pairs and greedy against n (at base D) and D (at base n)."""
    fits: dict[str, Any] = {}
    for what, key in (("pairs", "all_pairs_s"), ("greedy", "s")):
        for axis, fixed, base in (("n", "D", args.base_d), ("D", "n", args.base_n)):
            # pairs: fitted on the compiled points only (below the compile threshold the
            # search runs eager kernels, another cost curve; those points are printed), or on
            # all when fewer than two compiled (--quick)
            sel = [r for r in rows if r[fixed] == base]
            compiled = [r for r in sel if r["pairs"]["compiled"]]
            kind = ""
            if what == "pairs" and len(compiled) >= 2:
                sel, kind = compiled, " fused"
            pts = sorted((r[axis], r[what][key]) for r in sel)
            a = loglog_slope([p[0] for p in pts], [p[1] for p in pts])
            fits[f"{what}_vs_{axis}"] = {"slope": a, "at": {fixed: base}, "points": len(pts)}
            if a is not None:
                print(
                    f"{what}: cost ~ {axis}^{a:.2f} (at {fixed} = {base}, {len(pts)}{kind} points)"
                )
    base = [r for r in rows if (r["n"], r["D"]) == (args.base_n, args.base_d)]
    if base:
        b = base[0]
        print(
            f"per unit at n={args.base_n:,}, D={args.base_d}: "
            f"{b['pairs']['s_per_pair_per_1k'] * 1e6:.2f} us per pair per 1k examples; greedy "
            f"{b['greedy']['s_per_fit_per_1k'] * 1e6:.2f} us per candidate fit per 1k examples "
            f"(k={args.k}, {b['greedy']['n_fits']:,} fits)"
        )
    return fits


# ---------------------------------------------------------------------------- extraction
def sentences(lm, length: int, count: int, seed: int):
    """``count`` synthetic single sentences of exactly ``length`` tokens (specials included),
    as :class:`probekit.tasks.TaskData`, and their encoding."""
    from probekit.tasks import TASKS, TaskData
    from probekit.tokenize import encode

    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=length - 2)) for _ in range(count)]
    data = TaskData(
        TASKS["demo"],
        "train",
        texts,
        None,
        rng.integers(0, 2, size=count).astype(np.int64),
        np.arange(count, dtype=np.int64),
        f"synthetic:{length}-token sentences",
    )
    enc = encode(lm.tokenizer, data, length)
    if not (enc.lengths == length).all():
        raise RuntimeError(f"synthetic sentences are not all {length} tokens: {set(enc.lengths)}")
    return data, enc


def extract_point(lm, batch: int, length: int, args, tmp: Path, rounds: int, show: bool = True):
    """tokens/s of extract (pooled only, with tokens) and the bare forward pass over the same
    batches: medians of ``rounds`` interleaved rounds."""
    from bench_extract import bare_forward

    from probekit.extract import extract

    count = max(batch, args.extract_tokens // length)
    data, enc = sentences(lm, length, count, args.seed)
    n_tok = count * length

    def ext(tokens: bool) -> float:
        path = tmp / f"x-{batch}-{length}-{tokens}.h5"
        rep = extract(
            lm, data, path, batch_size=batch, max_length=length, store_tokens=tokens, progress=False
        )
        path.unlink()
        return rep.elapsed_s

    runs: dict[str, list[float]] = {"bare": [], "pooled": [], "tokens": []}
    for _ in range(rounds):
        runs["bare"].append(bare_forward(lm, enc, np.arange(count), batch))
        runs["pooled"].append(ext(False))
        runs["tokens"].append(ext(True))
    out: dict[str, Any] = {"batch_size": batch, "seq_len": length, "examples": count}
    out["rounds"] = rounds
    for name, ts in runs.items():
        out[f"{name}_s"] = float(np.median(ts))
        out[f"{name}_tokens_per_s"] = n_tok / out[f"{name}_s"]
    out["tokens_over_bare"] = out["tokens_s"] / out["bare_s"]
    out["s_per_1k_tokens"] = out["tokens_s"] / (n_tok / 1000)
    out["load"] = loadavg()
    if show:
        print(
            f"extract batch {batch:>3}, seq {length:>3}: tokens/s bare "
            f"{out['bare_tokens_per_s']:,.0f}, pooled only {out['pooled_tokens_per_s']:,.0f}, "
            f"with tokens {out['tokens_tokens_per_s']:,.0f} ({out['tokens_over_bare']:.2f}x "
            f"the bare pass); {count} sentences, median of {rounds}; load {out['load'][0]}",
            flush=True,
        )
    return out


def scan_extract(args) -> dict[str, Any]:
    """Extraction against batch size (at ``--base-seq``) and sequence length (``--base-batch``)."""
    from probekit.models import load_encoder

    lm = load_encoder("minilm", device="cpu")
    _ = lm.weights_hash  # once per model, outside the timings
    res: dict[str, Any] = {"by_batch": [], "by_seq_len": [], "fits": {}}
    with tempfile.TemporaryDirectory() as d:
        tmp, r = Path(d), args.rounds
        extract_point(lm, args.base_batch, min(args.seq_lens), args, tmp, 1, show=False)  # warm-up
        for b in args.batch_sizes:
            res["by_batch"].append(extract_point(lm, b, args.base_seq, args, tmp, r))
        for length in args.seq_lens:
            res["by_seq_len"].append(extract_point(lm, args.base_batch, length, args, tmp, r))
    for key, axis in (("by_batch", "batch_size"), ("by_seq_len", "seq_len")):
        xs = [p[axis] for p in res[key]]
        for mode in ("bare", "pooled", "tokens"):
            a = loglog_slope(xs, [p[f"{mode}_tokens_per_s"] for p in res[key]])
            res["fits"][f"{mode}_tokens_per_s_vs_{axis}"] = a
            if a is not None:
                print(f"extract ({mode}): tokens/s ~ {axis}^{a:.2f}")
    return res


# ---------------------------------------------------------------------------- plots
def _label(name: str, a: float | None) -> str:
    return name if a is None else f"{name} (slope {a:.2f})"


def _title(res: dict[str, Any], what: str) -> str:
    return f"{what}: {res['machine']}; {res['date']}, load {res['load_start'][0]}"


def _search_figure(plt, res: dict[str, Any], what: str, out: Path, args) -> str:
    """Engine and scikit-learn against n (left) and D (right)."""
    key, sk = {"pairs": ("all_pairs_s", "sklearn_all_pairs_s"), "greedy": ("s", "sklearn_s")}[what]
    rows, fits, val = res["search"]["points"], res["search"]["fits"], res["search"]["validation"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, axis, fixed, base in zip(
        axes, ("n", "D"), ("D", "n"), (args.base_d, args.base_n), strict=True
    ):
        pts = sorted((r for r in rows if r[fixed] == base), key=lambda r: r[axis])
        xs = [r[axis] for r in pts]
        a = fits[f"{what}_vs_{axis}"]["slope"]
        series = [
            (_label("probekit engine", a), [r[what][key] for r in pts], "o-"),
            ("scikit-learn per probe (extrapolated)", [r[what][sk] for r in pts], "s--"),
        ]
        loglog_panel(ax, xs, series, axis, "seconds", f"{what} at {fixed} = {base:,}")
        if what == "pairs" and val:
            at = args.base_n if axis == "n" else args.base_d
            ax.plot([at], [val["full_s"]], "k*", ms=10, label="one whole call (measured)")
            ax.legend(fontsize=7)
        est = [(r[axis], r[what][key]) for r in pts if r[what].get("mode") == "3 steps"]
        if est:
            ax.plot(*zip(*est), "o", mfc="white", mec="C0", label="estimated (3 steps timed)")
            ax.legend(fontsize=7)
    return save_figure(fig, _title(res, what), out / f"scaling_{what}.png")


def _extract_figure(plt, res: dict[str, Any], out: Path) -> str:
    """tokens/s of the bare pass, pooled-only and token-level extraction."""
    ex = res["extract"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, axis in zip(
        axes, ("by_batch", "by_seq_len"), ("batch_size", "seq_len"), strict=True
    ):
        xs = [p[axis] for p in ex[key]]
        series = [
            (
                _label(m, ex["fits"].get(f"{m}_tokens_per_s_vs_{axis}")),
                [p[f"{m}_tokens_per_s"] for p in ex[key]],
                s,
            )
            for m, s in (("bare", "^:"), ("pooled", "o-"), ("tokens", "s-"))
        ]
        loglog_panel(ax, xs, series, axis, "tokens/s", f"MiniLM extraction against {axis}")
    return save_figure(fig, _title(res, "extraction"), out / "scaling_extract.png")


def plot(res: dict[str, Any], out: Path, args) -> list[str]:
    """The PNGs of the curves measured: scaling_pairs, scaling_greedy, scaling_extract."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    if "search" in res:
        written += [_search_figure(plt, res, what, out, args) for what in ("pairs", "greedy")]
    if "extract" in res:
        written.append(_extract_figure(plt, res, out))
    plt.close("all")
    return written


# ---------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (seconds; the slow test)")
    ap.add_argument(
        "--out",
        type=Path,
        help="PNGs and bench_scaling.json (default "
        "benchmarks/figures; --quick: /tmp/probekit-bench/scaling-quick)",
    )
    ap.add_argument("--threads", type=int, default=2, help="torch and BLAS threads (default 2)")
    ap.add_argument("--ns", type=ints, default=[1000, 3000, 10000, 30000, 60000])
    ap.add_argument("--ds", type=ints, default=[384, 768, 1024])
    ap.add_argument("--base-n", type=int, default=10000, help="n of the curve against D")
    ap.add_argument("--base-d", type=int, default=384, help="D of the curve against n")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--pair-sample", type=int, default=8192, help="pairs timed per point")
    ap.add_argument("--sk-pairs", type=int, default=16, help="sklearn pairs per point")
    ap.add_argument("--sk-fits", type=int, default=8, help="sklearn greedy fits per point")
    ap.add_argument(
        "--greedy-whole-max",
        type=float,
        default=4e6,
        help="the whole greedy run where n * D <= this, else 3 steps timed",
    )
    ap.add_argument("--skip-full", action="store_true", help="no whole all-pairs call")
    ap.add_argument("--batch-sizes", type=ints, default=[8, 16, 32, 64])
    ap.add_argument("--seq-lens", type=ints, default=[16, 32, 64, 128])
    ap.add_argument("--base-batch", type=int, default=32, help="batch of the seq-len curve")
    ap.add_argument("--base-seq", type=int, default=64, help="seq len of the batch curve")
    ap.add_argument("--extract-tokens", type=int, default=16384, help="tokens per point")
    ap.add_argument("--rounds", type=int, default=3, help="extraction rounds (medians)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument("--skip-extract", action="store_true")
    args = ap.parse_args(argv)  # fmt: skip
    if args.quick:
        args.ns, args.ds, args.base_n, args.base_d, args.k = [400, 800], [24, 48], 800, 24, 3
        args.pair_sample, args.sk_pairs, args.sk_fits = 200, 3, 2
        args.greedy_whole_max = 20000
        args.batch_sizes, args.seq_lens, args.base_batch, args.base_seq = [4, 8], [8, 16], 4, 8
        args.extract_tokens, args.rounds = 64, 1
    if args.out is None:
        args.out = Path("/tmp/probekit-bench/scaling-quick") if args.quick else HERE / "figures"
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    from threadpoolctl import threadpool_limits

    from probekit.hardware import cpu_capability

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {
        "kind": "bench_scaling",
        "quick": args.quick,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {cpu_capability()}, "
        f"torch threads {torch.get_num_threads()}",
        "date": time.strftime("%Y-%m-%d"),
        "threads": args.threads,
        "C": 1.0,
        "load_start": loadavg(),
    }
    print(f"machine: {res['machine']}; load {res['load_start']}", flush=True)
    t0 = time.perf_counter()
    with threadpool_limits(args.threads):
        if not args.skip_search:
            res["search"] = scan_search(args)
        if not args.skip_extract:
            res["extract"] = scan_extract(args)
    res["elapsed_s"] = time.perf_counter() - t0
    res["load_end"] = loadavg()
    res["figures"] = plot(res, args.out, args)
    write_json(args.out / "bench_scaling.json", res)
    print(f"load at the end {res['load_end']}; wrote {', '.join(res['figures'])} and "
          f"{args.out / 'bench_scaling.json'} ({res['elapsed_s']:.0f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
