"""probekit.probes.baselines: splits, baselines, control tasks and the probe record."""

from __future__ import annotations

import json

import numpy as np
import pytest
from probe_data import planted

from probekit.errors import ConfigError
from probekit.probes import (
    ProbeEngine,
    control_task_baseline,
    control_task_labels,
    evaluate_probe,
    input_types,
    majority_baseline,
    parse_dims,
    random_dims_baseline,
    selectivity,
    train_val_split,
)
from probekit.provenance import versions


def test_parse_dims():
    """probekit.probes.parse_dims is the one --dims grammar (ranges included)."""
    assert parse_dims("all", 4).tolist() == [0, 1, 2, 3]
    assert parse_dims("12,200", 384).tolist() == [12, 200]
    assert parse_dims("-1", 384).tolist() == [383]
    assert parse_dims("0-3,9", 384).tolist() == [0, 1, 2, 3, 9]
    with pytest.raises(ConfigError, match="'x' is not an integer or a range"):
        parse_dims("12,x", 384)
    with pytest.raises(ConfigError, match=r"\[400\] out of range for 384 dimensions"):
        parse_dims("400", 384)


def test_train_val_split_is_seeded_stratified_disjoint():
    y = np.array([0] * 70 + [1] * 30)
    tr, va = train_val_split(y, 0.2, seed=3)
    assert len(va) == 20 and len(tr) == 80
    assert np.intersect1d(tr, va).size == 0 and np.union1d(tr, va).tolist() == list(range(100))
    assert (y[va] == 1).sum() == 6
    _, va2 = train_val_split(y, 0.2, seed=3)
    np.testing.assert_array_equal(va, va2)
    _, va3 = train_val_split(y, 0.2, seed=4)
    assert not np.array_equal(va, va3)
    _, va_r = train_val_split(np.linspace(0, 5, 50), 0.2, seed=0)  # regression: quintile strata
    assert len(va_r) == 10
    with pytest.raises(ConfigError, match=r"val_fraction must lie in \(0, 1\)"):
        train_val_split(y, 1.5)


def test_majority_and_random_baselines():
    Xtr, ytr, Xev, yev = planted(K=2, seed=4)
    maj = majority_baseline(ytr, yev, ("accuracy", "mcc"))
    major = np.bincount(ytr).argmax()
    assert maj["accuracy"] == pytest.approx((yev == major).mean()) and maj["mcc"] == 0.0
    reg = majority_baseline(np.arange(5.0), np.arange(3.0), ("pearson",), regression=True)
    assert np.isnan(reg["pearson"])
    eng = ProbeEngine()
    rb = random_dims_baseline(
        eng, Xtr, ytr, Xev, yev, k=2, n_draws=15, seed=1, metrics=("accuracy",)
    )
    assert rb["k"] == 2 and rb["n_draws"] == 15 and len(rb["scores"]["accuracy"]) == 15
    assert len({tuple(d) for d in rb["dims"]}) > 1
    assert rb["mean"]["accuracy"] == pytest.approx(np.mean(rb["scores"]["accuracy"]))
    assert (
        random_dims_baseline(eng, Xtr, ytr, Xev, yev, k=2, n_draws=15, seed=1)["dims"] == rb["dims"]
    )


def test_control_task():
    ids = np.array([101, 5, 6, 102, 101, 5, 9, 102, 101, 7, 102])
    off = np.array([0, 4, 8, 11])
    special = np.isin(ids, [101, 102])
    assert input_types(ids, off, special) == [5, 5, 7]
    assert input_types(ids, off, special, mode="sequence") == [(5, 6), (5, 9), (7,)]
    rng = np.random.default_rng(0)
    types_tr = rng.integers(0, 30, 600).tolist()
    types_ev = rng.integers(0, 30, 200).tolist()
    y = rng.integers(0, 2, 600)
    yc_tr, yc_ev = control_task_labels(types_tr, y, types_ev, seed=5)
    table = {}
    for t, lab in zip(types_tr + types_ev, np.concatenate([yc_tr, yc_ev])):
        assert table.setdefault(t, lab) == lab  # one label per type
    again = control_task_labels(list(reversed(types_tr)), y, None, seed=5)[0]
    np.testing.assert_array_equal(again, yc_tr[::-1])  # independent of example order
    # a probe that can read the type memorises the control task; one that cannot, cannot
    X = np.zeros((800, 2), np.float32)
    X[:, 0] = np.asarray(types_tr + types_ev) * 0.1
    X[:, 1] = rng.normal(size=800)
    yy = np.concatenate([y, rng.integers(0, 2, 200)])
    out = control_task_baseline(
        ProbeEngine(), X[:600], yy[:600], X[600:], yy[600:], [[0], [1]], types_tr, types_ev, seed=5
    )
    assert set(out) == {"task", "control", "selectivity"}
    np.testing.assert_allclose(
        out["selectivity"]["accuracy"], out["task"]["accuracy"] - out["control"]["accuracy"]
    )
    assert selectivity({"accuracy": 0.9, "loss": 1}, {"accuracy": 0.6})[
        "accuracy"
    ] == pytest.approx(0.3)


