"""benchmarks/bench_scaling.py runs end to end with ``--quick`` (tiny sizes): the JSON holds
every point of every curve with its fields, the slopes and the whole-call validation, and the
three PNGs are written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.integration
def test_bench_scaling_quick(tmp_path):
    out = tmp_path / "figs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    script = str(REPO / "benchmarks" / "bench_scaling.py")
    r = subprocess.run(
        [sys.executable, script, "--quick", "--threads", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pairs: cost ~ n^" in r.stdout and "greedy: cost ~ D^" in r.stdout
    res = json.loads((out / "bench_scaling.json").read_text())
    assert res["kind"] == "bench_scaling" and res["quick"] and res["threads"] == 1
    assert len(res["load_start"]) == 3 and len(res["load_end"]) == 3

    # --quick: n in (400, 800) at D = 24, D in (24, 48) at n = 800; (800, 24) measured once
    pts = res["search"]["points"]
    assert sorted((p["n"], p["D"]) for p in pts) == [(400, 24), (800, 24), (800, 48)]
    for p in pts:
        pr, gr = p["pairs"], p["greedy"]
        assert pr["n_pairs"] == p["D"] * (p["D"] - 1) // 2
        assert pr["sample_pairs"] == min(4096, pr["n_pairs"])  # one whole unit of the scan
        assert pr["sklearn_pairs"] == 3
        for key in ("all_pairs_s", "per_pair_s", "s_per_pair_per_1k", "speedup_vs_sklearn"):
            assert pr[key] > 0
        # the engine and scikit-learn fit the same objective: held-out accuracy agrees
        assert pr["max_abs_acc_diff_vs_sklearn"] <= 0.02
        assert gr["k"] == 3
        assert gr["n_fits"] == 3 * p["D"] - 3 and gr["s"] > 0 and gr["speedup_vs_sklearn"] > 0
        # --quick: the whole run where n * D <= 20,000, else 3 steps timed; both at the base
        if p["n"] * p["D"] <= 20_000:
            assert gr["mode"] == "whole" and gr["recovered"] == 3  # the planted signal
            assert len(gr["steps_s"]) == 3
        else:
            assert gr["mode"] == "3 steps" and gr["s"] == gr["estimated_s"]
        if (p["n"], p["D"]) == (800, 24):
            assert gr["estimated_over_whole"] > 0 and len(gr["timed_steps_s"]) == 3
        else:
            assert "estimated_over_whole" not in gr
    val = res["search"]["validation"]
    assert val["full_s"] > 0 and val["extrapolated_over_full"] > 0
    assert val["sample_scores_equal_full"]
    fits = res["search"]["fits"]
    assert set(fits) == {"pairs_vs_n", "pairs_vs_D", "greedy_vs_n", "greedy_vs_D"}
    assert all(isinstance(f["slope"], float) and f["points"] == 2 for f in fits.values())

    ex = res["extract"]
    assert [p["batch_size"] for p in ex["by_batch"]] == [4, 8]
    assert [p["seq_len"] for p in ex["by_seq_len"]] == [8, 16]
    for p in ex["by_batch"] + ex["by_seq_len"]:
        assert all(p[f"{m}_tokens_per_s"] > 0 for m in ("bare", "pooled", "tokens"))
        assert p["examples"] == max(p["batch_size"], 64 // p["seq_len"]) and p["rounds"] == 1
    assert all(isinstance(a, float) for a in ex["fits"].values()) and len(ex["fits"]) == 6

    names = sorted(Path(f).name for f in res["figures"])
    assert names == ["scaling_extract.png", "scaling_greedy.png", "scaling_pairs.png"]
    for name in names:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
