"""The probe engine against scikit-learn on the real model and real GLUE data.

The parity figures (median and max absolute difference of the eval metric between the
engine and scikit-learn, over random dimension subsets of each size) are compared with the
golden file ``tests/golden/probe_parity.json``: they must stay within its ``tolerance`` of
the recorded figures (a change in the engine's answers shows up here even when it stays
inside the absolute bounds), and within the absolute bounds (median <= 0.002, max <= 0.01).
Regenerate the golden file after an intended change with
``PROBEKIT_UPDATE_GOLDEN=1 pytest tests/integration/test_probe_parity.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from probekit.metrics import batch_metrics
from probekit.probes import ProbeEngine

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "probe_parity.json"
CASES = [("sst2", 3000, "accuracy"), ("cola", 2000, "mcc")]


def _parity_on_real(Xtr, ytr, Xev, yev, metric, n_subsets=200, seed=0):
    """Engine vs scikit-learn LogisticRegression(C=1) per probe on random subsets of sizes 1,
    2, 3, 16 and on all dimensions. scikit-learn runs its exact Newton solver
    (``newton-cholesky``: the same objective as its default lbfgs, solved to the optimum, and
    5x faster here, which keeps this test short; the benchmark compares against lbfgs).
    Returns ``{k: (median |diff|, max |diff|)}``."""
    D = Xtr.shape[1]
    rng = np.random.default_rng(seed)
    report = {}
    for k in (1, 2, 3, 16, D):
        B = 1 if k == D else n_subsets
        dims = np.stack([np.sort(rng.choice(D, k, replace=False)) for _ in range(B)])
        got = ProbeEngine(C=1.0).fit_score(Xtr, ytr, Xev, yev, dims, metrics=(metric,))[metric]
        preds = []
        for d in dims:
            sc = StandardScaler().fit(Xtr[:, d].astype(np.float64))
            lr = LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=1000).fit(
                sc.transform(Xtr[:, d].astype(np.float64)), ytr
            )
            preds.append(lr.predict(sc.transform(Xev[:, d].astype(np.float64))))
        ref = batch_metrics((metric,), yev, np.stack(preds))[metric]
        diff = np.abs(got - ref)
        report[k] = (float(np.median(diff)), float(diff.max()))
    return report


def _update_golden(task: str, limit: int, metric: str, report: dict) -> None:
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    golden.setdefault(
        "about",
        "|engine - scikit-learn| of the eval metric over random dimension subsets of each "
        "size (200 subsets; 1 at full width), MiniLM last-layer CLS, C=1; written by "
        "PROBEKIT_UPDATE_GOLDEN=1 pytest tests/integration/test_probe_parity.py",
    )
    golden.setdefault("tolerance", 0.0025)
    golden.setdefault("figures", {})[task] = {
        "train_limit": limit,
        "metric": metric,
        "by_k": {str(k): {"median": med, "max": mx} for k, (med, mx) in report.items()},
    }
    GOLDEN.write_text(json.dumps(golden, indent=2, sort_keys=True) + "\n")


@pytest.mark.integration
@pytest.mark.parametrize("task,limit,metric", CASES)
def test_real_parity_with_sklearn(minilm_cache, task, limit, metric):
    Xtr, ytr, Xev, yev = _last_cls(minilm_cache, task, limit)
    assert Xtr.dtype == np.float16  # the engine takes the cache's dtype as it is
    report = _parity_on_real(Xtr, ytr, Xev, yev, metric)
    for k, (med, mx) in report.items():
        assert med <= 0.002 and mx <= 0.01, (task, k, med, mx, report)
    if os.environ.get("PROBEKIT_UPDATE_GOLDEN") == "1":
        _update_golden(task, limit, metric, report)
        return
    golden = json.loads(GOLDEN.read_text())
    want = golden["figures"][task]
    tol = golden["tolerance"]
    assert (want["train_limit"], want["metric"]) == (limit, metric)
    assert sorted(want["by_k"], key=int) == [str(k) for k in report]
    for k, (med, mx) in report.items():
        ref = want["by_k"][str(k)]
        assert abs(med - ref["median"]) <= tol and abs(mx - ref["max"]) <= tol, (
            task, k, (med, mx), ref, report,
        )  # fmt: skip


def _sklearn_auto(Xtr, ytr, Xev, yev, grid, split, metric, regression=False):
    """scikit-learn's LogisticRegressionCV-style selection on one split: fit per C on the fit
    part, choose on validation by ``metric`` (ties within max(1e-3, 1/n_val): validation
    loss), refit on all of train at that C, score on eval. Returns ``(C, eval score)``."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import log_loss

    def fit(X, y, C):
        sc = StandardScaler().fit(X.astype(np.float64))
        est = Ridge(alpha=1 / C) if regression else LogisticRegression(C=C, max_iter=5000)
        return sc, est.fit(sc.transform(X.astype(np.float64)), y)

    def score(sc, est, X, y):
        A = sc.transform(X.astype(np.float64))
        p = est.predict(A)
        loss = np.mean((p - y) ** 2) if regression else log_loss(y, est.predict_proba(A))
        return batch_metrics((metric,), y, p[None, :])[metric][0], loss

    itr, iva = split
    curve = np.array([score(*fit(Xtr[itr], ytr[itr], C), Xtr[iva], ytr[iva]) for C in grid])
    tied = curve[:, 0] >= curve[:, 0].max() - max(1e-3, 1 / len(iva))  # one example's worth
    best = int(np.lexsort((np.arange(len(grid)), curve[:, 1], ~tied))[0])
    return grid[best], score(*fit(Xtr, ytr, grid[best]), Xev, yev)[0]


