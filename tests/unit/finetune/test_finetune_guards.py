"""Mutation guards of the fine-tuning loop (issue 9): each test fails under one wiring breakage
that the older tests let through (a finished run retrained, the head pooling ``cls`` whatever
was asked, the regression target replaced, cross-task forgetting always 0)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probekit.finetune import (
    HeadConfig,
    SelectedDimHead,
    cross_finetune,
    evaluate,
    finetune,
    load_finetuned,
    load_heads,
)
from probekit.tasks import TaskData, get_task, load_demo


@pytest.fixture
def step_counter(monkeypatch):
    """Counts optimizer steps taken by any AdamW (the loop's optimizer)."""
    calls = []
    original = torch.optim.AdamW.step

    def counting(self, *a, **kw):
        calls.append(1)
        return original(self, *a, **kw)

    monkeypatch.setattr(torch.optim.AdamW, "step", counting)
    return calls


def test_finished_run_is_reused_without_training(ft_cfg, tmp_path, step_counter):
    out = tmp_path / "run"
    first = finetune(ft_cfg(epochs=2), device="cpu", out_dir=out, progress=False)
    assert len(step_counter) == first.record["steps"]["total"] == 8
    before = (out / "result.json").read_bytes()
    again = finetune(ft_cfg(epochs=2), device="cpu", out_dir=out, progress=False)
    assert len(step_counter) == 8  # not one more optimizer step
    assert again.complete and again.record["run_id"] == first.record["run_id"]
    assert (out / "result.json").read_bytes() == before
    # resume=False retrains
    finetune(ft_cfg(epochs=2), device="cpu", out_dir=out, progress=False, resume=False)
    assert len(step_counter) == 16


@pytest.mark.parametrize("pool", ["cls", "mean", "max_norm", "max"])
def test_head_features_are_the_requested_pooling(tiny_model_dir, pool, monkeypatch):
    """What reaches a head is ``pool`` of the encoder output at the head's layer, as the
    extraction computes it (for cls/mean/max_norm: the cache's pooled views)."""
    from probekit.extract import encode, forward_batch, process_batch
    from probekit.models import load_encoder
    from probekit.pooling import pool as pool_fn

    lm = load_encoder(str(tiny_model_dir), device="cpu")
    data = load_demo("dev", limit=12)
    layer = 1
    head = SelectedDimHead(
        HeadConfig(input_size=32, num_labels=2, layer=layer, **{"token": pool})
    ).eval()
    seen = []
    original = SelectedDimHead.forward

    def spy(self, features):
        seen.append(features.detach().clone())
        return original(self, features)

    monkeypatch.setattr(SelectedDimHead, "forward", spy)
    evaluate(lm, {"demo": head}, data, max_length=32, batch_size=64)
    got = torch.cat(seen).numpy()
    enc = encode(lm.tokenizer, data, 32)
    rows = np.arange(len(data))
    if pool == "max":
        with torch.inference_mode():
            hidden, _, content = forward_batch(lm, enc, rows)
        want = pool_fn(hidden.float(), content, "max")[0][:, layer].numpy()
    else:
        pooled, _ = process_batch(lm, enc, rows, "float32")
        want = pooled[pool][:, layer]

    def rows_sorted(a):
        return a[np.lexsort(a.T[::-1])]

    np.testing.assert_allclose(rows_sorted(got), rows_sorted(want), rtol=1e-5, atol=1e-5)


def _learnable_regression(n: int) -> TaskData:
    """The demo sentiment sentences with a score of 0 (negative) or 4 (positive)."""
    demo = load_demo("train", limit=n)
    return TaskData(
        get_task("stsb"),
        "train",
        demo.texts,
        None,
        demo.labels.astype(np.float32) * 4.0,
        demo.example_index,
        "demo-as-regression",
    )


def _predict_scores(run_dir, data: TaskData) -> np.ndarray:
    """The run's scores on ``data``, computed here with plain transformers calls."""
    lm, heads = load_finetuned(run_dir, device="cpu")
    (head,) = heads.values()
    assert head.config.layer == lm.n_layers - 1
    enc = lm.tokenizer(
        data.texts, padding=True, truncation=True, max_length=32, return_tensors="pt"
    )
    with torch.no_grad():
        out = lm.model(**enc)
        return head(out.last_hidden_state[:, 0]).squeeze(-1).numpy()


def test_regression_lowers_its_loss_and_beats_a_constant(ft_cfg, tmp_path):
    data = _learnable_regression(96)
    r = finetune(
        ft_cfg(task="stsb", dims="all", epochs=10, lr=3e-3, head_lr=3e-2, max_train_examples=None),
        device="cpu",
        out_dir=tmp_path / "reg",
        train_data=data,
        eval_data=data,
        progress=False,
    )
    losses = [e["train_loss"] for e in r.record["epochs"]]
    assert losses[-1] < losses[0]
    pred = _predict_scores(r.out_dir, data)
    mse = float(np.mean((pred - data.labels) ** 2))
    constant = float(np.var(data.labels))  # the best constant's squared error
    assert mse < 0.7 * constant, (mse, constant)
    assert r.metrics["pearson"] > 0.5


def test_cross_forgetting_matches_independent_scores(ft_cfg, tmp_path, glue_fixture):
    cfg = ft_cfg(max_train_examples=128, max_eval_examples=64, epochs=3, lr=2e-2)
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
