"""`probekit search VERB` on real cache files (a tiny random BERT on the demo task)."""

from __future__ import annotations

import json

import pytest

from cli import main


def _search(verb: str, tr, dv, out, *extra: str) -> int:
    return main(["search", verb, "--train", str(tr), "--eval", str(dv), "--out", str(out), *extra])


def test_cli_search_and_report(tiny_caches, tmp_path, capsys):
    tr, dv = tiny_caches["train"], tiny_caches["dev"]
    out = tmp_path / "res"
    assert _search("greedy", tr, dv, out, "--k", "2") == 0
    text = capsys.readouterr().out
    assert "selected" in text and "random" in text and "full" in text
    d = json.loads((out / "greedy.json").read_text())
    assert len(d["selected"]) == 2 and d["train"]["model_hash"] and d["task"] == "demo"
    assert (
        _search("tokens", tr, dv, out, "--k", "1", "--backend", "threading", "--n-jobs", "2") == 0
    )
    assert _search("singles", tr, dv, out, "--layers", "0,-1") == 0
    assert _search("eliminate", tr, dv, out, "--start", "4") == 0
    assert _search("greedy", tr, dv, out, "--k", "0") == 2
    assert main(["report", str(out)]) == 0
    assert (out / "report" / "report.md").exists()
    # rerun: resumes from the checkpoint and gives the same result
    assert _search("greedy", tr, dv, out, "--k", "2") == 0
    assert json.loads((out / "greedy.json").read_text())["selected"] == d["selected"]


def test_cli_missing_eval_cache(tiny_caches, tmp_path):
    assert _search("greedy", tiny_caches["train"], tmp_path / "missing.h5", tmp_path) == 2


def test_cli_mismatched_caches(tiny_caches, tiny_model_dir, shared_glue, tmp_path, capsys):
    """A demo train cache and an SST-2 eval cache of the same model: refused, naming the task."""
    from probekit.extract import extract
    from probekit.models import load_encoder
    from probekit.tasks import load_task

    sst2 = tmp_path / "sst2-dev.h5"
    lm = load_encoder(str(tiny_model_dir), device="cpu")
    extract(lm, load_task("sst2", "dev", glue_dir=shared_glue, limit=40), sst2, store_tokens=False)
    capsys.readouterr()
    assert _search("greedy", tiny_caches["train"], sst2, tmp_path / "out", "--k", "1") == 2
    err = capsys.readouterr().err
    assert "task" in err and "demo" in err and "sst2" in err
    assert not (tmp_path / "out" / "greedy.json").exists()


def test_cli_search_rank_exact_and_report(tiny_caches, tmp_path, capsys):
    tr, dv = tiny_caches["train"], tiny_caches["dev"]
    out = tmp_path / "rk"
    assert _search("rank", tr, dv, out, "--k", "3", "--n-random", "5", "--ablation") == 0
    text = capsys.readouterr().out
    for m in ("mean-diff", "f-stat", "l1", "lca", "mi", "stump", "greedy", "random"):
        assert f"{m}:" in text, m
    assert "ablation without" in text and "=> " in text
    assert (out / "rank_curves.png").stat().st_size > 1000
    d = json.loads((out / "rank.json").read_text())
    assert d["kind"] == "search" and len(d["rankings"]["l1"]["curve"]) == 3
    assert _search("exact", tr, dv, out, "--k", "3", "--m", "8", "--refit", "20", "--mdl") == 0
    text = capsys.readouterr().out
    assert "exact - greedy" in text and "MDL" in text
    e = json.loads((out / "exact.json").read_text())
    assert e["n_subsets"] == 56 and e["n_refit"] == 20 and len(e["selected"]) == 3
    assert not e["exhaustive"]
    assert _search("exact", tr, dv, out, "--k", "4", "--m", "6", "--refit", "all", "--mdl") == 0
    e = json.loads((out / "exact.json").read_text())
    assert e["n_subsets"] == e["n_refit"] == 15 and e["exhaustive"] and len(e["selected"]) == 4
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    md = (out / "report" / "report.md").read_text()
    assert "## rank" in md and "## exact" in md and "**Verdict**" in md
    assert "rank_rankings.png" in md and "MDL (online code)" in md


def test_cli_search_rank_bad_method_exits_2(tiny_caches, tmp_path, capsys):
    tr, dv = tiny_caches["train"], tiny_caches["dev"]
    with pytest.raises(SystemExit) as e:
        _search("rank", tr, dv, tmp_path, "--method", "pca")
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
