"""Sources: ArraySource, the pairing check of a train and an eval source, labels."""

from __future__ import annotations

import numpy as np
import pytest
from search_data import data384

from probekit import search as S
from probekit.errors import CacheMismatchError, DataError
from probekit.search import ArraySource, FeatureSource, describe_source, source_identity
from probekit.tasks import get_task


def test_sources_of_different_tasks_are_refused():
    """Same shape, same metrics, same kind of labels: only the task name differs."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 1, 8)).astype(np.float32)
    y = (X[:, 0, 0] > 0).astype(np.int64)
    sst2 = ArraySource(X, y, task=get_task("sst2"))
    qnli = ArraySource(X, y, task=get_task("qnli"))
    assert sst2.task.metrics == qnli.task.metrics
    with pytest.raises(CacheMismatchError, match=r"task.*sst2.*qnli"):
        S.greedy(sst2, qnli, k=1)
    with pytest.raises(CacheMismatchError, match=r"task.*qnli.*sst2"):
        S.singles(qnli, sst2)
    S.greedy(sst2, ArraySource(X[:30], y[:30], task=get_task("sst2")), k=1, n_random=1)


def test_sources_of_different_shape_or_label_kind_are_refused():
    tr, _ = data384()
    other = ArraySource(np.zeros((10, 2, 8), np.float32), np.arange(10) % 2)
    with pytest.raises(CacheMismatchError, match="hidden_size"):
        S.greedy(tr, other)
    X = np.random.default_rng(0).standard_normal((10, 1, 4)).astype(np.float32)
    reg = ArraySource(X, X[:, 0, 0].astype(np.float64), regression=True)
    cls = ArraySource(X, np.arange(10) % 2)
    with pytest.raises(CacheMismatchError, match="regression"):
        S.greedy(reg, cls, k=1)


def test_unlabelled_eval_is_refused():
    tr, dv = data384()
    unl = ArraySource(dv._features, np.where(np.arange(dv.n_examples) == 0, -1, dv.labels))
    with pytest.raises(DataError, match="unlabelled"):
        S.greedy(tr, unl, k=1)


def test_cache_and_array_source_are_feature_sources():
    from probekit.cache import ActivationCache

    tr, _ = data384()
    assert isinstance(tr, FeatureSource)
    ident = source_identity(tr)
    assert ident["n_layers"] == 2 and ident["hidden_size"] == 384 and ident["task"] == "custom"
    assert "path" not in describe_source(tr)
    members = ("n_examples", "n_layers", "hidden_size", "pools", "task", "labels", "meta")
    assert all(hasattr(ActivationCache, m) for m in (*members, "layer_index", "features"))


def _src(labels, names):
    from probekit.search import ArraySource
    from probekit.taskspec import TaskSpec

    y = np.asarray(labels)
    task = TaskSpec("custom", "custom", ("text",), tuple(names), False, ("accuracy",))
    return ArraySource(np.zeros((len(y), 2, 3), np.float32), y, task=task)


def test_label_map_aligns_a_subset_by_name():
    from probekit.search import load_labels
    from probekit.search.sources import label_map

    tr, ev = _src([0, 1, 2], ["a", "b", "c"]), _src([0, 1, 1], ["c", "a"])
    assert label_map(tr, ev).tolist() == [2, 0]
    assert load_labels(ev, False, "eval", train=tr).tolist() == [2, 0, 0]
    assert label_map(tr, tr) is None


def test_label_map_refuses_labels_the_train_set_lacks():
    from probekit.errors import CacheMismatchError
    from probekit.search import check_pairing

    tr, ev = _src([0, 1], ["neg", "pos"]), _src([0, 1], ["neg", "meh"])
    with pytest.raises(CacheMismatchError, match=r"\['neg', 'pos'\] vs \['neg', 'meh'\]"):
        check_pairing(tr, ev)


def test_label_map_accepts_unused_extra_eval_names():
    from probekit.search import load_labels

    tr, ev = _src([0, 1], ["neg", "pos"]), _src([1, 1], ["meh", "pos"])
    assert load_labels(ev, False, "eval", train=tr).tolist() == [1, 1]


def test_load_labels_refuses_indices_outside_the_label_set():
    from probekit.errors import DataError
    from probekit.search import load_labels

    with pytest.raises(DataError, match=r"label indices \[7\] are outside the label set"):
        load_labels(_src([0, 7], ["neg", "pos"]), False, "eval")
