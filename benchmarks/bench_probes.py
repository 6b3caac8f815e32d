"""Probe engine speed and parity: all pairs of a 384-dimension layer, against scikit-learn.

Measures, in one process:

* the batched engine (:class:`probekit.probes.ProbeEngine`, logistic regression, C=1) fitting
  **every pair** of the layer's dimensions (73,536 for 384) on 10,000 training examples and
  scoring each on 2,000 held-out examples: first call (includes ``torch.compile`` of the
  fused kernels; a cold compiler cache costs more than a warm one) and a second, steady
  call; also the eager engine (no compilation) on all pairs (or a sample: --eager-pairs),
  alternated with its baseline, the batched products that ran eager pairs before
  ``pair_kernels`` (best of three each), each round next to its own scikit-learn slice
  (``--sk-round`` pairs before and after it), whose per-round ratio is the robust one on a
  VM whose speed changes within a minute;
* a scikit-learn loop on a random sample of the same pairs: ``LogisticRegression(C=1)``
  (default lbfgs) fitted per pair on the same standardised features, predicting the same
  held-out examples; timed in two halves, before and after the engine, so that load from
  other processes affects both sides alike; all-pairs time extrapolated from its rate;
* parity of held-out accuracy between the engine and that loop on the sampled pairs;
* one full-width probe (all dimensions): engine vs scikit-learn (lbfgs, and newton-cholesky);
* the ridge (regression) engine on all pairs (closed form), for scale.

Data: the last layer's CLS vectors of MiniLM on SST-2 train (first 10,000 examples train,
next 2,000 held out) from ``--cache FILE.h5`` (a probekit cache with >= 12,000 examples), or
extracted from ``--glue-dir`` into ``--workdir`` when no cache is given; without either,
correlated synthetic features with a planted signal (stated in the output).

Usage: python benchmarks/bench_probes.py [--quick] [--cache FILE.h5 | --glue-dir DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probekit.probes import ProbeEngine


def load_features(args):
    """(X [n_train + n_eval, D] float16, y, description)."""
    need = args.n_train + args.n_eval
    cache = args.cache
    if cache is None and args.glue_dir:
        from probekit.extract import extract
        from probekit.models import load_encoder
        from probekit.tasks import load_task

        cache = Path(args.workdir) / f"sst2-train-{need}.h5"
        if not cache.exists():
            print(
                f"extracting {need} SST-2 train examples with MiniLM into {cache} (once) ...",
                flush=True,
            )
            extract(
                load_encoder("minilm", device="cpu"),
                load_task("sst2", "train", glue_dir=args.glue_dir, limit=need),
                cache,
                store_tokens=False,
                progress=False,
            )
    if cache is not None:
        from probekit.cache import ActivationCache

        with ActivationCache(cache) as c:
            if c.n_examples < need:
                sys.exit(f"{cache} has {c.n_examples} examples; need {need}")
            X = c.features(-1, "cls")[:need]
            y = c.labels[:need]
            desc = f"MiniLM last-layer CLS, {c.task.name} {c.meta.get('split')} ({cache})"
        return X, y, desc
    rng = np.random.default_rng(0)
    D = 384
    A = rng.normal(size=(D, D)) / np.sqrt(D)
    X = rng.normal(size=(need, D)) @ A
    w = rng.normal(size=D) * (rng.random(D) < 0.1)
    y = ((X @ w) * 2 + rng.logistic(size=need) > 0).astype(np.int64)
    return (
        X.astype(np.float16),
        y,
        "synthetic correlated Gaussian features, planted sparse logistic signal",
    )


def sklearn_loop(Xs_tr, ytr, Xs_ev, yev, pairs, C=1.0, solver="lbfgs"):
    """Per-pair LogisticRegression on standardised float64 features: (seconds, accuracies)."""
    from sklearn.linear_model import LogisticRegression

    acc = np.empty(len(pairs))
    t0 = time.perf_counter()
    for i, d in enumerate(pairs):
        lr = LogisticRegression(C=C, solver=solver).fit(Xs_tr[:, d], ytr)
        acc[i] = (lr.predict(Xs_ev[:, d]) == yev).mean()
    return time.perf_counter() - t0, acc


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small run: 3,000 pairs, 60 sklearn pairs, no full width",
    )
    ap.add_argument(
        "--cache", type=Path, help="probekit cache (.h5) with >= n_train + n_eval examples"
    )
    ap.add_argument(
        "--glue-dir", help="GLUE directory to extract SST-2 train from when --cache is not given"
    )
    ap.add_argument(
        "--workdir", default="/tmp/probekit_bench", help="where --glue-dir extraction goes"
    )
    ap.add_argument("--n-train", type=int, default=10_000)
    ap.add_argument("--n-eval", type=int, default=2_000)
    ap.add_argument(
        "--sk-pairs", type=int, default=400, help="pairs in the scikit-learn sample (default 400)"
    )
    ap.add_argument(
        "--sk-round",
        type=int,
        default=100,
        help="scikit-learn pairs timed before and after each eager round (default 100)",
    )
    ap.add_argument(
        "--eager-pairs",
        type=int,
        default=0,
        help="pairs for the eager (uncompiled) engine (default 0: all; a sample is extrapolated)",
    )
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args()
    if args.sk_round < 1:
        ap.error("--sk-round must be at least 1")
    if args.quick:
        args.sk_pairs, args.eager_pairs, args.sk_round = 60, 300, 10
    if args.glue_dir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    return args


def full_width(eng, Xtr, ytr, Xev, yev, Xs_tr, Xs_ev) -> dict:
    """One full-width probe (all dimensions): the engine vs scikit-learn (lbfgs, newton)."""
    from sklearn.linear_model import LogisticRegression

    D = Xtr.shape[1]
    full = np.arange(D)[None, :]
    t0 = time.perf_counter()
    sf = eng.fit_score(Xtr, ytr, Xev, yev, full, metrics=("accuracy",))
    t_full = time.perf_counter() - t0
    out = {}
    for solver in ("lbfgs", "newton-cholesky"):
        t0 = time.perf_counter()
        lr = LogisticRegression(C=1.0, solver=solver, max_iter=5000).fit(Xs_tr, ytr)
        out[solver] = (time.perf_counter() - t0, (lr.predict(Xs_ev) == yev).mean())
    res = {
        "full_engine_s": t_full,
        "full_engine_acc": float(sf["accuracy"][0]),
        "full_sklearn_lbfgs_s": out["lbfgs"][0],
        "full_sklearn_lbfgs_acc": float(out["lbfgs"][1]),
        "full_sklearn_newton_s": out["newton-cholesky"][0],
        "full_sklearn_newton_acc": float(out["newton-cholesky"][1]),
    }
    print()
    print(
        f"one full-width probe ({D} dims): engine {t_full:.2f} s "
        f"(acc {sf['accuracy'][0]:.4f}); sklearn lbfgs {out['lbfgs'][0]:.2f} s "
        f"(acc {out['lbfgs'][1]:.4f}, {out['lbfgs'][0] / t_full:.1f}x the engine); "
        f"sklearn newton-cholesky {out['newton-cholesky'][0]:.2f} s "
        f"(acc {out['newton-cholesky'][1]:.4f})"
    )
    return res


def eager_runs(Xtr, ytr, Xev, yev, pairs, sk_round, rounds: int = 3):
    """The eager engine (no compilation: pair kernels of :mod:`probekit.probes.pair_kernels`)
    and, as its baseline, the same engine with the batched products that ran pairs before
    them (``kernels.binary_pass_bmm`` / ``binary_eval_bmm``, tile by tile), alternated
    ``rounds`` times, each round next to ``sk_round()`` (scikit-learn's seconds per pair on
    a slice of its sample), so that each round's ratio sees one load (this VM's speed has
    been seen to change 2x within a minute). Returns (best seconds, best baseline seconds,
    the eager scores, the per-round ratios ``sklearn seconds / eager seconds`` for all of
    ``pairs``)."""
    import probekit.probes.kernels as K
    import probekit.probes.scoring as SC
    import probekit.probes.solvers as SO

    def batched(fn):
        return lambda *a: K.tiled(fn, *a)

    eng = ProbeEngine(C=1.0, compile=False)
    best = {"pairs": np.inf, "batched": np.inf}
    ratios = []
    for _ in range(rounds):
        sk = sk_round()
        for name in best:
            try:
                if name == "batched":
                    SO.eager_pass = batched(K.binary_pass_bmm)
                    SC.eager_eval = batched(K.binary_eval_bmm)
                t0 = time.perf_counter()
                out = eng.fit_score(Xtr, ytr, Xev, yev, pairs, metrics=("accuracy",))
                dt = time.perf_counter() - t0
                best[name] = min(best[name], dt)
            finally:
                SO.eager_pass, SC.eager_eval = K.eager_pass, K.eager_eval
            if name == "pairs":
                scores, t_pairs = out, dt
        sk = (sk + sk_round()) / 2  # before and after this round's two engine runs
        ratios.append(sk * len(pairs) / t_pairs)
    return best["pairs"], best["batched"], scores, ratios


def main() -> None:
    args = parse_args()
    X, y, desc = load_features(args)
    ntr = args.n_train
    Xtr, ytr, Xev, yev = X[:ntr], y[:ntr], X[ntr:], y[ntr:]
    D = X.shape[1]
    pairs = np.stack(np.triu_indices(D, 1), 1)
    if args.quick:
        pairs = pairs[np.random.default_rng(1).choice(len(pairs), 3000, replace=False)]
    rng = np.random.default_rng(0)
    sample = rng.choice(len(pairs), min(args.sk_pairs, len(pairs)), replace=False)
    half = len(sample) // 2
    print(f"data: {desc}; train {len(ytr)}, held-out {len(yev)}, {D} dims, {len(pairs):,} pairs")
    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"torch threads {torch.get_num_threads()}, torch {torch.__version__}"
    )

    # scikit-learn sees the same standardisation the engine uses (train mean/std), in float64
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(Xtr.astype(np.float64))
    Xs_tr, Xs_ev = sc.transform(Xtr.astype(np.float64)), sc.transform(Xev.astype(np.float64))

    res: dict = {
        "data": desc,
        "n_train": len(ytr),
        "n_eval": len(yev),
        "n_dims": D,
        "n_pairs": len(pairs),
    }
    t_sk1, acc_sk1 = sklearn_loop(Xs_tr, ytr, Xs_ev, yev, pairs[sample[:half]])

    # compile=None compiles for a batch this size; --quick forces eager (no compile time in CI)
    eng = ProbeEngine(C=1.0, compile=False if args.quick else None)
    t0 = time.perf_counter()
    s1 = eng.fit_score(Xtr, ytr, Xev, yev, pairs, metrics=("accuracy",))
    t_first = time.perf_counter() - t0
    st = s1.stats  # FitStats: convergence, chunking, compilation of that call
    t0 = time.perf_counter()
    s2 = eng.fit_score(Xtr, ytr, Xev, yev, pairs, metrics=("accuracy",))
    t_second = time.perf_counter() - t0
    assert np.array_equal(s1["accuracy"], s2["accuracy"]), "engine is not deterministic"

    t_sk2, acc_sk2 = sklearn_loop(Xs_tr, ytr, Xs_ev, yev, pairs[sample[half:]])
    t_sk = t_sk1 + t_sk2
    acc_sk = np.concatenate([acc_sk1, acc_sk2])
    sk_rate = len(sample) / t_sk
    sk_all = len(pairs) / sk_rate

    n_eager = len(pairs) if args.eager_pairs <= 0 else min(args.eager_pairs, len(pairs))
    eager_idx = (
        np.arange(len(pairs))
        if n_eager == len(pairs)
        else rng.choice(len(pairs), n_eager, replace=False)
    )
    rounds = 3  # eager rounds, each with a scikit-learn slice before and after it
    sk_slices = iter(
        np.array_split(rng.permutation(len(pairs))[: 2 * rounds * args.sk_round], 2 * rounds)
    )

    def sk_round() -> float:  # seconds per pair on a fresh slice of pairs
        sl = pairs[next(sk_slices)]
        sl = sl if len(sl) else pairs[:1]  # (fewer pairs than slices)
        return sklearn_loop(Xs_tr, ytr, Xs_ev, yev, sl)[0] / len(sl)

    t_eager, t_eager_bmm, se, ratios = eager_runs(
        Xtr, ytr, Xev, yev, pairs[eager_idx], sk_round, rounds=rounds
    )
    eager_rate = len(eager_idx) / t_eager

    diff = np.abs(s2["accuracy"][sample] - acc_sk)
    eager_vs_compiled = np.abs(se["accuracy"] - s2["accuracy"][eager_idx])
    res.update(
        {
            "engine_first_call_s": t_first,
            "engine_steady_s": t_second,
            "engine_probes_per_s": len(pairs) / t_second,
            "compiled": bool(st.compiled),
            "chunk_size": int(st.chunk_size),
            "newton_passes_mean": float(st.n_iter.mean()),
            "newton_passes_max": int(st.n_iter.max()),
            "all_converged": bool(st.converged.all()),
            "sklearn_sample_pairs": len(sample),
            "sklearn_probes_per_s": sk_rate,
            "sklearn_all_pairs_s_extrapolated": sk_all,
            "speedup_steady": sk_all / t_second,
            "speedup_incl_compile": sk_all / t_first,
            "parity_median_abs_diff": float(np.median(diff)),
            "parity_max_abs_diff": float(diff.max()),
            "eager_pairs": len(eager_idx),
            "eager_probes_per_s": eager_rate,
            "eager_all_pairs_s": len(pairs) / eager_rate,
            "eager_extrapolated": n_eager < len(pairs),
            "eager_vs_compiled_max_abs_diff": float(eager_vs_compiled.max()),
            "eager_batched_all_pairs_s": t_eager_bmm * len(pairs) / len(eager_idx),
            "eager_vs_sklearn_per_round": ratios,
            "eager_vs_sklearn_median_round": float(np.median(ratios)),
        }
    )
    print()
    print(f"{'all pairs, logistic (C=1)':<46}{'seconds':>10}{'probes/s':>11}{'vs sklearn':>12}")
    t_eager_all = len(pairs) / eager_rate
    for label, secs in (
        ("  engine, first call (incl. torch.compile)", t_first),
        ("  engine, second call", t_second),
        (
            f"  engine, eager (no compile; {'extrapolated' if n_eager < len(pairs) else 'all'})",
            t_eager_all,
        ),
        ("    (eager, the batched products before it)", t_eager_bmm * len(pairs) / len(eager_idx)),
        (f"  sklearn loop (extrapolated from {len(sample)})", sk_all),
    ):
        print(f"{label:<46}{secs:>10.2f}{len(pairs) / secs:>11.0f}{sk_all / secs:>11.1f}x")
    print(
        f"  eager vs sklearn per round (each round next to its own {args.sk_round} sklearn "
        f"pairs): {', '.join(f'{r:.1f}x' for r in ratios)}; median {np.median(ratios):.1f}x"
    )
    print(
        f"  Newton passes per probe: mean {st.n_iter.mean():.2f}, max {st.n_iter.max()}; chunk "
        f"{st.chunk_size}; compiled: {st.compiled}; all converged: {bool(st.converged.all())}"
    )
    print(
        f"  parity vs sklearn on {len(sample)} pairs: |accuracy diff| median "
        f"{np.median(diff) * 100:.3f} points, max {diff.max() * 100:.3f} points; "
        f"eager vs compiled max {eager_vs_compiled.max() * 100:.3f} points"
    )

    # ridge (closed form from one Gram matrix), all pairs, for scale
    yr = ytr.astype(np.float64)
    t0 = time.perf_counter()
    ProbeEngine(regression=True).fit_score(
        Xtr, yr, Xev, yev.astype(np.float64), pairs, metrics=("pearson",)
    )
    t_ridge = time.perf_counter() - t0
    res["ridge_all_pairs_s"] = t_ridge
    print(f"  ridge engine, all pairs (closed form): {t_ridge:.2f} s")

    if not args.quick:
        res.update(full_width(eng, Xtr, ytr, Xev, yev, Xs_tr, Xs_ev))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    res["peak_rss_gib"] = peak
    print(f"peak resident memory of this process: {peak:.2f} GiB (engine budget 2 GiB in flight)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
