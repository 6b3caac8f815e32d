"""Benchmark of the dimension search (issue 4).

Claim 1, greedy: forward selection to k=10 over 768 dimensions with 10,000 training
examples (80/20 fit/validation split), each step scoring every candidate as one batch with
the probe engine (``exhaustive``), or only the ``--screen`` candidates with the largest
score-test statistic at the current fit (``screenM``), against the naive search, a
scikit-learn ``LogisticRegression`` refit of every candidate on the same standardised features
and the same objective. The naive search is timed in the same run on one whole step (the
middle one) and extrapolated to all steps (``--full-naive`` also runs it completely). Both
must choose the same
dimensions on planted data (the label depends on 10 known dimensions with decreasing
weights): with ``--full-naive`` the whole naive search is compared; otherwise at every step
the naive refit is run on a shortlist (the 12 best candidates by batched score plus 12 random
others) and must choose the same winner.

Claim 2, stumps: the exactly best threshold of every dimension of every layer of a MiniLM
cache (``--cache``; by default an SST-2 train cache of ``--stump-limit`` examples is
extracted once into ``--work``), against scikit-learn ``DecisionTreeClassifier(max_depth=1)``
per dimension (sampled and extrapolated) in the same run.

    python benchmarks/bench_search.py [--quick] [--full-naive] [--cache FILE.h5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probekit import search as S
from probekit.stumps import fit_stumps


def planted(n: int, D: int, k: int, seed: int = 0):
    """``X [n, D]`` float32 and labels depending on ``k`` known dims with weights 0.8^i (the
    dims depend on ``D`` and ``k`` only, the examples on ``seed``)."""
    dims = np.random.default_rng(12345).choice(D, size=k, replace=False)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D)).astype(np.float32)
    w = 0.8 ** np.arange(k)
    y = (X[:, dims] @ w + 0.3 * rng.standard_normal(n) > 0).astype(np.int64)
    return X, y, dims.tolist()


class Naive:
    """Refit a scikit-learn logistic regression per candidate (same objective as the engine)."""

    def __init__(self, X_fit, y_fit, X_val, y_val, C=1.0):
        from sklearn.preprocessing import StandardScaler

        sc = StandardScaler().fit(X_fit.astype(np.float64))
        self.Xf = sc.transform(X_fit.astype(np.float64))
        self.Xv = sc.transform(X_val.astype(np.float64))
        self.yf, self.yv, self.C = y_fit, y_val, C

    def score(self, dims):
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import log_loss

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = LogisticRegression(C=self.C, max_iter=1000).fit(self.Xf[:, dims], self.yf)
        p = m.predict_proba(self.Xv[:, dims])[:, 1]
        acc = float(((p > 0.5).astype(int) == self.yv).mean())
        return acc, float(log_loss(self.yv, p, labels=[0, 1]))

    def step(self, selected, cands):
        res = np.array([self.score([*selected, int(c)]) for c in cands])
        return res[:, 0], res[:, 1]


def bench_greedy(args) -> dict:
    n, D, k = (2000, 128, 4) if args.quick else (args.n, args.dims, args.k)
    X, y, planted_dims = planted(n, D, k, seed=args.seed)
    cfg = S.SearchConfig(metrics=("accuracy",), seed=args.seed)
    pb = S.Problem(X, y, X[:10], y[:10], config=cfg)  # eval is not used by the selection
    # warm-up (torch.compile / first-call overheads are not part of a long search)
    pb.select(np.arange(2)[:, None])
    modes = {}
    for name, screen in (("exhaustive", None), (f"screen{args.screen}", args.screen)):
        if name == "exhaustive" and args.skip_exhaustive:
            continue
        t0 = time.perf_counter()
        g = S.greedy_select(pb, k, screen=screen)
        dt = time.perf_counter() - t0
        modes[name] = {
            "s": dt,
            "steps_s": [s["seconds"] for s in g["steps"]],
            "selected": g["selected"],
        }
        print(
            f"batched greedy ({name}): {D} dims, n={n} ({len(pb.idx_fit)} fit / "
            f"{len(pb.idx_val)} val), k={k}: "
            f"{dt:.2f} s; steps {[round(s['seconds'], 2) for s in g['steps']]}"
        )
        print(
            f"  selected {g['selected']}; planted {planted_dims} -> recovered "
            f"{len(set(g['selected']) & set(planted_dims))}/{k}"
        )
    main_mode = "exhaustive" if "exhaustive" in modes else f"screen{args.screen}"
    sel = modes[main_mode]["selected"]
    # the public call: selection + eval curve + 20-draw random baselines + the full-width probe
    Xd, yd, _ = planted(2000, D, k, seed=args.seed + 1)
    tr, dv = S.ArraySource(X, y), S.ArraySource(Xd, yd)
    t0 = time.perf_counter()
    full = S.greedy(tr, dv, k=k, screen=args.screen, config=cfg)
    t_public = time.perf_counter() - t0
    print(
        f"S.greedy(..., screen={args.screen}) end to end (with dev curve, random baselines, "
        f"full width): {t_public:.2f} s; dev acc {full['metrics']['accuracy']:.3f}, "
        f"full {full['full_metrics']['accuracy']:.3f}, "
        f"random {full['random_baseline']['mean']['accuracy']:.3f}"
    )

    naive = Naive(pb.X_fit, pb.y_fit, pb.X_val, pb.y_val)
    rng = np.random.default_rng(1)
    # one whole naive step timed (the middle one: per-fit cost grows a little with k), extrapolated
    tm = k // 2
    rest = np.setdiff1d(np.arange(D), sel[:tm])
    t1 = time.perf_counter()
    a, l = naive.step(sel[:tm], rest)
    t_step = time.perf_counter() - t1
    per_fit = t_step / len(rest)
    naive_est = per_fit * sum(D - t for t in range(k))
    mid_same = int(rest[S.best_first(a, l)[0]]) == sel[tm]
    # at every step: the naive refit on a shortlist (12 best by batched score + 12 random)
    # picks the same winner
    shortlist_ok, max_diff = [], 0.0
    for t in range(k):
        prefix = sel[:t]
        rest = np.setdiff1d(np.arange(D), prefix)
        dims = np.concatenate(
            [np.tile(np.asarray(prefix, dtype=np.int64), (len(rest), 1)), rest[:, None]], axis=1
        )
        bs, bl = pb.select(dims)
        order = S.best_first(bs, bl)
        short = np.unique(
            np.concatenate(
                [order[:12], rng.choice(len(rest), size=min(12, len(rest)), replace=False)]
            )
        )
        na, nl = naive.step(prefix, rest[short])
        win = rest[short][S.best_first(na, nl)[0]]
        shortlist_ok.append(int(win) == sel[t])
        max_diff = max(max_diff, float(np.abs(na - bs[short]).max()))
    out = {
        "n": n,
        "dims": D,
        "k": k,
        "modes": modes,
        "public_greedy_s": t_public,
        "selected": sel,
        "planted": planted_dims,
        "naive_step": tm + 1,
        "naive_step_s": t_step,
        "naive_per_fit_s": per_fit,
        "naive_est_s": naive_est,
        "naive_step_same_winner": mid_same,
        "speedup_est": {m: naive_est / v["s"] for m, v in modes.items()},
        "shortlist_same_winner": shortlist_ok,
        "max_abs_val_acc_diff_naive_vs_batched": max_diff,
    }
    sp = ", ".join(f"{m} {naive_est / v['s']:.1f}x" for m, v in modes.items())
    print(
        f"naive sklearn refit, step {tm + 1} timed whole: {t_step:.1f} s "
        f"({per_fit * 1e3:.1f} ms per fit; same winner: {mid_same}) -> whole search "
        f"~{naive_est:.1f} s (extrapolated); speed-up {sp}"
    )
    print(
        f"  same winner on the shortlist at every step: {all(shortlist_ok)}; "
        f"max |val acc naive - batched| on shortlists {max_diff:.4f}"
    )
    if args.full_naive:
        t1 = time.perf_counter()
        nsel = []
        for _ in range(k):
            rest = np.setdiff1d(np.arange(D), nsel)
            a, l = naive.step(nsel, rest)
            nsel.append(int(rest[S.best_first(a, l)[0]]))
        t_naive = time.perf_counter() - t1
        same = {m: nsel == v["selected"] for m, v in modes.items()}
        out.update(
            naive_full_s=t_naive,
            naive_selected=nsel,
            same_selection=same,
            speedup_full={m: t_naive / v["s"] for m, v in modes.items()},
        )
        print(
            f"full naive search: {t_naive:.1f} s, selected {nsel}; same as batched: {same}; "
            "speed-up " + ", ".join(f"{m} {t_naive / v['s']:.1f}x" for m, v in modes.items())
        )
    return out


def _cache_path(args) -> Path:
    if args.cache:
        return Path(args.cache)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"sst2-train-{args.stump_limit}.h5"
    if not path.exists():
        from probekit.extract import extract
        from probekit.models import load_encoder
        from probekit.tasks import load_task

        glue = Path(
            os.environ.get(
                "PROBEKIT_GLUE_DIR", Path(__file__).resolve().parents[2] / "shared" / "glue"
            )
        )
        print(
            f"extracting a MiniLM cache of {args.stump_limit} SST-2 train examples into {path} "
            "(once) ..."
        )
        extract(
            load_encoder("minilm", device="cpu"),
            load_task("sst2", "train", glue_dir=glue, limit=args.stump_limit),
            path,
            store_tokens=False,
            progress=False,
        )
    return path


def bench_stumps(args) -> dict:
    from sklearn.tree import DecisionTreeClassifier

    from probekit.cache import ActivationCache

    if args.quick and not args.cache:
        rng = np.random.default_rng(0)
        feats = rng.standard_normal((2000, 3, 64)).astype(np.float16)
        y = (feats[:, -1, 5] > 0).astype(np.int64)
        src, name = S.ArraySource(feats, y), "synthetic 2000 x 3 x 64"
    else:
        path = _cache_path(args)
        src, name = ActivationCache(path), str(path)
        y = src.labels
    t0 = time.perf_counter()
    layers = [src.features(l, "cls") for l in range(src.n_layers)]
    t_read = time.perf_counter() - t0
    n, D = layers[0].shape
    t0 = time.perf_counter()
    fits = [fit_stumps(X, y) for X in layers]
    t_stumps = time.perf_counter() - t0
    best = [
        (l, int(f.train_score.argmax()), float(f.train_score.max())) for l, f in enumerate(fits)
    ]
    # exactness spot check against a brute force over thresholds on a few dims
    X = layers[-1]
    for d in range(3):
        x = X[:, d].astype(np.float64)
        v = np.unique(x)
        cand = np.concatenate([[-np.inf], (v[:-1] + v[1:]) / 2, [np.inf]])
        low = x[None, :] <= cand[:, None]
        acc = (low == (y[None, :] == 0)).mean(1)
        assert abs(max(acc.max(), 1 - acc.min()) - fits[-1].train_score[d]) < 1e-12
    # baseline: a scikit-learn depth-1 tree per dimension (sampled, extrapolated)
    samp = list(range(0, D, max(1, D // args.sample)))[: args.sample]
    t0 = time.perf_counter()
    for d in samp:
        DecisionTreeClassifier(max_depth=1).fit(X[:, d : d + 1].astype(np.float32), y)
    per_dim = (time.perf_counter() - t0) / len(samp)
    sk_est = per_dim * D * len(layers)
    out = {
        "cache": name,
        "n": n,
        "layers": len(layers),
        "dims": D,
        "read_s": t_read,
        "stumps_s": t_stumps,
        "sklearn_tree_per_dim_s": per_dim,
        "sklearn_tree_est_s": sk_est,
        "speedup_vs_sklearn_tree": sk_est / t_stumps,
        "best_per_layer": best,
    }
    print(
        f"stumps: {len(layers)} layers x {D} dims, n={n} ({name}): {t_stumps:.2f} s "
        f"(+ {t_read:.2f} s reading the cache); sklearn depth-1 tree per dim: "
        f"{per_dim * 1e3:.1f} ms -> "
        f"~{sk_est:.1f} s (extrapolated); speed-up {sk_est / t_stumps:.1f}x"
    )
    print(
        f"  best single dim per layer (train accuracy): {[(l, d, round(s, 3)) for l, d, s in best]}"
    )
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (CI)")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--dims", type=int, default=768)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample", type=int, default=32, help="tree fits timed for the stump baseline")
    ap.add_argument(
        "--full-naive", action="store_true", help="run the complete naive search too (minutes)"
    )
    ap.add_argument(
        "--screen", type=int, default=32, help="candidates fitted per step in the screened mode"
    )
    ap.add_argument(
        "--skip-exhaustive", action="store_true", help="only the screened batched search"
    )
    ap.add_argument("--cache", help="MiniLM cache for the stump benchmark")
    ap.add_argument("--stump-limit", type=int, default=10000)
    ap.add_argument("--work", default="/tmp/probekit-bench")
    ap.add_argument("--skip-greedy", action="store_true")
    ap.add_argument("--skip-stumps", action="store_true")
    ap.add_argument("--json", help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    import torch

    res = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch threads {torch.get_num_threads()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    if not args.skip_greedy:
        res["greedy"] = bench_greedy(args)
    if not args.skip_stumps:
        res["stumps"] = bench_stumps(args)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
