"""C="auto" on a full-width probe: probekit's batched grid vs scikit-learn's LogisticRegressionCV.

Measures, in one process, on the same features, the same grid (``np.logspace(-4, 2, 10)``)
and the same validation split (:func:`probekit.probes.train_val_split`, seed 0):

* probekit: :func:`probekit.probes.select_C` (a full-width probe is wide: the 10 C values
  fitted at once by the matrix-free Newton-CG of :mod:`probekit.probes.newton_cg` on the
  fit part, in C where the native kernels are built, scored on validation) and the refit on
  all of train at the chosen C by :func:`probekit.probes.cselect.refit_wide`, scored on eval
  (median of ``--repeats`` timed runs after one warm-up); and, in the same run, for the
  before/after ratios: the same with the Newton-CG's torch loop (``torch-loop``), the refit
  on the engine (``engine-refit``), and the exact path that was the only one at first (the
  10 C values as ONE batched engine call: ``cselect.WIDE_K`` raised above the width);
* scikit-learn: ``LogisticRegressionCV(Cs=grid, cv=[(fit, val)], refit=True)`` (lbfgs, the
  default solver) on the standardised features, the same predefined split, scoring on eval;
  in the same rotation as probekit's paths, so that load from other processes affects all
  alike; once with the threads the run was given and once with its BLAS limited to one
  (threadpoolctl: its lbfgs gains nothing from a second thread on this size and often loses),
  the ratios taken against the faster of the two.

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
import warnings
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probekit.probes import (
    DEFAULT_C_GRID,
    ProbeEngine,
    cselect,
    newton_cg,
    select_C,
    train_val_split,
)


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


def probekit_auto(Xtr, ytr, Xev, yev, grid, split, path="wide"):
    """``(C, eval accuracy, seconds of the choice alone)`` of ``C="auto"`` on the full width:
    ``path="wide"``: :func:`select_C` (Newton-CG for the choice) and :func:`cselect.refit_wide`
    (Newton-CG in the selection's eigenbasis for the refit); ``"engine-refit"``: the same
    choice, the refit on the engine's dense Newton (before ``refit_wide``); ``"exact"``: the
    exact engine path for the choice too (``cselect.WIDE_K`` raised above the width);
    ``"torch-loop"``: ``"wide"`` with the Newton-CG's torch loop instead of its C
    (:func:`probekit.probes.native.newton_binary`), as before that existed."""
    eng = ProbeEngine()
    full = np.arange(Xtr.shape[1])
    wide_k, native_cg = cselect.WIDE_K, newton_cg._NATIVE_CG
    cselect.WIDE_K = wide_k if path != "exact" else Xtr.shape[1] + 1
    newton_cg._NATIVE_CG = native_cg and path != "torch-loop"
    try:
        t0 = time.perf_counter()
        sel = select_C(eng, Xtr, ytr, full, grid=grid, split=split, metrics=("accuracy",))
        t_sel = time.perf_counter() - t0
        if path in ("wide", "torch-loop"):
            sc = cselect.refit_wide(eng, Xtr, ytr, Xev, yev, full, sel.C, selection=sel)
        else:
            sc = eng.fit_score(Xtr, ytr, Xev, yev, full[None, :], C=sel.C)
    finally:
        cselect.WIDE_K, newton_cg._NATIVE_CG = wide_k, native_cg
    return sel.C, float(sc["accuracy"][0]), t_sel


def sklearn_cv(Xtr, ytr, Xev, yev, grid, split):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(Xtr.astype(np.float64))
    with warnings.catch_warnings():  # (scikit-learn 1.8's notices of coming API changes)
        warnings.simplefilter("ignore", FutureWarning)
        est = LogisticRegressionCV(
            Cs=list(grid), cv=[split], scoring="accuracy", refit=True, max_iter=1000
        ).fit(sc.transform(Xtr.astype(np.float64)), ytr)
    acc = float((est.predict(sc.transform(Xev.astype(np.float64))) == yev).mean())
    return float(est.C_[0]), acc


def timed(fn, *a):
    t0 = time.perf_counter()
    out = fn(*a)
    return time.perf_counter() - t0, out


PATHS = ("wide", "torch-loop", "engine-refit", "exact")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--glue-dir", help="GLUE directory (glue_data/ layout) for real features")
    ap.add_argument("--workdir", default="/tmp/probekit-bench-cauto")
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    Xtr, ytr, Xev, yev, what = load(args)
    grid = list(DEFAULT_C_GRID)
    split = train_val_split(ytr, 0.2, seed=0)
    print(f"data: {what}; train {Xtr.shape}, eval {Xev.shape}; grid {len(grid)} C values")
    load_before = os.getloadavg()[0]
    for path in PATHS:  # warm-up (threads, allocator)
        probekit_auto(Xtr, ytr, Xev, yev, grid, split, path)
    one = "sklearn-1-thread"  # its lbfgs gains nothing from more threads: its best time
    times = {name: [] for name in (*PATHS, "sklearn", one)}
    out, c_sk, acc_sk = {}, None, None
    for r in range(args.repeats):  # interleaved, the order rotating, so load hits all alike
        order = [*PATHS, "sklearn", one]
        for name in order[r % len(order) :] + order[: r % len(order)]:
            if name == "sklearn":
                t, (c_sk, acc_sk) = timed(sklearn_cv, Xtr, ytr, Xev, yev, grid, split)
            elif name == one:
                with threadpool_limits(1):
                    t, _ = timed(sklearn_cv, Xtr, ytr, Xev, yev, grid, split)
            else:
                t, res = timed(probekit_auto, Xtr, ytr, Xev, yev, grid, split, name)
                out.setdefault(name, []).append(res)
            times[name].append(t)
            time.sleep(0.2)  # BLAS worker threads that spin after a call do not slow the next
    med = {name: statistics.median(v) for name, v in times.items()}
    choice = {name: statistics.median(r[2] for r in out[name]) for name in PATHS}
    t_sk = min(med["sklearn"], med[one])  # the ratios: against scikit-learn's best
    fig = {
        "data": what,
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        **{f"probekit_{p.replace('-', '_')}_s": round(med[p], 4) for p in PATHS},
        **{f"probekit_{p.replace('-', '_')}_choice_s": round(choice[p], 4) for p in PATHS},
        "sklearn_cv_s": round(med["sklearn"], 4),
        "sklearn_cv_1_thread_s": round(med[one], 4),
        **{f"ratio_{p.replace('-', '_')}": round(t_sk / med[p], 1) for p in PATHS},
        **{f"C_{p.replace('-', '_')}": out[p][0][0] for p in PATHS},
        "C_sklearn": c_sk,
        **{f"eval_accuracy_{p.replace('-', '_')}": out[p][0][1] for p in PATHS},
        "eval_accuracy_sklearn": acc_sk,
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs",
        "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    lines = [
        f"{p:>12}: {med[p]:.3f} s (choice {choice[p]:.3f} s), {t_sk / med[p]:.1f}x scikit-learn; "
        f"C {out[p][0][0]:.4g}, eval accuracy {out[p][0][1]:.4f}"
        for p in PATHS
    ]
    print(
        f"probekit C=auto (choice + refit + eval), median of {args.repeats} interleaved runs:\n"
        + "\n".join(lines)
        + f"\n     sklearn: LogisticRegressionCV, same grid and split: {med['sklearn']:.3f} s "
        f"(its BLAS limited to 1 thread: {med[one]:.3f} s; ratios against the faster); "
        f"C {c_sk:.4g}, eval accuracy {acc_sk:.4f}\n{fig['machine']}, torch threads "
        f"{fig['threads']}, "
        f"load {fig['load'][0]} -> {fig['load'][1]}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=2) + "\n")


if __name__ == "__main__":
    main()
