"""probekit.metrics: batch_metrics equals the scikit-learn/scipy reference row by row."""

from __future__ import annotations

import numpy as np
import pytest

from probekit.errors import ConfigError
from probekit.metrics import batch_metrics, compute_metrics, is_regression_metrics, metric_names
from probekit.taskspec import get_task


def test_metric_names_follow_the_task_registry():
    assert metric_names(get_task("cola")) == ("mcc",)
    assert metric_names("sst2") == ("accuracy",)
    assert metric_names("mrpc") == ("f1", "accuracy")
    assert metric_names("qqp") == ("f1", "accuracy")
    assert metric_names("stsb") == ("pearson", "spearman")


def _assert_rows_equal(names, y_true, y_pred):
    got = batch_metrics(names, y_true, y_pred)
    assert list(got) == list(names)
    for b in range(y_pred.shape[0]):
        ref = compute_metrics(names, y_true, y_pred[b])
        for m in names:
            if np.isnan(ref[m]):
                assert np.isnan(got[m][b]), (m, b)
            else:
                assert got[m][b] == pytest.approx(ref[m], abs=1e-12), (m, b)


def test_batch_binary_equals_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 101)
    P = rng.integers(0, 2, (40, 101))
    P[0] = 0  # constant prediction: mcc 0, f1 0
    P[1] = 1
    P[2] = y  # perfect
    P[3] = 1 - y
    _assert_rows_equal(("accuracy", "f1", "mcc"), y, P)


def test_batch_multiclass_equals_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 150)
    P = rng.integers(0, 3, (25, 150))
    P[0] = 2
    _assert_rows_equal(("accuracy", "mcc"), y, P)
    with pytest.raises(ConfigError, match="metric 'f1' is binary F1 of class 1"):
        batch_metrics(("f1",), y, P)


def test_batch_correlations_equal_scipy():
    rng = np.random.default_rng(2)
    y = np.round(rng.uniform(0, 5, 80), 1)  # ties in the truth
    P = rng.normal(size=(20, 80)) + y
    P[0] = np.round(P[0])  # ties in the predictions
    P[1] = 3.0  # constant: NaN
    _assert_rows_equal(("pearson", "spearman"), y, P)


def test_errors_and_kinds():
    with pytest.raises(ConfigError, match="unknown metric"):
        compute_metrics(("auc",), [0, 1], [0, 1])
    with pytest.raises(ConfigError, match="cannot mix classification and regression"):
        is_regression_metrics(("accuracy", "pearson"))
    assert is_regression_metrics(("pearson",)) and not is_regression_metrics(("f1", "accuracy"))
    with pytest.raises(ConfigError, match=r"need y_true \[n\] and y_pred \[B, n\]"):
        batch_metrics(("accuracy",), [0, 1, 1], np.zeros((2, 4)))
