"""benchmarks/gpu_check.py runs end to end on the CPU (``--device cpu --quick``): every
check passes and the JSON it writes holds the table's figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_runs_on_cpu_quick(tmp_path):
    out = tmp_path / "gpu_check.json"
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "gpu_check.py"),
            "--device",
            "cpu",
            "--quick",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all checks passed" in r.stdout
    res = json.loads(out.read_text())
    assert res["kind"] == "gpu_check" and res["device"] == "cpu" and res["passed"]
    assert set(res["extract"]) == {"float32", "bfloat16"}
    assert res["engine"]["pairs"] == 128 * 127 // 2 and res["engine"]["accuracy_agreement"] == 1.0
    assert res["finetune"]["resumed_complete"] and res["finetune"]["resumed_at_step"]
    wide = res["wide_cauto"]
    assert wide["same_C"] and wide["max_rel_loss_diff"] < 1e-3 and wide["dims"] == 64
    assert all(res["checks"].values())