def test_control_task_probe_is_fitted_on_control_labels():
    """Two input types, read off dimension 0; the real labels do not depend on the type. A
    probe on dimension 0 memorises the control task (each type has one control label) but
    cannot predict the real labels, so the control score is high and the task score near
    chance: the control probe must be fitted on the control labels, not the real ones."""
    rng = np.random.default_rng(3)
    types_tr = rng.integers(0, 2, 600).tolist()
    types_ev = rng.integers(0, 2, 300).tolist()
    t = np.asarray(types_tr + types_ev)
    X = np.stack([t + 0.05 * rng.normal(size=900), rng.normal(size=900)], 1).astype(np.float32)
    y = rng.integers(0, 2, 900)
    seed = next(  # a seed for which the two types draw different control labels
        s
        for s in range(50)
        if len(np.unique(control_task_labels(types_tr, y[:600], types_ev, seed=s)[0])) == 2
    )
    yc_tr, yc_ev = control_task_labels(types_tr, y[:600], types_ev, seed=seed)
    eng = ProbeEngine()
    out = control_task_baseline(
        eng, X[:600], y[:600], X[600:], y[600:], [[0]], types_tr, types_ev, seed=seed
    )
    assert out["control"]["accuracy"][0] == 1.0
    assert out["task"]["accuracy"][0] < 0.6
    ref = eng.fit_score(X[:600], yc_tr, X[600:], yc_ev, [[0]], metrics=("accuracy",))
    np.testing.assert_array_equal(out["control"]["loss"], ref["loss"])
    assert out["selectivity"]["accuracy"][0] == pytest.approx(out["task"]["accuracy"][0] - 1.0)


def test_evaluate_probe_builds_the_whole_record():
    """The record ``probekit probe`` writes, built by the library: strict JSON, tagged
    ``kind: probe``, ``elapsed_s``, versions from probekit.provenance, the deprecated
    ``command`` / ``wall_time_s`` duplicates, and what the caller passes in."""
    Xtr, ytr, Xev, yev = planted(K=2, seed=8)
    types_tr = (np.arange(len(ytr)) % 50).tolist()
    types_ev = (np.arange(len(yev)) % 50).tolist()
    rec = evaluate_probe(
        Xtr, ytr, Xev, yev, "0-3", metrics=("accuracy", "f1"), C=0.5, seed=2, n_random=4,
        types_train=types_tr, types_eval=types_ev,
        task="sst2", layer=6, layer_arg=-1, pool="mean", config={"from": "test"},
    )  # fmt: skip
    json.dumps(rec, allow_nan=False)
    assert rec["kind"] == "probe" and rec["command"] == "probe"
    assert (rec["task"], rec["layer"], rec["layer_arg"], rec["pool"]) == ("sst2", 6, -1, "mean")
    assert rec["dims"] == [0, 1, 2, 3] and rec["k"] == 4
    assert rec["n_train"] == len(ytr) and rec["n_eval"] == len(yev)
    assert set(rec["metrics"]) == {"accuracy", "f1"} and rec["converged"] is True
    assert rec["random_baseline"]["n_draws"] == 4 and rec["random_baseline"]["seed"] == 2
    assert set(rec["control"]["selectivity"]) == {"accuracy", "f1"}
    assert rec["probe"] == {"kind": "logistic", "C": 0.5, "standardized": "train mean/std"}
    assert rec["seed"] == 2 and rec["config"] == {"from": "test"}
    assert rec["versions"] == versions()
    assert rec["elapsed_s"] == rec["wall_time_s"] >= 0
    ref = ProbeEngine(C=0.5).fit_score(Xtr, ytr, Xev, yev, [[0, 1, 2, 3]], metrics=("accuracy",))
    assert rec["metrics"]["accuracy"] == pytest.approx(ref["accuracy"][0])
    # the old call: no provenance of the features given, none recorded; default config
    old = evaluate_probe(Xtr, ytr, Xev, yev, [3, 17], metrics=("accuracy",), n_random=0)
    assert not {"task", "layer", "layer_arg", "pool"} & set(old)
    assert old["config"]["C"] == "auto" and old["C"]["mode"] == "auto"  # the default (issue 12)
    assert old["config"]["control"] is False
    assert old["random_baseline"]["n_draws"] == 0 and "control" not in old
    regr = evaluate_probe(
        Xtr, Xtr[:, 0].astype(float), Xev, Xev[:, 0].astype(float), "all",
        metrics=("pearson",), regression=True,
    )  # fmt: skip
    assert regr["probe"]["kind"] == "ridge" and regr["k"] == 24
    assert regr["random_baseline"]["n_draws"] == 0  # full width: every draw is the full probe
