"""Atomic writes and strict JSON (probekit._io); versions, hashes, identity checks (provenance)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from probekit._io import atomic_path, atomic_write_text, to_jsonable, write_json
from probekit.errors import CacheMismatchError
from probekit.provenance import (
    CACHE_IDENTITY_FIELDS,
    PAIRING_FIELDS,
    check_same,
    mismatches,
    stable_hash,
    versions,
)


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path):
    p = tmp_path / "r.json"
    p.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(p) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert p.read_text() == "old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["r.json"]  # no temporary left


def test_atomic_write_replaces_and_suffix_is_kept(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    with atomic_path(tmp_path / "m.npy", suffix=".npy") as tmp:
        assert tmp.name.endswith(".npy")
        np.save(tmp, np.arange(3))
    assert np.load(tmp_path / "m.npy").tolist() == [0, 1, 2]


def test_write_json_is_strict(tmp_path):
    obj = {
        "a": np.float32(0.5),
        "b": np.int64(3),
        "c": float("nan"),
        "d": (1, 2),
        "e": np.arange(2),
    }
    write_json(tmp_path / "x.json", obj)
    back = json.loads((tmp_path / "x.json").read_text())
    assert back == {"a": 0.5, "b": 3, "c": None, "d": [1, 2], "e": [0, 1]}
    assert to_jsonable({"x": np.bool_(True), "y": math.inf}) == {"x": True, "y": None}


def test_versions_and_hash():
    v = versions()
    assert {"probekit", "python", "numpy", "torch", "transformers", "scikit-learn"} <= set(v)
    assert stable_hash({"b": 1, "a": [1, 2]}) == stable_hash({"a": [1, 2], "b": 1})
    assert len(stable_hash("x", 16)) == 16


def test_identity_fields_and_check_same_name_every_difference():
    assert set(PAIRING_FIELDS) <= set(CACHE_IDENTITY_FIELDS)
    a = {"model_hash": "m1", "tokenizer": "t", "task": "sst2", "max_length": 128}
    b = dict(a, model_hash="m2", max_length=64)
    assert [k for k, _, _ in mismatches(a, b, PAIRING_FIELDS)] == ["model_hash", "max_length"]
    with pytest.raises(
        CacheMismatchError, match=r"train.h5 and dev.h5 differ in model_hash.*max_length"
    ):
        check_same(a, b, PAIRING_FIELDS, what_a="train.h5", what_b="dev.h5")
    check_same(a, dict(a), PAIRING_FIELDS, what_a="x", what_b="y")
