"""Fixtures of the hostile test (issue 11): a tiny BERT, small custom-data files, caches made
from them once per session, and helpers that run the CLI in-process and check that a failure
is a clean one (exit status, a message naming the culprit, no traceback) and that the files
already there are unchanged."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from probekit.cli import main
from probekit.demo import load_demo


@pytest.fixture
def cli(capsys):
    """``cli(*argv) -> (rc, stdout, stderr)``; asserts that no traceback was printed."""

    def run(*argv: object) -> tuple[int, str, str]:
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:  # argparse's usage errors
            rc = int(e.code or 0)
        out, err = capsys.readouterr()
        assert "Traceback" not in err and "Traceback" not in out, err
        return rc, out, err

    return run


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    lines = ["text,label"] + [f'"{t}",{y}' for t, y in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def files(tmp_path_factory) -> dict[str, Path]:
    """Custom-data files: ``train`` (neg/pos), ``eval`` (neg/pos), ``eval_pos`` (only pos),
    ``eval_meh`` (a label the train file lacks)."""
    d = tmp_path_factory.mktemp("rel_files")
    demo = load_demo("train", limit=80)
    names = ("neg", "pos")
    rows = [(t, names[int(y)]) for t, y in zip(demo.texts, demo.labels)]
    dev = load_demo("dev", limit=40)
    dev_rows = [(t, names[int(y)]) for t, y in zip(dev.texts, dev.labels)]
    return {
        "train": _csv(d / "train.csv", rows),
        "eval": _csv(d / "eval.csv", dev_rows),
        "eval_pos": _csv(d / "eval_pos.csv", [r for r in dev_rows if r[1] == "pos"]),
        "eval_meh": _csv(d / "eval_meh.csv", [*dev_rows[:10], (dev_rows[0][0], "meh")]),
    }


@pytest.fixture(scope="session")
def caches(tmp_path_factory, tiny_model_dir, files) -> dict[str, Path]:
    """Caches of :func:`files` (and of the demo task) from the tiny BERT, pooled views only,
    plus ``dev64`` (the demo dev split at --max-length 64)."""
    d = tmp_path_factory.mktemp("rel_caches")
    m = str(tiny_model_dir)
    out = {}
    for name, f in files.items():
        out[name] = d / f"{name}.h5"
        argv = ["extract", "--model", m, "--data", f, "--text-col", "text", "--label-col"]
        argv += ["label", "--out", out[name], "--device", "cpu", "--no-tokens"]
        assert main([str(a) for a in argv]) == 0
    for name, split, extra in (
        ("demo_train", "train", []),
        ("demo_dev", "dev", []),
        ("dev64", "dev", ["--max-length", "64"]),
    ):
        out[name] = d / f"{name}.h5"
        argv = ["extract", "--model", m, "--split", split, "--limit", "60", "--out", out[name]]
        assert main([str(a) for a in [*argv, "--device", "cpu", *extra]]) == 0
    return out


@contextlib.contextmanager
def _mounted(path: Path, *opts: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(opts), "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'not root'})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A real 512 KiB file system (tmpfs; skipped where mounting is not permitted)."""
    if os.geteuid() != 0:
        pytest.skip("full-disk cases need root to mount a small tmpfs")
    with _mounted(tmp_path / "small", "size=512k") as p:
        yield p


@pytest.fixture
def read_only_dir(tmp_path) -> Iterator[Path]:
    """A read-only file system holding one file, ``old.json`` (skipped without root)."""
    if os.geteuid() != 0:
        pytest.skip("read-only cases need root to mount a read-only tmpfs")
    p = tmp_path / "ro"
    with _mounted(p, "size=64k"):
        (p / "old.json").write_text('{"old": true}\n')
        r = subprocess.run(["mount", "-o", "remount,ro", str(p)], capture_output=True)
        if r.returncode != 0:
            pytest.skip("cannot remount the tmpfs read-only")
        yield p
