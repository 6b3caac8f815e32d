"""Extraction with the background writer: the same file as writing in the caller, a failure
in the writer thread raised in the caller (the partial file resumes), and an interrupted
forward loop that stops the writer thread."""

from __future__ import annotations

import threading
from pathlib import Path

import h5py
import numpy as np
import pytest

import probekit.forward as forward_module
from probekit.cache import CacheWriter, partial_path
from probekit.extract import extract
from probekit.models import load_encoder
from probekit.tasks import load_demo

_SETTINGS = {"progress": False, "window_tokens": 300, "batch_size": 7}


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_encoder(str(tiny_model_dir), device="cpu")


def _contents(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Every dataset, and every root attribute but the creation time (as strings)."""
    data: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda n, o: data.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None
        )
        attrs = {k: str(v) for k, v in f.attrs.items() if k != "created"}
    return data, attrs


def _assert_same(a: Path, b: Path) -> None:
    (da, aa), (db, ab) = _contents(a), _contents(b)
    assert da.keys() == db.keys() and aa == ab
    for k in da:
        assert da[k].dtype == db[k].dtype, k
        np.testing.assert_array_equal(da[k], db[k], err_msg=k)


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("probekit-writer")]


@pytest.mark.parametrize("tokens", [True, False], ids=["tokens", "pooled"])
def test_background_writer_writes_the_same_file(tiny, tmp_path, tokens):
    data = load_demo("train", limit=120)
    on = extract(tiny, data, tmp_path / "on.h5", store_tokens=tokens, **_SETTINGS).path
    off = extract(
        tiny, data, tmp_path / "off.h5", store_tokens=tokens, background_write=False, **_SETTINGS
    ).path
    with h5py.File(on, "r") as f:
        assert f.attrs["complete"] and int(f.attrs["n_done"]) == 120
    _assert_same(on, off)
    assert not _writer_threads()


def test_writer_thread_failure_surfaces_and_partial_file_resumes(tiny, tmp_path, monkeypatch):
    data = load_demo("train", limit=120)
    ref = extract(tiny, data, tmp_path / "ref.h5", **_SETTINGS).path
    real, calls = CacheWriter.write_window, []

    def flaky(self, start, stop, *args):
        calls.append(threading.current_thread().name)
        if len(calls) == 2:
            raise OSError("simulated write failure in window 2")
        return real(self, start, stop, *args)

    monkeypatch.setattr(CacheWriter, "write_window", flaky)
    out = tmp_path / "cut.h5"
    with pytest.raises(OSError, match="simulated write failure"):
        extract(tiny, data, out, **_SETTINGS)
    assert calls[0].startswith("probekit-writer") and len(calls) == 2  # later windows skipped
    assert not _writer_threads() and not out.exists()
    with h5py.File(partial_path(out), "r") as f:
        n_done = int(f.attrs["n_done"])
        assert 0 < n_done < 120 and not f.attrs["complete"]
    monkeypatch.setattr(CacheWriter, "write_window", real)
    report = extract(tiny, data, out, resume=True, **_SETTINGS)
    assert report.resumed_from == n_done
    _assert_same(ref, out)


def test_interrupted_forward_loop_stops_the_writer_thread(tiny, tmp_path, monkeypatch):
    data = load_demo("train", limit=120)
    ref = extract(tiny, data, tmp_path / "ref.h5", **_SETTINGS).path
    real, calls = forward_module.forward_batch, []  # what the window loop calls

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 12:
            raise KeyboardInterrupt("simulated Ctrl-C")
        return real(*args)

    monkeypatch.setattr(forward_module, "forward_batch", interrupted)
    out = tmp_path / "cut.h5"
    with pytest.raises(KeyboardInterrupt, match="simulated Ctrl-C"):
        extract(tiny, data, out, **_SETTINGS)
    assert not _writer_threads() and not out.exists()
    with h5py.File(partial_path(out), "r") as f:
        n_done = int(f.attrs["n_done"])
        assert 0 < n_done < 120
    monkeypatch.setattr(forward_module, "forward_batch", real)
    assert extract(tiny, data, out, resume=True, **_SETTINGS).resumed_from == n_done
    _assert_same(ref, out)