def _last_cls(minilm_cache, task: str, limit: int | None):
    """``(Xtr, ytr, Xev, yev)``: MiniLM last-layer CLS of ``task`` train[:limit] and dev."""
    from probekit.cache import ActivationCache

    with (
        ActivationCache(minilm_cache(task, "train", limit=limit)) as tr,
        ActivationCache(minilm_cache(task, "dev")) as dv,
    ):
        return tr.features(-1, "cls"), tr.labels, dv.features(-1, "cls"), dv.labels


def _cola_auto_problem(minilm_cache):
    """MiniLM last-layer CLS of CoLA train[:1000] and dev, the default C grid, the seeded 0.2
    validation split and the full width: the problem both C='auto' parity tests share."""
    from probekit.probes import DEFAULT_C_GRID, train_val_split

    Xtr, ytr, Xev, yev = _last_cls(minilm_cache, "cola", 1000)
    grid, split = list(DEFAULT_C_GRID), train_val_split(ytr, 0.2, seed=0)
    return Xtr, ytr, Xev, yev, grid, split, np.arange(Xtr.shape[1])


@pytest.mark.integration
def test_auto_C_full_width_matches_sklearn_selection_on_minilm_cola(minilm_cache):
    """C='auto' on CoLA (1,000 training examples, the 384 last-layer CLS dims): probekit's
    choice and full-width dev score equal scikit-learn's selection over the same grid and
    split within 0.5 points; logistic (MCC, CoLA's primary metric) and ridge (Pearson)."""
    from probekit.probes import select_C

    Xtr, ytr, Xev, yev, grid, split, full = _cola_auto_problem(minilm_cache)
    for regression, metric in ((False, "mcc"), (True, "pearson")):
        y, ye = (ytr.astype(np.float64), yev.astype(np.float64)) if regression else (ytr, yev)
        eng = ProbeEngine(regression=regression)
        sel = select_C(eng, Xtr, y, full, grid=grid, split=split, metrics=(metric,))
        ours = eng.fit_score(Xtr, y, Xev, ye, full[None, :], (metric,), C=sel.C)[metric][0]
        c_ref, ref = _sklearn_auto(Xtr, y, Xev, ye, grid, split, metric, regression)
        assert abs(ours - ref) * 100 <= 0.5, (regression, sel.record(), c_ref, ours, ref)
        assert c_ref == sel.C, (regression, sel.record(), c_ref)
        if not regression:
            assert sel.C < 1.0  # the finding: C=1 overfits 1,000 CoLA examples


@pytest.mark.integration
def test_auto_C_estimator_and_wide_refit_on_minilm_cola(minilm_cache):
    """The same CoLA problem through ``LinearProbe(C="auto")`` on both backends and through
    ``refit_wide`` in the selection's eigenbasis: the C of ``select_C``, and dev MCC within
    0.5 points of scikit-learn's selection."""
    from probekit.metrics import compute_metrics
    from probekit.probes import LinearProbe, select_C
    from probekit.probes.cselect import refit_wide

    Xtr, ytr, Xev, yev, grid, split, full = _cola_auto_problem(minilm_cache)
    eng = ProbeEngine()
    sel = select_C(eng, Xtr, ytr, full, grid=grid, split=split, metrics=("mcc",))
    _, ref = _sklearn_auto(Xtr, ytr, Xev, yev, grid, split, "mcc")
    wide = refit_wide(eng, Xtr, ytr, Xev, yev, full, sel.C, metrics=("mcc",), selection=sel)
    assert abs(wide["mcc"][0] - ref) * 100 <= 0.5
    for backend in ("sklearn", "torch"):
        p = LinearProbe(C="auto", scoring="mcc", backend=backend, tol=1e-6).fit(Xtr, ytr)
        assert p.C_ == sel.C, (backend, p.C_selection_, sel.record())
        mcc = compute_metrics(("mcc",), yev, p.predict(Xev))["mcc"]
        assert abs(mcc - ref) * 100 <= 0.5, backend
