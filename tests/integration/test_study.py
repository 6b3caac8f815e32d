"""The smoke study end to end on a tiny random BERT and GLUE-layout fixtures (a single-sentence
task, a sentence-pair task and a regression task): every experiment produces its table, every
claim its verdict; the report rebuilds identically; a killed study resumes to the same results;
the Dask and Ray backends give the serial results."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from probekit.cli import main
from probekit.probes import newton
from probekit.study import CLAIMS, StudyConfig, load_study, study, write_study_report

REPO = Path(__file__).resolve().parents[2]
TASKS = "sst2,rte,stsb"


def _scores(out: Path) -> dict[str, dict]:
    """``run_id -> (scores, probe)`` of every finished run."""
    res = {}
    for f in sorted((out / "runs").glob("*/scores.json")):
        rec = json.loads(f.read_text())
        res[rec["run_id"]] = (rec["scores"], rec["probe"])
    return res


def _args(tiny_model_dir, glue_fixture, out, *extra) -> list[str]:
    return [
        "study", "--model", str(tiny_model_dir), "--tasks", TASKS, "--glue-dir",
        str(glue_fixture), "--budget", "smoke", "--out", str(out), "--threads", "1", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def smoke(tiny_model_dir, glue_fixture, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("study") / "smoke"
    assert main(_args(tiny_model_dir, glue_fixture, out)) == 0
    return out


def test_smoke_study_answers_every_claim(smoke, capsys):
    rec = json.loads((smoke / "study.json").read_text())
    assert rec["complete"] and rec["kind"] == "study" and rec["tasks"] == TASKS.split(",")
    plan = json.loads((smoke / "plan.json").read_text())
    res = load_study(smoke)
    assert not res.pending and len(_scores(smoke)) == plan["n_runs"]
    exps = {e["experiment"] for e in plan["entries"]}
    assert exps >= {"token", "dims", "layers", "freeze", "cross", "beyond"}
    for t in TASKS.split(","):  # pairs and regression go through every experiment too
        assert {e["experiment"] for e in plan["entries"] if e["task"] == t} >= {
            "token", "dims", "layers", "freeze"
        }  # fmt: skip
    md = (smoke / "report" / "report.md").read_text()
    for title in ("Token-wise", "Dimension-wise", "Layer-wise", "Freezing", "Cross-task"):
        assert f"## {title}" in md
    claims = md.split("## Claims")[1].split("\n## ")[0]
    for v in CLAIMS.values():
        assert v[0] in claims
    assert sum(claims.count(f"**{w}**") for w in ("holds", "does not hold", "inconclusive")) == (
        len(CLAIMS)
    )
    for png in ("tokens", "dims_k", "layers", "freeze", "cross", "probe_vs_finetune"):
        assert (smoke / "report" / f"{png}.png").stat().st_size > 0
    rows = (smoke / "report" / "results.csv").read_text().splitlines()
    assert len(rows) == len(plan["entries"]) + 1
    probes = json.loads((smoke / "probes" / "rte" / "probe.json").read_text())
    assert len(probes["best_pair"]) == 2 and len(probes["ranked"]["3"]) == 3
    stsb = [s for s, _ in _scores(smoke).values() if "stsb" in s]
    assert stsb and all("pearson" in s["stsb"] for s in stsb)


def test_models_kept_only_where_a_later_run_starts_from_them(smoke):
    plan = json.loads((smoke / "plan.json").read_text())
    starts = {r["start_from"] for r in plan["runs"] if r["start_from"]}
    for r in plan["runs"]:
        assert (smoke / "runs" / r["run_id"] / "model").is_dir() == (r["run_id"] in starts)


def test_rerun_skips_everything_and_report_rebuilds_identically(
    smoke, tiny_model_dir, glue_fixture, capsys
):
    csv = (smoke / "report" / "results.csv").read_bytes()
    before = {f: f.stat().st_mtime_ns for f in (smoke / "runs").glob("*/scores.json")}
    assert main(_args(tiny_model_dir, glue_fixture, smoke)) == 0
    assert {f: f.stat().st_mtime_ns for f in (smoke / "runs").glob("*/scores.json")} == before
    assert (smoke / "report" / "results.csv").read_bytes() == csv  # same runs, same scores
    report = (smoke / "report" / "report.md").read_bytes()  # (the study's wall time changed)
    (smoke / "report" / "report.md").unlink()
    assert main(["report", str(smoke)]) == 0
    assert (smoke / "report" / "report.md").read_bytes() == report
    assert (smoke / "report" / "results.csv").read_bytes() == csv
    assert "inconclusive" in capsys.readouterr().out


def test_dry_run_prints_the_plan(tiny_model_dir, glue_fixture, tmp_path, capsys):
    assert main(_args(tiny_model_dir, glue_fixture, tmp_path / "dry", "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "fine-tuning runs" in out and "estimated time" in out and "s per training step" in out
    assert not (tmp_path / "dry" / "runs").exists()


def test_killed_study_resumes_to_the_same_results(tiny_model_dir, glue_fixture, tmp_path, smoke):
    """A real ``probekit study`` process is SIGKILLed after some runs; the same command then
    finishes it, with the scores of the uninterrupted study."""
    out = tmp_path / "killed"
    cmd = [sys.executable, str(REPO / "cli.py"), *_args(tiny_model_dir, glue_fixture, out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and len(list(out.glob("runs/*/scores.json"))) < 15:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {f: f.stat().st_mtime_ns for f in out.glob("runs/*/scores.json")}
    assert 15 <= len(done) < json.loads((out / "plan.json").read_text())["n_runs"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert {f: f.stat().st_mtime_ns for f in done} == done  # finished runs reused, not redone
    assert _scores(out) == _scores(smoke)


@pytest.mark.parametrize("backend", ["dask", "ray"])
def test_backends_give_the_serial_results(backend, tiny_model_dir, glue_fixture, tmp_path, smoke):
    pytest.importorskip({"dask": "distributed", "ray": "ray"}[backend])
    out = tmp_path / backend
    cfg = StudyConfig(
        model=str(tiny_model_dir), tasks=tuple(TASKS.split(",")), glue_dir=str(glue_fixture),
        budget="smoke", out=str(out), experiments=("token", "cross"), backend=backend,
        n_jobs=2, threads=1,
    )  # fmt: skip
    study(cfg, progress=False, report=False)
    got, ref = _scores(out), _scores(smoke)
    assert got and set(got) <= set(ref)  # the same runs (a subset: two experiments)...
    assert all(got[k][0] == ref[k][0] for k in got)  # ...with the same scores
    write_study_report(out)  # a subset study still reports


def test_study_on_your_own_files(tiny_model_dir, glue_fixture, tmp_path, capsys):
    """One custom task from --train-data/--eval-data (the labels are the file's own)."""
    out = tmp_path / "own"
    files = [
        "--train-data", str(glue_fixture / "SST-2" / "train.tsv"),
        "--eval-data", str(glue_fixture / "SST-2" / "dev.tsv"),
        "--text-col", "sentence", "--label-col", "label",
    ]  # fmt: skip
    args = ["study", "--model", str(tiny_model_dir), "--budget", "smoke", "--out", str(out),
            "--experiments", "token,dims", "--threads", "1", *files]  # fmt: skip
    assert main(args) == 0
    rec = json.loads((out / "study.json").read_text())
    assert rec["tasks"] == ["custom"] and rec["complete"]
    res = load_study(out)
    assert not res.pending and {e["task"] for e in res.entries} == {"custom"}
    assert "Dimension-wise" in capsys.readouterr().out


def test_probes_searched_again_when_the_examples_change(
    tiny_model_dir, glue_fixture, tmp_path, monkeypatch
):
    """A rerun in the same OUT with another seed (other random subsets) or another probe
    stopping rule does not reuse the first run's probe-ranked dimensions; the same command
    again does."""
    out = tmp_path / "reprobe"
    args = ["study", "--model", str(tiny_model_dir), "--tasks", "sst2", "--glue-dir",
            str(glue_fixture), "--budget", "smoke", "--out", str(out), "--threads", "1",
            "--experiments", "token", "--no-report"]  # fmt: skip
    probe = out / "probes" / "sst2" / "probe.json"
    assert main(args) == 0
    first = probe.stat().st_mtime_ns
    assert main(args) == 0
    assert probe.stat().st_mtime_ns == first  # same examples: reused
    with monkeypatch.context() as m:
        m.setattr(newton, "QUADRATIC", 2.0)
        assert main(args) == 0
    assert json.loads(probe.read_text())["identity"]["solver"]["quadratic"] == 2.0
    first = probe.stat().st_mtime_ns
    assert main([*args, "--seed", "1"]) == 0
    rec = json.loads(probe.read_text())
    assert probe.stat().st_mtime_ns != first and rec["identity"]["seed"] == 1
