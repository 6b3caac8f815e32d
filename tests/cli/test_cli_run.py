"""The main job (`probekit run`) end to end on a tiny model and the demo task."""

from __future__ import annotations

import csv
import json

import cli
from probekit import search


def _count_selections(monkeypatch) -> dict[str, int]:
    """Count validation fits of the searches (every selection goes through ``select``)."""
    calls = {"n": 0}
    cls = search.Problem
    orig = cls.select

    def counting(self, dims):
        calls["n"] += 1
        return orig(self, dims)

    monkeypatch.setattr(cls, "select", counting)
    return calls


def test_run_end_to_end_then_reuses_caches(tiny_model_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    argv = [
        "run",
        "--model",
        str(tiny_model_dir),
        "--device",
        "cpu",
        "--limit",
        "160",
        "--eval-limit",
        "80",
        "--out",
        str(out),
        "--k",
        "3",
    ]
    calls = _count_selections(monkeypatch)
    assert cli.main(argv) == 0
    assert calls["n"] > 0
    text = capsys.readouterr().out
    assert "remove-one from" in text and "ablation of" in text and "MDL of" in text
    assert (
        "dimensions carry demo" in text
        or "no dimension set beats" in text
        or "inconclusive" in text
    )
    s = json.loads((out / "summary.json").read_text())
    assert s["caches"]["train"]["status"] == "extracted" and s["caches"]["eval"]["n_examples"] == 80
    assert len(s["greedy"]["selected"]) == 3 and len(s["layers"]) == 3
    assert set(s["eliminate"]["selected"]) <= set(s["greedy"]["selected"])
    assert {r["pool"] for r in s["tokens"]} == {"cls", "mean", "max_norm"}
    assert (out / "report" / "report.md").is_file()
    for verb in ("layers", "greedy", "eliminate", "tokens"):
        assert (out / "search" / f"{verb}.json").is_file()
    # the second run reuses both caches and the checkpointed searches, with the same answer
    calls["n"] = 0
    assert cli.main([*argv, "--no-report"]) == 0
    assert calls["n"] == 0  # no selection recomputed: every search resumed from its checkpoint
    capsys.readouterr()
    s2 = json.loads((out / "summary.json").read_text())
    assert (
        s2["caches"]["train"]["status"] == "reused" and s2["caches"]["eval"]["status"] == "reused"
    )
    assert s2["greedy"]["selected"] == s["greedy"]["selected"]


def _write_csv(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sentence", "label"])
        w.writerows(rows)


def test_run_on_your_own_files_is_a_custom_task(tiny_model_dir, tmp_path, capsys):
    from probekit.tasks import load_demo

    tr, ev = load_demo("train", limit=120), load_demo("dev", limit=60)
    names = ("neg", "pos")
    _write_csv(tmp_path / "train.csv", [(t, names[y]) for t, y in zip(tr.texts, tr.labels)])
    # the eval file holds only "pos": it must be aligned by name, not re-indexed from 0
    pos = [(t, "pos") for t, y in zip(ev.texts, ev.labels) if y == 1]
    _write_csv(tmp_path / "dev.csv", pos)
    out = tmp_path / "run"
    argv = ["run", "--model", str(tiny_model_dir), "--device", "cpu", "--out", str(out)]
    argv += ["--train-data", str(tmp_path / "train.csv"), "--eval-data", str(tmp_path / "dev.csv")]
    argv += ["--text-col", "sentence", "--label-col", "label", "--k", "2", "--no-report"]
    assert cli.main([*argv, "--no-mdl", "--no-ablation"]) == 0
    printed = capsys.readouterr().out
    assert "on custom (" in printed
    s = json.loads((out / "summary.json").read_text())
    assert s["config"]["files"]["train_data"].endswith("train.csv")
    assert sorted(p.name for p in (out / "cache").glob("*.h5")) == [
        "custom-dev.h5",
        "custom-train.h5",
    ]
    from probekit.cache import ActivationCache

    with ActivationCache(out / "cache" / "custom-dev.h5") as c:
        assert list(c.task.label_names) == ["neg", "pos"] and set(c.labels.tolist()) == {1}


def test_run_own_files_need_every_column(tmp_path, capsys):
    argv = ["run", "--out", str(tmp_path / "r"), "--train-data", str(tmp_path / "t.csv")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "needs --eval-data, --text-col, --label-col" in err and "Traceback" not in err


def test_run_C_reaches_every_search_and_the_summary(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", "--model", str(tiny_model_dir), "--device", "cpu", "--out", str(out)]
    argv += ["--limit", "120", "--eval-limit", "60", "--k", "2", "--no-report"]
    assert cli.main([*argv, "--no-mdl", "--no-ablation", "--C", "0.5"]) == 0
    capsys.readouterr()
    s = json.loads((out / "summary.json").read_text())
    assert s["config"]["C"] == 0.5
    for verb in ("layers", "greedy", "eliminate", "tokens"):
        res = json.loads((out / "search" / f"{verb}.json").read_text())
        assert res["config"]["C"] == 0.5, verb
    for verb in ("greedy", "eliminate"):
        res = json.loads((out / "search" / f"{verb}.json").read_text())
        assert res["C"] == {"mode": "fixed", "chosen": 0.5}, verb


def test_run_C_default_is_auto_and_a_bad_one_is_refused(tmp_path, capsys):
    from probekit.pipeline import RunConfig

    assert RunConfig().C == "auto"
    assert cli.main(["run", "--out", str(tmp_path / "r"), "--C", "-1"]) == 2
    err = capsys.readouterr().err
    assert "C must be 'auto' or a positive" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()  # refused before anything was loaded or written
