"""``probekit extract`` and ``info`` from the command line: a real subprocess killed and
resumed to an identical file, and user errors as one line."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import cli
from probekit.cache import ActivationCache, partial_path
from probekit.errors import CacheError

REPO = Path(__file__).resolve().parents[2]


def _cache_arrays(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None
        )
    return out


def test_killed_extraction_resumes_to_identical_file(tiny_model_dir, tmp_path):
    """A real subprocess is SIGKILLed after its first flushed window; --resume finishes it and
    the file equals an uninterrupted run's, dataset by dataset."""
    args = [
        sys.executable,
        str(REPO / "cli.py"),
        "-v",
        "extract",
        "--model",
        str(tiny_model_dir),
        "--task",
        "demo",
        "--split",
        "train",
        "--limit",
        "200",
        "--device",
        "cpu",
        "--batch-size",
        "1",
        "--window-tokens",
        "300",
    ]
    ref = tmp_path / "ref.h5"
    subprocess.run([*args, "--out", str(ref)], check=True, capture_output=True, cwd=tmp_path)
    out = tmp_path / "killed.h5"
    proc = subprocess.Popen(
        [*args, "--out", str(out)], stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stderr.readline()
        if "flushed" in line or not line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists() and partial_path(out).exists(), (
        "the run finished before it could be killed"
    )
    with h5py.File(partial_path(out), "r") as f:
        n_done = int(f.attrs["n_done"])
        assert 0 < n_done < 200 and not f.attrs["complete"]
    with pytest.raises(CacheError, match="partial"):
        ActivationCache(partial_path(out))
    r = subprocess.run([*args, "--out", str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and "pass --resume" in r.stderr  # refuses to clobber the partial file
    r = subprocess.run(
        [*args, "--out", str(out), "--resume"], capture_output=True, text=True, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert f"resumed at example {n_done}" in r.stdout
    a, b = _cache_arrays(ref), _cache_arrays(out)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_cli_extract_info_and_user_errors(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "cli.h5"
    assert (
        cli.main(
            [
                "extract",
                "--model",
                str(tiny_model_dir),
                "--task",
                "demo",
                "--split",
                "dev",
                "--limit",
                "12",
                "--device",
                "cpu",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "wrote" in capsys.readouterr().out
    assert cli.main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "complete" in text and "pooled/max_norm" in text and "demo/dev" in text
    assert (
        cli.main(
            [
                "extract",
                "--model",
                str(tiny_model_dir),
                "--task",
                "mrpc",
                "--split",
                "dev",
                "--glue-dir",
                str(tmp_path),
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "x.h5"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "no MRPC/ directory" in err and "Traceback" not in err
    assert cli.main(["info", str(tmp_path / "nope.h5")]) == 2
    assert "no such cache file" in capsys.readouterr().err


def test_cli_no_background_write_writes_the_same_file(tiny_model_dir, tmp_path):
    args = ["extract", "--model", str(tiny_model_dir), "--task", "demo", "--split", "dev",
            "--limit", "12", "--device", "cpu"]  # fmt: skip
    assert cli.main([*args, "--out", str(tmp_path / "bg.h5")]) == 0
    assert cli.main([*args, "--out", str(tmp_path / "fg.h5"), "--no-background-write"]) == 0
    a, b = _cache_arrays(tmp_path / "bg.h5"), _cache_arrays(tmp_path / "fg.h5")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
