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


@pytest.mark.parametrize(
    "make",
    [
        lambda X: X.astype(np.float16),
        lambda X: X,  # float64: the block must still be a copy (the input is never modified)
        lambda X: np.asfortranarray(X.astype(np.float32)),
        lambda X: X.astype(">f4"),  # not a dtype torch.from_numpy takes
        lambda X: X[::-1],  # negative strides
        lambda X: (X * 10).astype(np.uint16),
        lambda X: np.lib.stride_tricks.as_strided(X, writeable=False),  # read-only
    ],
)
def test_chunked_passes_equal_numpy_bit_for_bit_and_leave_the_input_alone(make):
    X = make(np.random.default_rng(2).normal(1, 3, size=(45, 7)))
    before = X.copy()
    cols = np.array([5, 0, 3])
    mean, scale = standardization_stats(X, rows_per_chunk=8)
    ref64 = np.asarray(X, dtype=np.float64)
    np.testing.assert_allclose(mean, ref64.mean(0), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(scale, ref64.std(0), rtol=1e-14)
    mc, sc = standardization_stats(X, cols=cols, rows_per_chunk=8)
    np.testing.assert_allclose(mc, mean[cols], rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(sc, scale[cols], rtol=1e-15)
    for by_rows in (False, True):
        Xt = standardized_columns(X, cols, mean, scale, torch.device("cpu"), 8, by_rows=by_rows)
        ref = ((ref64[:, cols] - mean[cols]) / scale[cols]).astype(np.float32)  # numpy's rounding
        np.testing.assert_array_equal(Xt.numpy(), ref if by_rows else ref.T)
    everything = standardized_columns(X, np.arange(7), mean, scale, torch.device("cpu"))
    np.testing.assert_array_equal(everything.numpy(), ((ref64 - mean) / scale).T.astype(np.float32))
    np.testing.assert_array_equal(X, before)


def test_columns_must_be_indices():
    X = np.zeros((4, 3), dtype=np.float32)
    with pytest.raises(DataError, match="column indices, got bool"):
        standardization_stats(X, cols=np.array([True, False, True]))
    with pytest.raises(DataError, match=r"must lie in \[0, 3\)"):
        standardized_columns(X, np.array([0, 3]), np.zeros(3), np.ones(3), torch.device("cpu"))
