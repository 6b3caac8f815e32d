"""benchmarks/bench_fresh.py runs end to end on given caches: one fresh ``search pairs``
process per round and code, the table and the JSON with the walls, works and selected pair;
a baseline that would import this same checkout is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _bench(tmp_path: Path, caches, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_fresh.py"), "--rounds", "1"]
    cmd += ["--case", "tiny", str(caches["train"]), str(caches["dev"])]
    cmd += ["--work", str(tmp_path / "work"), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)


@pytest.mark.slow
@pytest.mark.integration
def test_bench_fresh_on_given_caches(tmp_path, tiny_caches):
    r = _bench(tmp_path, tiny_caches, "--json", str(tmp_path / "fresh.json"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "| tiny | this checkout |" in r.stdout
    res = json.loads((tmp_path / "fresh.json").read_text())
    (row,) = res["rows"]
    assert row["case"] == "tiny" and len(row["walls"]) == len(row["work"]) == 1
    assert row["walls"][0] > row["work"][0] > 0 and len(row["selected"]) == 1


@pytest.mark.slow
@pytest.mark.integration
def test_a_baseline_of_the_same_checkout_is_refused(tmp_path, tiny_caches):
    r = _bench(tmp_path, tiny_caches, "--baseline", str(REPO))
    assert r.returncode != 0 and "imports the same probekit" in r.stderr
