"""Label sets are part of a cache's identity (issue 11, cases 1 and 6)."""

from __future__ import annotations

import json

import h5py
import numpy as np
from reliability_helpers import Snapshot, refused


def _probe(cli, train, ev, out, *extra):
    return cli("probe", "--train", train, "--eval", ev, "--out", out, "--n-random", 2, *extra)


def test_eval_with_a_subset_of_the_labels_is_scored_by_name(cli, caches, tmp_path):
    """Issue case 1: train neg/pos, eval only "pos" (stored there as index 0)."""
    from probekit.cache import ActivationCache
    from probekit.probes import evaluate_probe

    rc, _, err = _probe(cli, caches["train"], caches["eval_pos"], tmp_path / "r.json", "--C", "1.0")
    assert rc == 0, err
    got = json.loads((tmp_path / "r.json").read_text())["metrics"]["accuracy"]
    with ActivationCache(caches["train"]) as tr, ActivationCache(caches["eval_pos"]) as ev:
        assert ev.task.label_names == ("pos",) and tr.task.label_names == ("neg", "pos")
        want = evaluate_probe(
            tr.features(-1, "cls"),
            tr.labels,
            ev.features(-1, "cls"),
            np.ones(ev.n_examples, dtype=np.int64),  # every eval example is "pos" = 1
            np.arange(tr.hidden_size),
            metrics=tr.task.metrics,
            C=1.0,
            seed=0,
            val_fraction=0.2,
            n_random=2,
        )["metrics"]["accuracy"]
    assert got == want


def test_eval_labels_are_aligned_onto_the_train_set(caches):
    from probekit.cache import ActivationCache
    from probekit.search import load_labels

    with ActivationCache(caches["train"]) as tr, ActivationCache(caches["eval_pos"]) as ev:
        y = load_labels(ev, False, "eval", train=tr)
    assert (y == 1).all() and y.size > 0


def test_eval_with_a_label_the_train_set_lacks_is_refused(cli, caches, tmp_path):
    out = tmp_path / "r.json"
    err = refused(_probe(cli, caches["train"], caches["eval_meh"], out), "label sets", "meh")
    assert "['neg', 'pos']" in err and "eval_meh.h5" in err
    assert not out.exists()


def test_search_aligns_eval_labels_by_name(cli, caches, tmp_path):
    rc, _, err = cli(
        "search", "greedy", "--train", caches["train"], "--eval", caches["eval_pos"],
        "--out", tmp_path / "s", "--k", 1, "--layers", "-1",
    )  # fmt: skip
    if rc == 2 and "unrecognized arguments" in err:
        rc, _, err = cli(
            "search", "greedy", "--train", caches["train"], "--eval", caches["eval_pos"],
            "--out", tmp_path / "s2",
        )  # fmt: skip
    assert rc == 0, err


def test_search_refuses_a_foreign_label_set(cli, caches, tmp_path):
    r = cli(
        "search", "greedy", "--train", caches["train"], "--eval", caches["eval_meh"],
        "--out", tmp_path / "s",
    )  # fmt: skip
    refused(r, "label sets", "meh")


def _edited(src, dst, fn):
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as f:
        fn(f)
    return dst


def _set_labels(rows, value):
    """An edit of a cache file: ``labels[rows] = value`` (as a user editing it by hand)."""

    def edit(f):
        y = f["labels"][:]
        y[rows] = value
        f["labels"][:] = y

    return edit


def _without_labels_hash(edit):
    """The same edit on a cache of an earlier version (no ``labels_hash`` to catch it)."""

    def f(h5):
        edit(h5)
        del h5.attrs["labels_hash"]

    return f


def test_labels_edited_after_extraction_fail_the_labels_hash(cli, caches, tmp_path):
    flipped = _edited(caches["demo_dev"], tmp_path / "flip.h5", _flip(3))
    snap = Snapshot(flipped)
    r = _probe(cli, caches["demo_train"], flipped, tmp_path / "r.json")
    refused(r, "flip.h5", "changed after extraction", "labels_hash")
    assert snap.unchanged() and not (tmp_path / "r.json").exists()


def _flip(row):
    def edit(f):
        y = f["labels"][:]
        y[row] = 1 - y[row]  # still a valid class: only the hash can tell
        f["labels"][:] = y

    return edit


def test_label_index_outside_the_label_set_is_refused(cli, caches, tmp_path):
    bad = _edited(caches["demo_dev"], tmp_path / "bad.h5", _without_labels_hash(_set_labels(3, 7)))
    snap = Snapshot(bad)
    refused(_probe(cli, caches["demo_train"], bad, tmp_path / "r.json"), "bad.h5", "[7]")
    assert snap.unchanged() and not (tmp_path / "r.json").exists()


def test_label_index_outside_the_label_set_is_refused_in_train(cli, caches, tmp_path):
    bad = _edited(caches["demo_train"], tmp_path / "badtr.h5", _set_labels(0, 7))
    refused(_probe(cli, bad, caches["demo_dev"], tmp_path / "r.json"), "badtr.h5", "outside")


def test_nan_features_in_the_eval_cache_are_refused(cli, caches, tmp_path):
    def nan(f):
        X = f["pooled/cls"][:]
        X[5, -1, 0] = np.nan
        f["pooled/cls"][:] = X

    bad = _edited(caches["demo_dev"], tmp_path / "nan.h5", nan)
    err = refused(_probe(cli, caches["demo_train"], bad, tmp_path / "r.json"), "nan.h5", "NaN")
    assert "[5]" in err


def test_nan_features_in_a_layer_not_read_are_fine(cli, caches, tmp_path):
    def nan(f):
        X = f["pooled/cls"][:]
        X[5, 0, 0] = np.nan
        f["pooled/cls"][:] = X

    bad = _edited(caches["demo_dev"], tmp_path / "nan0.h5", nan)
    rc, _, err = _probe(cli, caches["demo_train"], bad, tmp_path / "r.json", "--layer", -1)
    assert rc == 0, err


def test_train_and_eval_with_different_max_length_are_refused(cli, caches, tmp_path):
    r = _probe(cli, caches["demo_train"], caches["dev64"], tmp_path / "r.json")
    refused(r, "max_length", "128", "64")


def test_custom_and_glue_label_sets_are_refused_together(cli, caches, tmp_path):
    refused(_probe(cli, caches["train"], caches["demo_dev"], tmp_path / "r.json"), "task")


def test_unlabelled_rows_are_refused(cli, caches, tmp_path):
    bad = _edited(caches["demo_dev"], tmp_path / "unl.h5", _set_labels(slice(0, 2), -1))
    refused(_probe(cli, caches["demo_train"], bad, tmp_path / "r.json"), "unl.h5", "unlabelled")


def test_search_refuses_nan_features(cli, caches, tmp_path):
    def nan(f):
        X = f["pooled/cls"][:]
        X[2, -1, 4] = np.nan
        f["pooled/cls"][:] = X

    bad = _edited(caches["demo_dev"], tmp_path / "nan_s.h5", nan)
    r = cli("search", "greedy", "--train", caches["demo_train"], "--eval", bad,
            "--out", tmp_path / "s")  # fmt: skip
    refused(r, "nan_s.h5", "NaN", "[2]")
