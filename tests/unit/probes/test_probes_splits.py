"""train_val_split is scikit-learn's seeded (stratified) train_test_split, without importing
scikit-learn: the same index sets for every label kind, fraction and seed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from probekit.errors import ConfigError
from probekit.probes.splits import train_val_split


def _labels(kind: str, n: int, rs: np.random.RandomState) -> np.ndarray:
    if kind == "binary":
        return rs.randint(0, 2, n)
    if kind == "imbalanced-3":
        return rs.choice(3, n, p=[0.6, 0.3, 0.1])
    if kind == "regression":
        return rs.randn(n).astype(np.float32)
    if kind == "integer-targets":  # float dtype, whole values: stratified as classes
        return rs.randint(0, 3, n).astype(np.float64)
    return np.repeat(np.arange(4), [n // 4] * 3 + [n - 3 * (n // 4)])  # tied remainders


def _sklearn_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference: the strata train_val_split documents, handed to train_test_split."""
    if np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y, 1) == 0):
        strata = np.searchsorted(np.quantile(y, [0.2, 0.4, 0.6, 0.8]), y, side="right")
    else:
        strata = y
    _, counts = np.unique(strata, return_counts=True)
    n_val = math.ceil(fraction * len(y))
    if counts.min() < 2 or n_val < len(counts) or len(y) - n_val < len(counts):
        strata = None
    tr, va = train_test_split(
        np.arange(len(y)), test_size=fraction, random_state=seed, shuffle=True, stratify=strata
    )
    return np.sort(tr), np.sort(va)


@pytest.mark.parametrize(
    "kind", ["binary", "imbalanced-3", "regression", "integer-targets", "tied-remainders"]
)
def test_split_equals_scikit_learn(kind):
    rs = np.random.RandomState(7)
    for trial in range(60):
        n = int(rs.randint(5, 600))
        y = _labels(kind, n, rs)
        fraction = [0.1, 0.2, 0.25, 0.33, 0.5][trial % 5]
        seed = int(rs.randint(0, 10_000))
        tr, va = train_val_split(y, fraction, seed)
        ref_tr, ref_va = _sklearn_split(y, fraction, seed)
        np.testing.assert_array_equal(tr, ref_tr, err_msg=f"{kind} n={n} f={fraction} s={seed}")
        np.testing.assert_array_equal(va, ref_va, err_msg=f"{kind} n={n} f={fraction} s={seed}")
        assert tr.dtype == va.dtype == np.int64


def test_unstratified_split_equals_scikit_learn():
    y = np.arange(101) % 2
    tr, va = train_val_split(y, 0.3, seed=5, stratify=False)
    ref_tr, ref_va = train_test_split(np.arange(101), test_size=0.3, random_state=5)
    np.testing.assert_array_equal(tr, np.sort(ref_tr))
    np.testing.assert_array_equal(va, np.sort(ref_va))


def test_a_fraction_that_leaves_no_training_examples_is_refused():
    with pytest.raises(ConfigError, match="leaves no training examples out of 2"):
        train_val_split(np.array([0, 1]), 0.9)


def test_splitting_does_not_import_scikit_learn():
    """The point of owning the split: a search's start-up pays no scikit-learn import."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from probekit.probes.splits import train_val_split\n"
        "train_val_split(np.arange(100) % 2, 0.2, 0)\n"
        "print('sklearn' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
