"""Cross-task fine-tuning: stages, disjoint dims, and forgetting against scores evaluated
independently of the cross run (a constant 0 forgetting fails here)."""

from __future__ import annotations

import json

import pytest

from probekit.errors import ConfigError
from probekit.finetune import cross_finetune, evaluate, load_finetuned, load_heads
from probekit.tasks import load_demo


def test_cross_task_reports_forgetting(ft_cfg, tmp_path, glue_fixture):
    cfg = ft_cfg(limit=32, eval_limit=16)
    r = cross_finetune(
        cfg,
        ("sst2", "rte"),
        device="cpu",
        out_dir=tmp_path / "cross",
        glue_dir=glue_fixture,
        disjoint=True,
        progress=False,
    )
    rec = json.loads((tmp_path / "cross" / "result.json").read_text())
    assert rec["dims"]["sst2"] == [3, 17] and len(rec["dims"]["rte"]) == 2
    assert not set(rec["dims"]["rte"]) & {3, 17}
    assert set(rec["single"]) == set(rec["after_second_stage"]) == {"sst2", "rte"}
    assert r.forgetting == pytest.approx(r.single["sst2"]["accuracy"] - r.after["sst2"]["accuracy"])
    assert rec["kind"] == "cross" and rec["elapsed_s"] == rec["wall_seconds"] > 0
    stage2 = json.loads((tmp_path / "cross" / "sst2_then_rte" / "result.json").read_text())
    stage1 = json.loads((tmp_path / "cross" / "single_sst2" / "result.json").read_text())
    assert (
        stage2["model"]["initial_weights_hash"] == stage1["final_weights_hash"]
    )  # B starts from A's encoder
    assert stage1["config"]["task"] == "sst2" and stage2["config"]["task"] == "rte"
    assert stage2["heads"]["rte"]["dims"] == rec["dims"]["rte"]
    with pytest.raises(ConfigError, match="overlap"):
        cross_finetune(
            cfg,
            ("sst2", "rte"),
            device="cpu",
            out_dir=tmp_path / "c2",
            glue_dir=glue_fixture,
            dims_b="17,20",
            disjoint=True,
            progress=False,
        )


def test_cross_forgetting_matches_independent_scores(ft_cfg, tmp_path, glue_fixture):
    cfg = ft_cfg(limit=128, eval_limit=64, epochs=3, lr=2e-2)
    demo = (load_demo("train"), load_demo("dev"))
    out = tmp_path / "cross"
    r = cross_finetune(
        cfg,
        ("demo", "sst2"),
        device="cpu",
        out_dir=out,
        glue_dir=glue_fixture,
        data={"demo": demo},
        progress=False,
    )
    demo_dev = demo[1].head(64)
    enc_a, head_a = load_finetuned(out / "single_demo", device="cpu")
    enc_ab, _ = load_finetuned(out / "demo_then_sst2", device="cpu")
    single = evaluate(enc_a, head_a, demo_dev, max_length=32)["accuracy"]
    after = evaluate(enc_ab, load_heads(out / "single_demo" / "heads.pt"), demo_dev, max_length=32)
    assert r.single["demo"]["accuracy"] == pytest.approx(single)
    assert r.after["demo"]["accuracy"] == pytest.approx(after["accuracy"])
    assert r.forgetting == pytest.approx(single - after["accuracy"])
    assert r.forgetting != 0  # the fixture does forget: a constant 0 would be caught
    assert r.record["forgetting"]["demo"] == pytest.approx(r.forgetting)
