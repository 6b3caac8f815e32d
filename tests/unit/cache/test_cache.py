"""probekit.cache without a model: writer -> reader round trips, partial files, schema
refusal, merging shards, and the identity checks of resume and merge."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest

from probekit.cache import (
    SCHEMA_VERSION,
    ActivationCache,
    CacheWriter,
    describe,
    merge_shards,
    partial_path,
)
from probekit.errors import CacheError, CacheMismatchError

L, H = 3, 8  # hidden states, width
LENGTHS = np.array([3, 2, 4, 1, 2, 5], dtype=np.int32)


def _attrs(**kw):
    base = {
        "model": "tiny",
        "model_hash": "abc",
        "tokenizer": "tok",
        "max_length": 16,
        "compute_dtype": "float32",
        "task": "custom",
        "split": "train",
        "text_fields": ["text"],
        "label_names": ["neg", "pos"],
        "is_regression": False,  # the legacy name: written as "regression"
        "metrics": ["accuracy", "f1"],
        "data_hash": "h-all",
        "full_data_hash": "h-all",
        "shard": "",
        "shard_index": "",
        "shard_count": "",
        "window_tokens": 100,
        "n_truncated": 0,
    }
    base.update(kw)
    return base


def _arrays(rows: np.ndarray) -> dict:
    """Deterministic data of examples ``rows`` (so that shards concatenate to the whole)."""
    lengths = LENGTHS[rows]
    pooled = {
        p: np.stack([np.full((L, H), 10 * r + j, np.float16) for r in rows])
        for j, p in enumerate(("cls", "mean", "max_norm"))
    }
    hidden = np.concatenate(
        [np.arange(n * L * H, dtype=np.float16).reshape(n, L, H) + r for r, n in zip(rows, lengths)]
    )
    pos = np.stack([np.full(L, r % 3, np.int16) for r in rows])
    tok = {
        "input_ids": np.concatenate(
            [np.arange(n, dtype=np.int32) + 100 * r for r, n in zip(rows, lengths)]
        ),
        "special_tokens_mask": np.concatenate(
            [np.r_[1, np.zeros(n - 1)].astype(np.uint8) for n in lengths]
        ),
        "word_ids": np.concatenate([np.arange(n, dtype=np.int32) - 1 for n in lengths]),
        "sequence_ids": np.concatenate([np.zeros(n, np.int8) for n in lengths]),
    }
    return dict(lengths=lengths, pooled=pooled, hidden=hidden, pos=pos, tok=tok, labels=rows % 2)


def _create(path, rows, **attrs) -> CacheWriter:
    a = _arrays(rows)
    return CacheWriter.create(
        path,
        attrs=_attrs(**attrs),
        labels=a["labels"].astype(np.int64),
        example_index=rows,
        lengths=a["lengths"],
        n_layers=L,
        hidden_size=H,
        token_ids=a["tok"],
    )


def _write(path, rows=None, windows=((0, 2), (2, 6)), finalize=True, **attrs):
    """A cache of examples ``rows`` (default all 6) written in ``windows`` (positions in rows)."""
    rows = np.arange(6) if rows is None else rows
    a = _arrays(rows)
    off = np.r_[0, np.cumsum(a["lengths"])]
    w = _create(path, rows, **attrs)
    for s, e in windows:
        pooled = {p: v[s:e] for p, v in a["pooled"].items()}
        w.write_window(s, e, pooled, a["pos"][s:e], a["hidden"][off[s] : off[e]])
    if finalize:
        return w.finalize()
    w.close()
    return partial_path(path)


def _datasets(path) -> dict:
    out: dict = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None
        )
    return out


def test_round_trip_features_tokens_labels_meta(tmp_path):
    path = _write(tmp_path / "c.h5")
    a = _arrays(np.arange(6))
    with ActivationCache(path) as c:
        assert (c.n_examples, c.n_layers, c.hidden_size) == (6, L, H)
        assert c.pools == ("cls", "mean", "max_norm") and c.has_tokens
        np.testing.assert_array_equal(c.features(-1, "mean"), a["pooled"]["mean"][:, -1])
        np.testing.assert_array_equal(
            c.features(0, "cls", dims=[5, 1]), a["pooled"]["cls"][:, 0][:, [5, 1]]
        )
        np.testing.assert_array_equal(c.all_layers("max_norm"), a["pooled"]["max_norm"])
        assert c.features(1, "cls", dtype=np.float32).dtype == np.float32
        np.testing.assert_array_equal(c.max_norm_positions(), a["pos"])
        V, off = c.tokens(1, dims=[7, 2])
        np.testing.assert_array_equal(V, a["hidden"][:, 1][:, [7, 2]])
        np.testing.assert_array_equal(off, np.r_[0, np.cumsum(LENGTHS)])
        np.testing.assert_array_equal(c.all_tokens(), a["hidden"])
        np.testing.assert_array_equal(c.lengths, LENGTHS)
        for name, arr in a["tok"].items():
            np.testing.assert_array_equal(c.token_field(name), arr)
        assert c.labels.tolist() == [0, 1, 0, 1, 0, 1] and c.example_index.tolist() == list(
            range(6)
        )
        m = c.meta
        assert m["label_names"] == ["neg", "pos"] and m["complete"] and m["n_done"] == 6
        assert m["regression"] is False and "is_regression" not in m
        t = c.task
        assert t.name == "custom" and t.label_names == ("neg", "pos") and not t.regression
        assert t.metrics == ("accuracy", "f1")
        assert c.layer_index(-1) == 2
        with pytest.raises(Exception, match="layer 3 is out of range"):
            c.layer_index(3)
        with pytest.raises(Exception, match=r"dimension\(s\) \[8\] out of range"):
            c.features(0, "cls", dims=[8])
        with pytest.raises(CacheError, match="no token field 'nope'"):
            c.token_field("nope")


def test_a_glue_task_is_taken_from_the_registry(tmp_path):
    with ActivationCache(_write(tmp_path / "c.h5", task="sst2", label_names=["x", "y"])) as c:
        assert c.task.label_names == ("negative", "positive")


def test_legacy_is_regression_attribute_is_read(tmp_path):
    path = _write(tmp_path / "c.h5", label_names=[], metrics=["pearson"])
    with h5py.File(path, "r+") as f:  # as an old probekit wrote it
        del f.attrs["regression"]
        f.attrs["is_regression"] = True
    with ActivationCache(path) as c:
        assert c.task.regression and c.meta["regression"] is True


def test_partial_file_is_refused_then_described(tmp_path):
    final = tmp_path / "c.h5"
    part = _write(final, windows=((0, 2),), finalize=False)
    with pytest.raises(CacheError, match=r"no such cache file \(an unfinished extraction"):
        ActivationCache(final)
    with pytest.raises(CacheError, match=r"cache is partial \(2 of 6 examples\)"):
        ActivationCache(part)
    with ActivationCache(part, allow_partial=True) as c:
        assert c.meta["n_done"] == 2
    d = describe(final)
    assert d["path"] == str(part) and d["meta"]["complete"] is False
    assert d["datasets"]["pooled/cls"]["shape"] == [6, L, H]


def test_writer_refuses_windows_out_of_order_and_early_finalize(tmp_path):
    w = _create(tmp_path / "c.h5", np.arange(6))
    a = _arrays(np.arange(6))
    with pytest.raises(CacheError, match="window starts at 2 but 0 examples are done"):
        w.write_window(2, 3, {p: v[2:3] for p, v in a["pooled"].items()}, a["pos"][2:3], None)
    with pytest.raises(CacheError, match="finalize with 0 of 6 examples written"):
        w.finalize()
    w.close()


def test_schema_version_and_foreign_files_are_refused(tmp_path):
    path = _write(tmp_path / "c.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(CacheError, match=f"schema version {SCHEMA_VERSION + 1}, this probekit"):
        ActivationCache(path)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=[1])
    with pytest.raises(CacheError, match="not a probekit activation cache"):
        ActivationCache(other)
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(CacheError, match="not a readable HDF5 file"):
        ActivationCache(tmp_path / "text.h5")


def test_corrupt_shapes_are_named(tmp_path):
    path = _write(tmp_path / "c.h5")
    with h5py.File(path, "r+") as f:
        del f["pooled/mean"]
        f["pooled"].create_dataset("mean", data=np.zeros((6, L, H - 1), np.float16))
    with pytest.raises(CacheError, match="corrupt cache, pooled/mean has shape"):
        ActivationCache(path)


def test_resume_checks_every_identity_field_and_names_it(tmp_path):
    final = tmp_path / "c.h5"
    _write(final, windows=((0, 2),), finalize=False)
    ident = dict(_attrs(), storage_dtype="float16", store_tokens=True, n_layers=L, hidden_size=H)
    ident["n_examples"] = 6
    w = CacheWriter.resume(final, ident)
    assert w.n_done == 2
    w.close()
    with pytest.raises(CacheMismatchError, match="max_length: file has 16, this run has 32"):
        CacheWriter.resume(final, dict(ident, max_length=32))
    with pytest.raises(CacheMismatchError, match="full_data_hash: file has 'h-all'"):
        CacheWriter.resume(final, dict(ident, full_data_hash="other"))
    missing = {k: v for k, v in ident.items() if k != "tokenizer"}
    with pytest.raises(CacheMismatchError, match="tokenizer: file has 'tok', this run has None"):
        CacheWriter.resume(final, missing)


def _shards(tmp_path, **changed_in_second):
    s0 = _write(
        tmp_path / "s0.h5",
        np.arange(3),
        ((0, 3),),
        shard="0/2",
        shard_index=0,
        shard_count=2,
        data_hash="h0",
    )
    s1 = _write(
        tmp_path / "s1.h5",
        np.arange(3, 6),
        ((0, 3),),
        shard="1/2",
        shard_index=1,
        shard_count=2,
        data_hash="h1",
        **changed_in_second,
    )
    return s0, s1


def test_merge_of_shards_equals_the_unsharded_file(tmp_path):
    full = _write(tmp_path / "full.h5")
    s0, s1 = _shards(tmp_path)
    out = merge_shards([s1, s0], tmp_path / "merged.h5")
    a, b = _datasets(full), _datasets(out)
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(b[name], a[name], err_msg=name)
    with ActivationCache(out) as c:
        m = c.meta
        assert (
            m["data_hash"] == "h-all"
            and m["shard"] == ""
            and m["merged_from"] == [str(s0), str(s1)]
        )
        assert m["regression"] is False and m["complete"]


def test_merge_refuses_shards_of_different_extractions(tmp_path):
    s0, s1 = _shards(tmp_path, compute_dtype="bfloat16")
    with pytest.raises(CacheMismatchError, match=r"s1.h5 and .*s0.h5 differ in compute_dtype"):
        merge_shards([s0, s1], tmp_path / "m.h5")
    with pytest.raises(CacheMismatchError, match=r"shards \[0\] given; need all of 0..1"):
        merge_shards([s0], tmp_path / "m.h5")
    full = _write(tmp_path / "full.h5")
    with pytest.raises(CacheMismatchError, match="not shards of one extraction"):
        merge_shards([full, s0], tmp_path / "m.h5")


def test_the_cache_does_not_import_the_data_loaders():
    code = "import sys, probekit.cache; print('probekit.tasks' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_nonfinite_check_finds_nan_and_inf_in_any_block():
    """The blocked exponent-bit check sees a NaN or inf wherever it sits (first element, a
    block boundary, the last element), for float16 and float32, and passes finite data."""
    from probekit.cache.reader import _any_nonfinite

    for dtype in (np.float16, np.float32):
        X = np.random.default_rng(0).standard_normal((37, 11)).astype(dtype)
        assert not _any_nonfinite(X, block=64)
        for flat in (0, 63, 64, 65, X.size - 1):
            for bad in (np.nan, np.inf, -np.inf):
                Y = X.copy()
                Y.reshape(-1)[flat] = bad
                assert _any_nonfinite(Y, block=64), (dtype, flat, bad)
                assert _any_nonfinite(Y), (dtype, flat, bad)
        assert _any_nonfinite(np.asfortranarray(Y))  # the non-contiguous path
        assert not _any_nonfinite(np.asfortranarray(X))
