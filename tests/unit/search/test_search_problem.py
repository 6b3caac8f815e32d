"""Problem: selection on validation, reporting on eval; the candidate order."""

from __future__ import annotations

import numpy as np
from search_data import data384

from probekit import search as S
from probekit.search import ArraySource


def test_selection_never_sees_dev():
    """Shuffling dev labels changes reported scores but not what is selected."""
    tr, dv = data384()
    rng = np.random.default_rng(0)
    y_bad = rng.permutation(dv.labels)
    dv_bad = ArraySource(dv._features, y_bad)
    a = S.greedy(tr, dv, k=2, n_random=20)
    b = S.greedy(tr, dv_bad, k=2, n_random=20)
    assert a["selected"] == b["selected"]
    assert b["metrics"]["accuracy"] < 0.65 < a["metrics"]["accuracy"]
