"""run_search (dispatch by name, argument errors) and run_many (fan-out of whole searches)."""

from __future__ import annotations

import numpy as np
import pytest
from search_data import data384, planted, planted_dims

from probekit import search as S
from probekit.errors import CacheMismatchError, ConfigError, DataError
from probekit.search import ArraySource


def test_errors():
    tr, dv = data384()
    other = ArraySource(np.zeros((10, 2, 8), np.float32), np.arange(10) % 2)
    with pytest.raises(CacheMismatchError, match="hidden_size: 384 vs 8"):
        S.greedy(tr, other)
    with pytest.raises(ConfigError, match="k must be >= 1"):
        S.greedy(tr, dv, k=0)
    with pytest.raises(ConfigError, match="start: expected an int, 'all' or a list"):
        S.eliminate(tr, dv, start="5,x")
    with pytest.raises(ConfigError, match="unknown search 'nope'"):
        S.run_search("nope", tr, dv)
    unl = ArraySource(dv._features, np.where(np.arange(dv.n_examples) == 0, -1, dv.labels))
    with pytest.raises(DataError, match="unlabelled"):
        S.greedy(tr, unl, k=1)


def test_run_many_over_tasks_and_seeds(tiny_caches, tmp_path):
    """Fan-out over tasks (here: two sources) and seeds through joblib; cache paths are
    opened in the workers."""
    import joblib

    Xa, ya = planted(300, D=40, L=1)
    Xb, yb = planted(300, D=40, L=1, seed=3)
    specs = [
        dict(verb="greedy", train=ArraySource(Xa, ya), eval=ArraySource(Xb, yb), k=2, seed=s)
        for s in (0, 1)
    ]
    specs.append(
        dict(
            verb="singles",
            train=str(tiny_caches["train"]),
            eval=str(tiny_caches["dev"]),
            layers=[-1],
            out_dir=tmp_path / "tiny",
        )
    )
    with joblib.parallel_config(backend="threading", n_jobs=2):
        res = S.run_many(specs)
    assert [r.verb for r in res] == ["greedy", "greedy", "singles"]
    assert all(set(r["selected"]) == set(planted_dims(40)) for r in res[:2])
    assert (tmp_path / "tiny" / "singles.json").exists()
    with pytest.raises(ConfigError, match="lacks"):
        S.run_many([dict(verb="greedy", train=specs[0]["train"])])
