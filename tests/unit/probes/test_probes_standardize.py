"""probekit.probes.standardize: statistics as StandardScaler's, input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from probekit.errors import DataError
from probekit.probes import standardization_stats
from probekit.probes.standardize import as_features, standardized_columns


def test_standardization_stats_match_standard_scaler():
    X = np.random.default_rng(0).normal(3, 2, size=(300, 5)).astype(np.float16)
    X[:, 2] = 1.5
    mean, scale = standardization_stats(X)
    ss = StandardScaler().fit(X.astype(np.float64))
    np.testing.assert_allclose(mean, ss.mean_)
    np.testing.assert_allclose(scale, ss.scale_)


def test_standardized_columns_in_row_chunks():
    X = np.random.default_rng(1).normal(size=(50, 6)).astype(np.float16)
    mean, scale = standardization_stats(X)
    cols = np.array([4, 1])
    Xt = standardized_columns(X, cols, mean, scale, torch.device("cpu"), rows_per_chunk=7)
    ref = (X[:, cols].astype(np.float64) - mean[cols]) / scale[cols]
    assert Xt.shape == (2, 50) and Xt.dtype == torch.float32
    np.testing.assert_allclose(Xt.numpy(), ref.T.astype(np.float32))


def test_feature_checks():
    with pytest.raises(DataError, match=r"X: expected a 2-d array \[n_examples, n_dims\]"):
        as_features(np.zeros(3), "X")
    with pytest.raises(DataError, match="X_eval: no examples"):
        as_features(np.zeros((0, 3)), "X_eval")
    with pytest.raises(DataError, match="expected a numeric array"):
        as_features(np.array([["a"]]), "X")
    with pytest.raises(DataError, match="NaN or infinite"):
        standardization_stats(np.array([[1.0], [np.nan]]))
