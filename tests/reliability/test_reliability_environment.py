"""Environment errors are clean errors (issue 11, cases 3 and 5): a full disk and a read-only
file system (real tmpfs mounts), a second writer, a closed pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
from reliability_helpers import Snapshot, fill, refused


def _extract(cli, model, out, *extra):
    return cli(
        "extract", "--model", model, "--limit", 40, "--out", out, "--device", "cpu",
        "--window-tokens", 100, *extra,
    )  # fmt: skip


def test_extract_on_a_full_disk_is_refused_then_works_once_space_is_freed(
    cli, tiny_model_dir, small_disk
):
    filler = fill(small_disk, 60_000)
    out = small_disk / "c.h5"
    refused(_extract(cli, tiny_model_dir, out), "disk is full", "c.h5")
    assert not out.exists()
    filler.unlink()
    rc, _, err = _extract(cli, tiny_model_dir, out)
    assert rc == 0, err
    with h5py.File(out, "r") as f:
        assert bool(f.attrs["complete"]) and f["labels"].shape == (40,)


def test_a_partial_cache_resumes_after_a_full_disk(cli, tiny_model_dir, small_disk, tmp_path):
    """A partial file that was sparse (made before space was reserved) resumes cleanly."""
    out = small_disk / "c.h5"
    assert _extract(cli, tiny_model_dir, tmp_path / "ref.h5")[0] == 0
    part = small_disk / "c.h5.partial"
    rc, _, err = _extract(cli, tiny_model_dir, out)
    assert rc == 0, err
    os.replace(out, part)
    with h5py.File(part, "r+") as f:
        f.attrs["complete"] = False
        f.attrs["n_done"] = 0
    rc, _, err = _extract(cli, tiny_model_dir, out, "--resume")
    assert rc == 0, err
    with h5py.File(out) as a, h5py.File(tmp_path / "ref.h5") as b:
        assert (a["pooled/cls"][:] == b["pooled/cls"][:]).all()


def test_probe_on_a_full_disk_keeps_the_old_result(cli, caches, small_disk):
    out = small_disk / "r.json"
    out.write_text(json.dumps({"old": "x" * 2000}))
    snap = Snapshot(out)
    fill(small_disk, 0)
    r = cli(
        "probe", "--train", caches["demo_train"], "--eval", caches["demo_dev"], "--out", out,
        "--overwrite", "--n-random", 2,
    )  # fmt: skip
    refused(r, "disk is full", "r.json")
    assert snap.unchanged()
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "r.json"]


def test_probe_into_a_read_only_directory(cli, caches, read_only_dir):
    snap = Snapshot(read_only_dir)
    r = cli(
        "probe", "--train", caches["demo_train"], "--eval", caches["demo_dev"],
        "--out", read_only_dir / "new.json", "--n-random", 2,
    )  # fmt: skip
    refused(r, "read-only", "new.json")
    assert snap.unchanged()


def test_extract_into_a_read_only_directory(cli, tiny_model_dir, read_only_dir):
    snap = Snapshot(read_only_dir)
    refused(_extract(cli, tiny_model_dir, read_only_dir / "c.h5"), "read-only", "c.h5")
    assert snap.unchanged()


def test_merge_into_a_read_only_directory(cli, caches, read_only_dir):
    refused(cli("merge", caches["demo_train"], "--out", read_only_dir / "m.h5"), "read-only")


def test_finetune_into_a_read_only_directory(cli, tiny_model_dir, read_only_dir):
    r = cli(
        "finetune", "--model", tiny_model_dir, "--out", read_only_dir / "run", "--limit", 8,
        "--epochs", 1, "--device", "cpu",
    )  # fmt: skip
    refused(r, "read-only", "run")


def test_a_second_writer_is_told_which_process_holds_the_output(cli, tiny_model_dir, tmp_path):
    out = tmp_path / "c.h5"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom probekit._io import writer_lock\n"
            f"with writer_lock({str(out)!r}):\n    print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        err = refused(_extract(cli, tiny_model_dir, out), "being written by process")
        assert str(holder.pid) in err
        assert not out.exists() and not (tmp_path / "c.h5.partial").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_file_does_not_block(cli, tiny_model_dir, tmp_path):
    out = tmp_path / "c.h5"
    (tmp_path / "c.h5.lock").write_text("99999999")  # its writer died: no flock held
    rc, _, err = _extract(cli, tiny_model_dir, out)
    assert rc == 0, err
    assert not (tmp_path / "c.h5.lock").exists()


def test_info_into_a_closed_pipe_is_quiet(caches):
    """A real subprocess: ``probekit info X.h5 | head -c 10``."""
    t0 = time.perf_counter()
    p = subprocess.run(
        f"{Path(sys.executable).parent / 'probekit'} info {caches['demo_dev']} --json | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr
    assert len(p.stdout) == 10
    assert time.perf_counter() - t0 < 60


def test_a_second_finetune_into_the_same_out_is_refused(cli, tiny_model_dir, tmp_path):
    from probekit._io import writer_lock

    out = tmp_path / "run"
    with writer_lock(out):  # as a first run would hold it (flock: per open file, same process)
        r = cli(
            "finetune", "--model", tiny_model_dir, "--out", out, "--limit", 8, "--epochs", 1,
            "--device", "cpu",
        )  # fmt: skip
        refused(r, "being written by process", str(os.getpid()))
    assert not (out / "result.json").exists()


@pytest.mark.parametrize("verb", ["probe", "search"])
def test_a_second_probe_or_search_into_the_same_out_is_refused(cli, caches, tmp_path, verb):
    from probekit._io import writer_lock

    out = tmp_path / ("p.json" if verb == "probe" else "s")
    src = ["--train", caches["demo_train"], "--eval", caches["demo_dev"], "--out", out]
    argv = ["probe", *src, "--dims", "0,1"] if verb == "probe" else ["search", "singles", *src]
    with writer_lock(out):
        refused(cli(*argv), "being written by process", str(os.getpid()))
    assert not out.exists()
    rc, _, err = cli(*argv)  # once the first writer is gone, the same command runs
    assert rc == 0, err
