"""C="auto" on a full-width probe: probekit's batched grid vs scikit-learn's LogisticRegressionCV.

Measures, in one process, on the same features, the same grid (``np.logspace(-4, 2, 10)``)
and the same validation split (:func:`probekit.probes.train_val_split`, seed 0):

* probekit: :func:`probekit.probes.select_C` (a full-width probe is wide: the 10 C values
  fitted at once by the matrix-free Newton-CG of :mod:`probekit.probes.newton_cg` on the
  fit part, scored on validation) and the refit on all of train at the chosen C on the
  engine, scored on eval (median of ``--repeats`` timed runs after one warm-up); and, in
  the same run, the exact path that was the only one before (the 10 C values as ONE batched
  engine call: ``cselect.WIDE_K`` raised above the width), for the before/after ratio;
* scikit-learn: ``LogisticRegressionCV(Cs=grid, cv=[(fit, val)], refit=True)`` (lbfgs, the
  default solver) on the standardised features, the same predefined split, scoring on eval;
  timed before and after probekit (the mean of the two), so that load from other processes
  affects both sides alike.

Prints the ratios (scikit-learn time / probekit time), the time of the choice alone, both
choices of C and the eval scores.

Data: the last layer's CLS vectors of MiniLM on GLUE CoLA train (first ``--n-train``) and dev,
extracted from ``--glue-dir`` into ``--workdir`` once; without ``--glue-dir``, correlated
synthetic features with a planted signal (stated in the output).

Usage: python benchmarks/bench_cauto.py [--glue-dir DIR] [--n-train N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probekit.probes import DEFAULT_C_GRID, ProbeEngine, cselect, select_C, train_val_split


def load(args):
    """``(Xtr [n, D] float16, ytr, Xev, yev, description)``."""
    if args.glue_dir:
        from probekit.cache import ActivationCache
        from probekit.extract import extract
        from probekit.models import load_encoder
        from probekit.tasks import load_task

        work = Path(args.workdir)
        work.mkdir(parents=True, exist_ok=True)
        paths = {}
        for split, limit in (("train", args.n_train), ("dev", None)):
            paths[split] = work / f"cola-{split}-{limit or 'all'}.h5"
            if not paths[split].exists():
                print(f"extracting CoLA {split} with MiniLM into {paths[split]} (once) ...")
                data = load_task("cola", split, glue_dir=args.glue_dir, limit=limit)
                enc = load_encoder("minilm", device="cpu")
                extract(enc, data, paths[split], store_tokens=False, max_length=128)
        with ActivationCache(paths["train"]) as tr, ActivationCache(paths["dev"]) as dv:
            return (
                tr.features(-1, "cls"), tr.labels, dv.features(-1, "cls"), dv.labels,
                f"MiniLM last-layer CLS, CoLA train[:{args.n_train}] / dev",
            )  # fmt: skip
    rng = np.random.default_rng(0)
    n, m, D = args.n_train, 1000, 384
    A = rng.normal(size=(D, D)) / np.sqrt(D)
    X = rng.normal(size=(n + m, D)) @ A + rng.normal(size=D)
    w = rng.normal(size=D) * (rng.random(D) < 0.1)
    y = (X @ w + 2 * rng.logistic(size=n + m) > np.median(X @ w)).astype(np.int64)
    X = X.astype(np.float16)
    return X[:n], y[:n], X[n:], y[n:], f"synthetic correlated features, n={n}, D={D}"


def probekit_auto(Xtr, ytr, Xev, yev, grid, split, wide=True):
    """``(C, eval accuracy, seconds of the choice alone)``; ``wide=False``: the exact engine
    path for the choice too (as before the wide path)."""
    eng = ProbeEngine()
    full = np.arange(Xtr.shape[1])
    wide_k = cselect.WIDE_K
    cselect.WIDE_K = wide_k if wide else Xtr.shape[1] + 1
    try:
        t0 = time.perf_counter()
        sel = select_C(eng, Xtr, ytr, full, grid=grid, split=split, metrics=("accuracy",))
        t_sel = time.perf_counter() - t0
    finally:
        cselect.WIDE_K = wide_k
    acc = eng.fit_score(Xtr, ytr, Xev, yev, full[None, :], C=sel.C)["accuracy"][0]
    return sel.C, float(acc), t_sel


def sklearn_cv(Xtr, ytr, Xev, yev, grid, split):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(Xtr.astype(np.float64))
    est = LogisticRegressionCV(
        Cs=list(grid), cv=[split], scoring="accuracy", refit=True, max_iter=1000
    ).fit(sc.transform(Xtr.astype(np.float64)), ytr)
    acc = float((est.predict(sc.transform(Xev.astype(np.float64))) == yev).mean())
    return float(est.C_[0]), acc


def timed(fn, *a):
    t0 = time.perf_counter()
    out = fn(*a)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--glue-dir", help="GLUE directory (glue_data/ layout) for real features")
    ap.add_argument("--workdir", default="/tmp/probekit-bench-cauto")
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    Xtr, ytr, Xev, yev, what = load(args)
    grid = list(DEFAULT_C_GRID)
    split = train_val_split(ytr, 0.2, seed=0)
    print(f"data: {what}; train {Xtr.shape}, eval {Xev.shape}; grid {len(grid)} C values")
    t_sk1, (c_sk, acc_sk) = timed(sklearn_cv, Xtr, ytr, Xev, yev, grid, split)
    out = {}
    for wide in (True, False):
        probekit_auto(Xtr, ytr, Xev, yev, grid, split, wide)  # warm-up (threads, allocator)
        runs = [
            timed(probekit_auto, Xtr, ytr, Xev, yev, grid, split, wide) for _ in range(args.repeats)
        ]
        out[wide] = (
            statistics.median(t for t, _ in runs),
            statistics.median(r[2] for _, r in runs),
            *runs[0][1][:2],
        )
    t_sk2, _ = timed(sklearn_cv, Xtr, ytr, Xev, yev, grid, split)
    t_sk = (t_sk1 + t_sk2) / 2
    (t_pk, t_sel, c_pk, acc_pk), (t_old, t_sel_old, c_old, acc_old) = out[True], out[False]
    fig = {
        "data": what,
        "threads": torch.get_num_threads(),
        "probekit_s": round(t_pk, 4),
        "probekit_choice_s": round(t_sel, 4),
        "probekit_exact_path_s": round(t_old, 4),
        "probekit_exact_path_choice_s": round(t_sel_old, 4),
        "sklearn_cv_s": round(t_sk, 4),
        "sklearn_cv_s_before_after": [round(t_sk1, 4), round(t_sk2, 4)],
        "ratio": round(t_sk / t_pk, 1),
        "ratio_exact_path": round(t_sk / t_old, 1),
        "C_probekit": c_pk,
        "C_probekit_exact_path": c_old,
        "C_sklearn": c_sk,
        "eval_accuracy_probekit": acc_pk,
        "eval_accuracy_probekit_exact_path": acc_old,
        "eval_accuracy_sklearn": acc_sk,
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}",
    }
    print(
        f"probekit C=auto (choice + refit), median of {args.repeats}: {t_pk:.3f} s "
        f"(choice {t_sel:.3f} s); exact engine path for the choice: {t_old:.3f} s "
        f"(choice {t_sel_old:.3f} s)\n"
        f"scikit-learn LogisticRegressionCV, same grid and split: {t_sk:.3f} s "
        f"(before {t_sk1:.3f}, after {t_sk2:.3f})\n"
        f"ratio: {fig['ratio']}x faster (exact path: {fig['ratio_exact_path']}x)\n"
        f"chosen C: probekit {c_pk:.4g} (exact path {c_old:.4g}), scikit-learn {c_sk:.4g}; "
        f"eval accuracy: probekit {acc_pk:.4f} (exact path {acc_old:.4f}), scikit-learn "
        f"{acc_sk:.4f}\n{fig['machine']}, torch threads {fig['threads']}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=2) + "\n")


if __name__ == "__main__":
    main()
