"""Benchmark of the rankings and the exact-subset scan (issue 12, item 8).

Claim 1, rankings: every ranking of ``probekit search rank`` (mean-diff, f-stat, l1, lca, mi
greedy to 10, stump, greedy to 10 on the engine) on one 384-dimension layer with 10,000
examples (planted: the label depends on 10 known dimensions) in under 2 s each, against a
same-process baseline for each: scikit-learn's ``f_classif`` (mean-diff, f-stat), ``lars_path``
on the data matrix (l1), an unbatched loop of ``slogdet`` per candidate (mi: one step timed,
extrapolated to 10), a scikit-learn depth-1 tree per dimension (stump: 24 dims timed,
extrapolated) and the naive greedy (one sklearn ``LogisticRegression`` per candidate: one step
timed, extrapolated). ``lca`` is a scikit-learn elastic-net fit itself (no baseline).

Claim 2, exact triples over M = 50 (19,600 subsets) in under 5 s, against the scikit-learn
brute force (a ``LogisticRegression`` per triple, 100 triples timed, extrapolated).

    python benchmarks/bench_rankings.py [--quick] [--json OUT]
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

from probekit.probes import class_moments, rank_dimensions
from probekit.search import Problem, SearchConfig, rank_order
from probekit.search.exact import exact_select, subsets

PLANTED = (3, 40, 77, 101, 150, 199, 230, 288, 310, 371)


def planted(n: int, D: int = 384, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D)).astype(np.float32)
    w = np.linspace(1.0, 0.3, len(PLANTED))
    z = X[:, list(PLANTED)] @ w + 0.5 * rng.standard_normal(n)
    return X, (z > 0).astype(np.int64)


def timed(f):
    t0 = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0


def _naive_mi_step(m, chosen):
    D = len(m.mean)
    for j in range(D):
        if j in chosen:
            continue
        s = [*chosen, j]
        v = 0.5 * np.linalg.slogdet(m.cov[np.ix_(s, s)])[1]
        for c in range(len(m.counts)):
            v -= 0.5 * m.counts[c] / m.n * np.linalg.slogdet(m.class_cov[c][np.ix_(s, s)])[1]


def _sk_lr(Xf, yf, Xv, cols):
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1.0, max_iter=200).fit(Xf[:, cols], yf)
    return lr.predict(Xv[:, cols])


def baselines(pb: Problem, X, y, quick: bool) -> dict[str, float]:
    from sklearn.feature_selection import f_classif
    from sklearn.linear_model import lars_path
    from sklearn.tree import DecisionTreeClassifier

    Xf, yf = pb.X_fit.astype(np.float64), pb.y_fit
    Zf = (Xf - Xf.mean(0)) / Xf.std(0)
    out = {}
    _, out["f_classif"] = timed(lambda: f_classif(Xf, yf))
    _, out["lars_path"] = timed(lambda: lars_path(Zf, yf - yf.mean(), method="lasso"))
    m = class_moments(pb.X_fit, yf)
    _, t = timed(lambda: _naive_mi_step(m, list(PLANTED[:5])))
    out["mi_loop"] = t * 10  # one step at k = 6, extrapolated to 10 steps
    n_d = 24
    _, t = timed(
        lambda: [DecisionTreeClassifier(max_depth=1).fit(Xf[:, [j]], yf) for j in range(n_d)]
    )
    out["tree_per_dim"] = t * pb.n_dims / n_d
    n_c = 16 if quick else 48
    Zs = Zf.astype(np.float32)
    Zv = ((pb.X_val - Xf.mean(0)) / Xf.std(0)).astype(np.float32)
    _, t = timed(lambda: [_sk_lr(Zs, yf, Zv, [*PLANTED[:5], j]) for j in range(n_c)])
    out["greedy_sklearn"] = t * pb.n_dims / n_c * 10
    return out


def bench_rankings(quick: bool) -> dict:
    n = 2000 if quick else 10000
    X, y = planted(n)
    Xd, yd = planted(2000, seed=1)
    cfg = SearchConfig(C=1.0, n_random=5)
    pb = Problem(X, y, Xd, yd, config=cfg)
    rows = {}
    for method in ("mean-diff", "f-stat", "l1", "lca", "mi"):
        r, t = timed(lambda m=method: rank_dimensions(pb.X_fit, pb.y_fit, m, max_k=10))
        rows[method] = {"s": t, "top10_planted": len(set(r.order[:10].tolist()) & set(PLANTED))}
    for method in ("stump", "greedy"):
        o, t = timed(lambda m=method: rank_order(pb, m, 10))
        rows[method] = {"s": t, "top10_planted": len(set(o[:10].tolist()) & set(PLANTED))}
    base = baselines(pb, X, y, quick)
    pairs = {
        "mean-diff": "f_classif",
        "f-stat": "f_classif",
        "l1": "lars_path",
        "mi": "mi_loop",
        "stump": "tree_per_dim",
        "greedy": "greedy_sklearn",
    }
    for mth, b in pairs.items():
        rows[mth]["baseline"] = b
        rows[mth]["baseline_s"] = base[b]
        rows[mth]["speedup"] = base[b] / rows[mth]["s"]
    return {"n_examples": n, "D": 384, "rankings": rows}


def bench_exact(quick: bool) -> dict:
    from sklearn.linear_model import LogisticRegression

    X, y = planted(2000 if quick else 10000)
    Xd, yd = planted(2000, seed=1)
    pb = Problem(X, y, Xd, yd, config=SearchConfig(C=1.0, n_random=5))
    cand = np.sort(rank_order(pb, "mean-diff", 50)[:50])
    best, t = timed(lambda: exact_select(pb, 3, cand, 200))
    best4, t4 = timed(lambda: exact_select(pb, 4, cand, 200))
    sets = cand[subsets(50, 3)]
    Xf = pb.X_fit.astype(np.float64)
    Zf = (Xf - Xf.mean(0)) / Xf.std(0)
    n_s = 40 if quick else 100
    pick = np.random.default_rng(0).choice(len(sets), n_s, replace=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, tb = timed(
            lambda: [LogisticRegression(C=1.0).fit(Zf[:, s], pb.y_fit) for s in sets[pick]]
        )
    brute = tb * len(sets) / n_s
    return {
        "m": 50,
        "k": 3,
        "n_subsets": len(sets),
        "s": t,
        "screen_s": best["screen_s"],
        "refit_s": best["refit_s"],
        "selected": best["selected"],
        "planted_in_selected": len(set(best["selected"]) & set(PLANTED)),
        "sklearn_brute_s_extrapolated": brute,
        "speedup": brute / t,
        "quadruples": {"n_subsets": best4["n_subsets"], "s": t4, "selected": best4["selected"]},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    out = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rankings": bench_rankings(a.quick),
        "exact": bench_exact(a.quick),
    }
    r = out["rankings"]["rankings"]
    print(f"rankings on {out['rankings']['n_examples']} x 384 (load {out['load'][0]:.1f}):")
    for m, v in r.items():
        extra = (
            f" vs {v['baseline']} {v['baseline_s']:.2f} s ({v['speedup']:.1f}x)"
            if "baseline" in v
            else ""
        )
        print(f"  {m:>9}: {v['s']:.3f} s, planted in top 10: {v['top10_planted']}/10{extra}")
    e = out["exact"]
    print(
        f"exact triples M=50 ({e['n_subsets']}): {e['s']:.2f} s (screen {e['screen_s']:.2f}, "
        f"refit {e['refit_s']:.2f}) vs sklearn brute force "
        f"{e['sklearn_brute_s_extrapolated']:.1f} s "
        f"({e['speedup']:.0f}x); selected {e['selected']}"
    )
    q = e["quadruples"]
    print(f"exact quadruples M=50 ({q['n_subsets']}): {q['s']:.2f} s; selected {q['selected']}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
