"""The training loop: files of a run, resume, freezing, options, reuse of finished runs, and
mutation guards (a finished run retrained, the head pooling ``cls`` whatever was asked, the
regression target replaced: each makes a test here fail)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from probekit.errors import ConfigError
from probekit.finetune import (
    HeadConfig,
    SelectedDimHead,
    evaluate,
    finetune,
    load_finetuned,
)
from probekit.tasks import TaskData, get_task, load_demo


def _state(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    st = dict(load_file(str(run_dir / "model" / "model.safetensors")))
    heads = torch.load(run_dir / "heads.pt", weights_only=True)["heads"]
    for name, h in heads.items():
        st.update({f"head.{name}.{k}": v for k, v in h["state_dict"].items()})
    return st


def test_finetune_writes_result_model_and_heads(ft_cfg, tmp_path):
    out = tmp_path / "run"
    torch.manual_seed(123)
    caller = torch.get_rng_state()
    r = finetune(ft_cfg(epochs=2), device="cpu", out_dir=out, progress=False)
    assert torch.equal(torch.get_rng_state(), caller)  # the caller's random state is left as it was
    assert r.complete and set(r.metrics) == {"accuracy"}
    rec = json.loads((out / "result.json").read_text())
    assert (
        rec["complete"]
        and rec["config"]["dims"] == "3,17"
        and rec["heads"]["demo"]["dims"] == [3, 17]
    )
    assert [e["epoch"] for e in rec["epochs"]] == [1, 2] and rec["steps"] == {
        "per_epoch": 4,
        "total": 8,
        "done": 8,
    }
    assert rec["params"]["heads"]["demo"] == {"nominal": 66, "effective": 6, "selected_dims": 2}
    assert rec["params"]["encoder_trainable"] > 0 and rec["versions"]["torch"] == torch.__version__
    assert rec["wall_seconds"] > 0 and rec["train_examples_per_second"] > 0
    assert rec["elapsed_s"] == rec["wall_seconds"] and rec["kind"] == "finetune"
    assert rec["final_weights_hash"] != rec["model"]["initial_weights_hash"]
    assert not (out / "checkpoint.pt").exists()
    # the saved run re-evaluates to the recorded metrics
    loaded, heads = load_finetuned(out, device="cpu")
    again = evaluate(loaded, heads, load_demo("dev", limit=32), max_length=32)
    assert again == pytest.approx(r.metrics)
    # a finished run is reused, not retrained
    r2 = finetune(ft_cfg(epochs=2), device="cpu", out_dir=out, progress=False)
    assert r2.record["run_id"] == rec["run_id"] and r2.metrics == r.metrics


def test_resumed_run_equals_uninterrupted(ft_cfg, tmp_path):
    cfg = ft_cfg(epochs=2, grad_accum=2, batch_size=8, dropout=0.1)  # 4 steps/epoch
    full = finetune(cfg, device="cpu", out_dir=tmp_path / "full", progress=False)
    part = finetune(cfg, device="cpu", out_dir=tmp_path / "cut", progress=False, stop_after_steps=3)
    assert not part.complete and (tmp_path / "cut" / "checkpoint.pt").is_file()
    assert not (tmp_path / "cut" / "model").exists()
    part2 = finetune(
        cfg, device="cpu", out_dir=tmp_path / "cut", progress=False, stop_after_steps=2
    )  # crosses epoch end
    assert not part2.complete and len(part2.record["epochs"]) == 1
    done = finetune(cfg, device="cpu", out_dir=tmp_path / "cut", progress=False)
    assert done.complete
    a, b = _state(tmp_path / "full"), _state(tmp_path / "cut")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert done.metrics == full.metrics
    assert [e["train_loss"] for e in done.record["epochs"]] == [
        e["train_loss"] for e in full.record["epochs"]
    ]
    assert done.record["epochs"][0]["resumed_at_step"] == 3
    # a checkpoint made with other settings is refused, naming the difference
    finetune(cfg, device="cpu", out_dir=tmp_path / "other", progress=False, stop_after_steps=1)
    with pytest.raises(ConfigError, match=r"config\.lr"):
        finetune(
            ft_cfg(epochs=2, grad_accum=2, batch_size=8, dropout=0.1, lr=5e-4),
            device="cpu",
            out_dir=tmp_path / "other",
            progress=False,
        )


@pytest.mark.parametrize("freeze", ["encoder", "bottom-1", "embeddings"])
def test_frozen_parameters_are_unchanged(tiny_model_dir, ft_cfg, tmp_path, freeze):
    from safetensors.torch import load_file

    before = load_file(str(tiny_model_dir / "model.safetensors"))
    r = finetune(
        ft_cfg(freeze=freeze, head_layers=2, weight_decay=0.1),
        device="cpu",
        out_dir=tmp_path / freeze,
        progress=False,
    )
    after = load_file(str(r.model_dir / "model.safetensors"))
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    if freeze == "encoder":
        assert not changed
        assert r.record["params"]["encoder_trainable"] == 0
    elif freeze == "bottom-1":
        assert changed and all(k.startswith("encoder.layer.1.") for k in changed)
    else:
        assert changed and not any(k.startswith("embeddings.") for k in changed)
        assert any(k.startswith("encoder.layer.0.") for k in changed)
    assert not any(k.startswith("pooler.") for k in changed)
    p = r.record["params"]
    assert p["trainable_total"] == p["encoder_trainable"] + p["heads"]["demo"]["nominal"]
    head_start = SelectedDimHead(HeadConfig(**{**r.record["heads"]["demo"], "dims": (3, 17)}))
    assert p["heads"]["demo"]["nominal"] == sum(x.numel() for x in head_start.parameters())


def test_pair_regression_layer_and_pool_options(ft_cfg, tmp_path, glue_fixture):
    r = finetune(
        ft_cfg(task="rte", pool="max_norm", include_cls=True, layer=1),
        device="cpu",
        out_dir=tmp_path / "rte",
        glue_dir=glue_fixture,
        progress=False,
    )
    assert set(r.metrics) == {"accuracy"} and r.record["data"]["rte"]["train"]["n"] == 48
    assert (
        r.record["heads"]["rte"]["layer"] == 1 and r.record["heads"]["rte"]["token"] == "max_norm"
    )
    assert r.record["heads"]["rte"]["pool"] == "max_norm"
    s = finetune(
        ft_cfg(task="stsb", pool="mean", dims="all", head_layers=2, activation="gelu"),
        device="cpu",
        out_dir=tmp_path / "stsb",
        glue_dir=glue_fixture,
        progress=False,
    )
    assert set(s.metrics) == {"pearson", "spearman"} and np.isfinite(s.metrics["pearson"])
    assert (
        s.record["heads"]["stsb"]["num_labels"] == 1 and s.record["heads"]["stsb"]["dims"] is None
    )


def test_saved_model_extracts(ft_cfg, tmp_path):
    from probekit.cache import ActivationCache
    from probekit.extract import extract
    from probekit.models import load_encoder

    r = finetune(ft_cfg(), device="cpu", out_dir=tmp_path / "run", progress=False)
    lm = load_encoder(str(r.model_dir), device="cpu")
    assert lm.weights_hash == r.record["final_weights_hash"]
    data = load_demo("dev", limit=12)
    path = extract(lm, data, tmp_path / "ft.h5", max_length=32, progress=False)
    path = getattr(path, "path", path)
    with ActivationCache(path) as c:
        assert c.n_examples == 12 and c.n_layers == 3 and c.hidden_size == 32
        feats = c.features(-1, pool="cls", dims=[3, 17], dtype=np.float32)
        assert feats.shape == (12, 2) and np.isfinite(feats).all()


# ------------------------------------------------------------------------- mutation guards


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
    head = SelectedDimHead(HeadConfig(input_size=32, num_labels=2, layer=layer, pool=pool)).eval()
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
        ft_cfg(task="stsb", dims="all", epochs=10, lr=3e-3, head_lr=3e-2, limit=None),
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


def test_two_dim_regression_head_far_from_zero_beats_a_constant(ft_cfg, tmp_path):
    """Targets of mean 2.2 (like STS-B's): the 2-dim head learns on standardised targets,
    predicts in the targets' units and beats the best constant."""
    data = _learnable_regression(96)
    data.labels[:] = data.labels * 0.4 + 1.4  # 0 -> 1.4, 4 -> 3.0
    r = finetune(
        ft_cfg(task="stsb", dims="3,17", epochs=10, lr=3e-3, head_lr=3e-2, limit=None),
        device="cpu",
        out_dir=tmp_path / "reg2",
        train_data=data,
        eval_data=data,
        progress=False,
    )
    assert r.record["targets"]["stsb"] == pytest.approx(
        {"mean": float(data.labels.mean()), "std": float(data.labels.std())}, rel=1e-5
    )
    assert r.record["fingerprint"]["heads"]["stsb"]["targets"] == "standardized on train"
    pred = _predict_scores(r.out_dir, data)
    assert abs(pred.mean() - data.labels.mean()) < 0.3  # in the targets' units
    mse = float(np.mean((pred - data.labels) ** 2))
    assert mse < 0.7 * float(np.var(data.labels)), (mse, np.var(data.labels))
    assert r.metrics["pearson"] > 0.5
    assert r.record["epochs"][-1]["train_loss"] < 0.7  # standardised: 1 is the constant's
