"""Extraction into the cache: known answers against a direct transformers forward pass,
pooled views against their recomputation, resume checks, shards, and bad input."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from probekit.cache import ActivationCache, merge_shards, partial_path
from probekit.errors import CacheError, CacheMismatchError, ConfigError
from probekit.extract import extract
from probekit.models import load_encoder
from probekit.tasks import load_demo, load_task


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_encoder(str(tiny_model_dir), device="cpu")


def _pair_fixture(tmp_path: Path) -> Path:
    g = tmp_path / "glue"
    (g / "RTE").mkdir(parents=True)
    rows = ["index\tsentence1\tsentence2\tlabel"]
    words = [
        "the",
        "cat",
        "sat",
        "on",
        "a",
        "mat",
        "while",
        "dogs",
        "ran",
        "far",
        "away",
        "from",
        "home",
    ]
    rng = np.random.default_rng(0)
    for i in range(30):
        a = " ".join(rng.choice(words, size=int(rng.integers(3, 12))))
        b = " ".join(rng.choice(words, size=int(rng.integers(2, 8))))
        rows.append(f"{i}\t{a}.\t{b}.\t{'entailment' if i % 3 else 'not_entailment'}")
    (g / "RTE" / "dev.tsv").write_text("\n".join(rows) + "\n")
    return g


def _direct_hidden(lm, text: str, pair: str | None) -> np.ndarray:
    """[n_layers, t, H] from a plain transformers forward pass of one example (no padding)."""
    enc = lm.tokenizer(text, pair, return_tensors="pt", truncation=True, max_length=128)
    with torch.inference_mode():
        out = lm.model(**enc, output_hidden_states=True)
    return torch.stack(out.hidden_states).squeeze(1).numpy()


def _check_against_direct(lm, data, path: Path, rows) -> None:
    with ActivationCache(path) as c:
        off = c.offsets
        for layer in range(c.n_layers):
            V, _ = c.tokens(layer)
            for i in rows:
                ref = _direct_hidden(lm, data.texts[i], data.pairs[i] if data.pairs else None)[
                    layer
                ]
                got = V[off[i] : off[i + 1]].astype(np.float32)
                assert got.shape == ref.shape
                np.testing.assert_allclose(got, ref, rtol=2e-3, atol=2e-3)


def test_cache_equals_direct_forward_single_and_pair(tiny, tmp_path):
    data = load_demo("dev", limit=40)
    out = extract(tiny, data, tmp_path / "demo.h5", batch_size=8, progress=False).path
    _check_against_direct(tiny, data, out, range(40))
    pair = load_task("rte", "dev", glue_dir=_pair_fixture(tmp_path))
    out2 = extract(tiny, pair, tmp_path / "rte.h5", batch_size=7, progress=False).path
    _check_against_direct(tiny, pair, out2, range(len(pair)))
    with ActivationCache(out2) as c:
        assert c.task.name == "rte" and c.labels.tolist() == pair.labels.tolist()
        seq = c.token_field("sequence_ids")
        assert set(np.unique(seq)) == {-1, 0, 1}  # both sentences of each pair are there


def test_pooled_views_equal_recomputation_from_tokens(tiny, tmp_path):
    data = load_demo("train", limit=60)
    path = extract(tiny, data, tmp_path / "p.h5", batch_size=16, progress=False).path
    with ActivationCache(path) as c:
        off = c.offsets
        special = c.token_field("special_tokens_mask").astype(bool)
        pos = c.max_norm_positions()
        for layer in (0, 1, -1):
            V, _ = c.tokens(layer, dtype=np.float32)
            cls_, mean, mx = (
                c.features(layer, p, dtype=np.float32) for p in ("cls", "mean", "max_norm")
            )
            for i in range(c.n_examples):
                tok = V[off[i] : off[i + 1]]
                content = ~special[off[i] : off[i + 1]]
                np.testing.assert_allclose(cls_[i], tok[0], atol=1e-6)
                np.testing.assert_allclose(mean[i], tok[content].mean(0), rtol=2e-3, atol=2e-3)
                p = pos[i, c.layer_index(layer)]
                assert content[p]
                np.testing.assert_allclose(mx[i], tok[p], atol=1e-6)
                norms = np.linalg.norm(tok, axis=1)
                assert (
                    norms[p] >= norms[content].max() - 1e-2
                )  # float16 storage may reorder near-ties


def test_features_layers_dims_and_reader_api(tiny, tmp_path):
    data = load_demo("dev", limit=20)
    path = extract(tiny, data, tmp_path / "f.h5", progress=False, storage_dtype="float32").path
    with ActivationCache(path) as c:
        assert c.n_layers == 3 and c.hidden_size == 32 and c.n_examples == 20
        full = c.features(-1, "cls")
        assert full.dtype == np.float32 and full.shape == (20, 32)
        np.testing.assert_array_equal(c.features(2, "cls", dims=[5, 1]), full[:, [5, 1]])
        np.testing.assert_array_equal(c.all_layers("mean")[:, 0], c.features(0, "mean"))
        V, _off = c.tokens(-1, dims=[7, 3, 7])
        W, _ = c.tokens(-1)
        np.testing.assert_array_equal(V, W[:, [7, 3, 7]])
        with pytest.raises(ConfigError, match="layer 3 is out of range"):
            c.features(3)
        with pytest.raises(ConfigError, match="pool 'first'"):
            c.features(0, "first")
        with pytest.raises(ConfigError, match=r"dimension\(s\) \[32\]"):
            c.features(0, "cls", dims=[32])
        labels = c.labels
        labels[:] = 99  # the reader hands out copies
        assert (c.labels != 99).all()


def test_no_tokens_and_truncation_counted(tiny, tmp_path):
    data = load_demo("dev", limit=10)
    rep = extract(tiny, data, tmp_path / "t.h5", max_length=6, store_tokens=False, progress=False)
    assert rep.n_truncated == 10
    with ActivationCache(rep.path) as c:
        assert (
            not c.has_tokens and c.meta["n_truncated"] == 10 and int(c._f["lengths"][:].max()) == 6
        )
        with pytest.raises(CacheError, match="without token-level vectors"):
            c.tokens(0)


def _cache_arrays(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None
        )
    return out


def test_resume_refuses_other_settings_and_keeps_partial(tiny, tmp_path):
    data = load_demo("dev", limit=30)
    out = tmp_path / "r.h5"
    extract(tiny, data, out, progress=False, window_tokens=100)
    os.replace(out, partial_path(out))  # pretend it stopped (identity attrs are what matter)
    before = partial_path(out).read_bytes()
    with pytest.raises(CacheMismatchError, match="max_length"):
        extract(tiny, data, out, max_length=64, resume=True, progress=False, window_tokens=100)
    with pytest.raises(CacheMismatchError, match="data_hash"):
        extract(
            tiny, load_demo("dev", limit=29), out, resume=True, progress=False, window_tokens=100
        )
    assert partial_path(out).read_bytes() == before


def test_shards_merge_to_unsharded(tiny, tmp_path):
    data = load_demo("dev", limit=50)
    whole = extract(tiny, data, tmp_path / "whole.h5", progress=False).path
    parts = [
        extract(tiny, data, tmp_path / f"s{i}.h5", shard=f"{i}/3", progress=False).path
        for i in range(3)
    ]
    with ActivationCache(parts[1]) as c:
        assert c.meta["shard"] == "1/3" and c.example_index[0] > 0
    with pytest.raises(CacheMismatchError, match=r"need all of 0\.\.2"):
        merge_shards(parts[:2], tmp_path / "bad.h5")
    merged = merge_shards([parts[2], parts[0], parts[1]], tmp_path / "merged.h5")
    with h5py.File(parts[1], "r+") as f:  # a shard made before the max-norm tie rule
        assert f.attrs["max_norm_tie"] == 1e-5
        del f.attrs["max_norm_tie"]
    with pytest.raises(CacheMismatchError, match="max_norm_tie"):
        merge_shards(parts, tmp_path / "mixed.h5")
    a, b = _cache_arrays(whole), _cache_arrays(merged)
    assert a.keys() == b.keys()
    # LayerNorm output of a random model gives every token the same norm up to round-off,
    # which differs between batchings: the tie rule (pooling.MAX_NORM_TIE) picks the same
    # token in both (before it, 2-50% of choices flipped; real norms can still flip at the
    # tolerance's edge, so this holds for the degenerate model, not in general)
    np.testing.assert_array_equal(a["pooled/max_norm_pos"], b["pooled/max_norm_pos"])
    for k in a:
        if a[k].dtype.kind == "f":
            np.testing.assert_allclose(
                a[k].astype(np.float32), b[k].astype(np.float32), rtol=2e-3, atol=2e-3, err_msg=k
            )
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    with ActivationCache(merged) as c:
        assert c.meta["data_hash"] == data.fingerprint()


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(CacheError, match="no such cache file"):
        ActivationCache(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(CacheError, match="not a readable HDF5 file"):
        ActivationCache(junk)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(CacheError, match="not a probekit activation cache"):
        ActivationCache(foreign)


def test_truncated_file_is_reported(tiny, tmp_path):
    path = extract(tiny, load_demo("dev", limit=20), tmp_path / "c.h5", progress=False).path
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CacheError, match=str(path.name)), ActivationCache(path) as c:
        c.tokens(-1)


def test_existing_output_is_not_clobbered(tiny, tmp_path):
    path = extract(tiny, load_demo("dev", limit=5), tmp_path / "c.h5", progress=False).path
    before = path.read_bytes()
    with pytest.raises(CacheError, match="pass --overwrite"):
        extract(tiny, load_demo("dev", limit=6), path, progress=False)
    assert path.read_bytes() == before
