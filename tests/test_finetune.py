"""Fine-tuning module: heads, the training loop, freezing, resume, cross-task and multi-head runs.

Unit tests use the tiny random BERT of conftest (2 layers, hidden 32) on the built-in demo
task and small GLUE-layout fixture files; the integration test fine-tunes the embedded
MiniLM on 2,000 real SST-2 examples.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from probekit.errors import ConfigError
from probekit.finetune import (
    FinetuneConfig,
    HeadConfig,
    SelectedDimHead,
    apply_freeze,
    assign_dims,
    cross_finetune,
    evaluate,
    finetune,
    load_finetuned,
    multihead_finetune,
    parse_dims,
    pool_tokens,
)
from probekit.finetune.train import _epoch_schedule
from probekit.tasks import load_demo, load_task


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread (restored after): on this shared, oversubscribed 2-core machine a
    training step runs 2-3x faster on one thread than on two."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def glue_fixture(tmp_path_factory) -> Path:
    """Small RTE (pairs), STS-B (regression) and SST-2 files in the GLUE layout."""
    g = tmp_path_factory.mktemp("glue_data")
    rng = np.random.default_rng(0)
    words = ["cat", "dog", "sat", "ran", "mat", "park", "red", "big", "old", "new", "tree", "house"]

    def sent(n=5):
        return " ".join(rng.choice(words, size=n)) + " ."

    for split, n in (("train", 48), ("dev", 24)):
        rows = ["index\tsentence1\tsentence2\tlabel"]
        rows += [
            f"{i}\t{sent()}\t{sent(3)}\t{'entailment' if i % 2 else 'not_entailment'}"
            for i in range(n)
        ]
        _write(g / "RTE" / f"{split}.tsv", "\n".join(rows) + "\n")
        rows = [
            "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
        ]
        rows += [
            f"{i}\tm\tf\t2012\t{i}\tn\tn\t{sent()}\t{sent()}\t{rng.uniform(0, 5):.3f}"
            for i in range(n)
        ]
        _write(g / "STS-B" / f"{split}.tsv", "\n".join(rows) + "\n")
        rows = ["sentence\tlabel"] + [f"{sent()}\t{i % 2}" for i in range(n)]
        _write(g / "SST-2" / f"{split}.tsv", "\n".join(rows) + "\n")
    return g


def _cfg(model_dir: Path, **kw) -> FinetuneConfig:
    base = dict(
        model=str(model_dir),
        task="demo",
        dims="3,17",
        epochs=1,
        batch_size=16,
        lr=1e-3,
        head_lr=1e-2,
        max_length=32,
        max_train_examples=64,
        max_eval_examples=32,
        checkpoint_every=0,
        seed=3,
    )
    base.update(kw)
    return FinetuneConfig(**base)


# ------------------------------------------------------------------------------------- heads


def test_parse_dims():
    assert parse_dims("3,17", 32) == (3, 17)
    assert parse_dims("17, 3,3", 32) == (3, 17)
    assert parse_dims("0-2,5", 32) == (0, 1, 2, 5)
    assert parse_dims([-1], 32) == (31,)
    assert parse_dims("all", 32) is None and parse_dims(None, 32) is None
    assert parse_dims(list(range(32)), 32) is None
    with pytest.raises(ConfigError, match="dimension 40 is out of range for hidden size 32"):
        parse_dims("3,40", 32)
    with pytest.raises(ConfigError, match="'x' is not an integer"):
        parse_dims("3,x", 32)
    with pytest.raises(ConfigError, match="empty"):
        parse_dims("", 32)


@pytest.mark.parametrize("n_layers", [1, 2])
def test_masked_head_ignores_unselected_dims(n_layers):
    torch.manual_seed(0)
    head = SelectedDimHead(
        HeadConfig(input_size=32, num_labels=3, dims=(3, 17), n_layers=n_layers, hidden=8)
    )
    assert not any(n == "mask" for n, _ in head.named_parameters())  # a buffer, not trained
    assert head.mask.sum().item() == 2
    x = torch.randn(5, 32, requires_grad=True)
    y = head(x)
    other = torch.ones(32, dtype=torch.bool)
    other[[3, 17]] = False
    x2 = x.detach().clone()
    x2[:, other] = torch.randn(5, int(other.sum())) * 100
    assert torch.equal(head(x2), y.detach())
    x3 = x.detach().clone()
    x3[:, 17] += 1.0
    assert not torch.allclose(head(x3), y.detach())
    y.sum().backward()  # gradient reaches only the selected dims of the input
    assert (
        torch.count_nonzero(x.grad[:, other]) == 0 and torch.count_nonzero(x.grad[:, [3, 17]]) > 0
    )
    c = head.parameter_counts()
    assert c["selected_dims"] == 2
    assert c["effective"] == (2 * 3 + 3 if n_layers == 1 else 2 * 8 + 8 + 8 * 3 + 3)
    assert c["nominal"] == (32 * 3 + 3 if n_layers == 1 else 32 * 8 + 8 + 8 * 3 + 3)


def test_pool_tokens():
    h = torch.tensor([[[1.0, 0], [0, 5], [3, 0], [9, 9], [0, 0]]])  # [1, 5, 2]
    attn = torch.tensor([[1, 1, 1, 1, 0]])
    special = torch.tensor([[1, 0, 0, 1, 1]])  # CLS, a, b, SEP, pad
    assert pool_tokens(h, attn, special, "cls").tolist() == [[1.0, 0.0]]
    assert pool_tokens(h, attn, special, "max_norm").tolist() == [
        [0.0, 5.0]
    ]  # SEP (norm 12.7) excluded
    h2 = h.clone()
    h2[0, 0] = torch.tensor([10.0, 0])
    assert pool_tokens(h2, attn, special, "max_norm", include_cls=True).tolist() == [[10.0, 0.0]]
    assert pool_tokens(h2, attn, special, "max_norm").tolist() == [[0.0, 5.0]]
    assert pool_tokens(h, attn, special, "mean").tolist() == [[1.5, 2.5]]
    assert pool_tokens(h, attn, special, "max").tolist() == [[3.0, 5.0]]
    # an example with no content token uses all of its real tokens
    only_special = torch.tensor([[1, 1, 1, 1, 1]])
    assert pool_tokens(h, attn, only_special, "max_norm").tolist() == [[9.0, 9.0]]
    with pytest.raises(ConfigError, match="token 'first'"):
        pool_tokens(h, attn, special, "first")


def test_config_validation(tiny_model_dir, tmp_path):
    with pytest.raises(ConfigError, match="freeze 'top-2'"):
        FinetuneConfig(freeze="top-2")
    with pytest.raises(ConfigError, match="batch_size"):
        FinetuneConfig(batch_size=0)
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        finetune(_cfg(tiny_model_dir, mixed_precision="fp16"), device="cpu", out_dir=tmp_path / "x")
    with pytest.raises(ConfigError, match="layer 7 is out of range"):
        finetune(_cfg(tiny_model_dir, layer=7), device="cpu", out_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_epoch_schedule_modes():
    single = _epoch_schedule([10], 4, 0, 0, "alternate")
    assert [len(s[0][1]) for s in single] == [4, 4, 2]
    assert sorted(np.concatenate([s[0][1] for s in single]).tolist()) == list(range(10))
    alt = _epoch_schedule([8, 3], 2, 0, 0, "alternate")
    assert [s[0][0] for s in alt] == [0, 1, 0, 1, 0, 0]
    mixed = _epoch_schedule([8, 3], 2, 0, 0, "mixed")
    assert [[t for t, _ in s] for s in mixed] == [[0, 1], [0, 1], [0], [0]]
    assert not np.array_equal(
        _epoch_schedule([10], 10, 0, 1, "alternate")[0][0][1],
        _epoch_schedule([10], 10, 0, 2, "alternate")[0][0][1],
    )


# ------------------------------------------------------------------------------------- training


def _state(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    st = dict(load_file(str(run_dir / "model" / "model.safetensors")))
    heads = torch.load(run_dir / "heads.pt", weights_only=True)["heads"]
    for name, h in heads.items():
        st.update({f"head.{name}.{k}": v for k, v in h["state_dict"].items()})
    return st


def test_finetune_writes_result_model_and_heads(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    torch.manual_seed(123)
    caller = torch.get_rng_state()
    r = finetune(_cfg(tiny_model_dir, epochs=2), device="cpu", out_dir=out, progress=False)
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
    assert rec["final_weights_hash"] != rec["model"]["initial_weights_hash"]
    assert not (out / "checkpoint.pt").exists()
    # the saved run re-evaluates to the recorded metrics
    loaded, heads = load_finetuned(out, device="cpu")
    again = evaluate(loaded, heads, load_demo("dev", limit=32), max_length=32)
    assert again == pytest.approx(r.metrics)
    # a finished run is reused, not retrained
    r2 = finetune(_cfg(tiny_model_dir, epochs=2), device="cpu", out_dir=out, progress=False)
    assert r2.record["run_id"] == rec["run_id"] and r2.metrics == r.metrics


def test_resumed_run_equals_uninterrupted(tiny_model_dir, tmp_path):
    cfg = _cfg(
        tiny_model_dir, epochs=2, grad_accum=2, batch_size=8, head_dropout=0.1
    )  # 4 steps/epoch
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
    # a checkpoint made with other settings is refused, naming the difference
    finetune(cfg, device="cpu", out_dir=tmp_path / "other", progress=False, stop_after_steps=1)
    with pytest.raises(ConfigError, match="config.lr"):
        finetune(
            _cfg(tiny_model_dir, epochs=2, grad_accum=2, batch_size=8, head_dropout=0.1, lr=5e-4),
            device="cpu",
            out_dir=tmp_path / "other",
            progress=False,
        )


@pytest.mark.parametrize("freeze", ["encoder", "bottom-1", "embeddings"])
def test_frozen_parameters_are_unchanged(tiny_model_dir, tmp_path, freeze):
    from safetensors.torch import load_file

    before = load_file(str(tiny_model_dir / "model.safetensors"))
    r = finetune(
        _cfg(tiny_model_dir, freeze=freeze, head_layers=2, weight_decay=0.1),
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


def test_apply_freeze_counts(tiny_model_dir):
    from transformers import AutoModel

    m = AutoModel.from_pretrained(str(tiny_model_dir))
    info = apply_freeze(m, "bottom-2")
    assert (
        info["encoder_trainable"]
        == sum(p.numel() for n, p in m.named_parameters() if p.requires_grad)
        == 0
    )
    info = apply_freeze(m, "none")
    assert info["encoder_trainable"] == info["encoder_total"] - sum(
        p.numel() for p in m.pooler.parameters()
    )
    with pytest.raises(ConfigError, match="only 2 transformer blocks"):
        apply_freeze(m, "bottom-3")


def test_pair_regression_layer_and_token_options(tiny_model_dir, tmp_path, glue_fixture):
    r = finetune(
        _cfg(tiny_model_dir, task="rte", token="max_norm", include_cls=True, layer=1),
        device="cpu",
        out_dir=tmp_path / "rte",
        glue_dir=glue_fixture,
        progress=False,
    )
    assert set(r.metrics) == {"accuracy"} and r.record["data"]["rte"]["train"]["n"] == 48
    assert (
        r.record["heads"]["rte"]["layer"] == 1 and r.record["heads"]["rte"]["token"] == "max_norm"
    )
    s = finetune(
        _cfg(
            tiny_model_dir,
            task="stsb",
            token="mean",
            dims="all",
            head_layers=2,
            head_activation="gelu",
        ),
        device="cpu",
        out_dir=tmp_path / "stsb",
        glue_dir=glue_fixture,
        progress=False,
    )
    assert set(s.metrics) == {"pearson", "spearman"} and np.isfinite(s.metrics["pearson"])
    assert (
        s.record["heads"]["stsb"]["num_labels"] == 1 and s.record["heads"]["stsb"]["dims"] is None
    )


def test_saved_model_extracts(tiny_model_dir, tmp_path):
    from probekit.cache import ActivationCache
    from probekit.extract import extract
    from probekit.models import load_encoder

    r = finetune(_cfg(tiny_model_dir), device="cpu", out_dir=tmp_path / "run", progress=False)
    lm = load_encoder(str(r.model_dir), device="cpu")
    assert lm.weights_hash == r.record["final_weights_hash"]
    data = load_demo("dev", limit=12)
    path = extract(lm, data, tmp_path / "ft.h5", max_length=32, progress=False)
    path = getattr(path, "path", path)
    with ActivationCache(path) as c:
        assert c.n_examples == 12 and c.n_layers == 3 and c.hidden_size == 32
        feats = c.features(-1, pool="cls", dims=[3, 17], dtype=np.float32)
        assert feats.shape == (12, 2) and np.isfinite(feats).all()


# ------------------------------------------------------------------------------------- cross / multi


def test_cross_task_reports_forgetting(tiny_model_dir, tmp_path, glue_fixture):
    cfg = _cfg(tiny_model_dir, max_train_examples=32, max_eval_examples=16)
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


def test_assign_dims():
    d = assign_dims(["a", "b", "c"], 32, dims={"a": "3,17"}, dims_per_task=3, seed=1)
    assert d["a"] == (3, 17) and len(d["b"]) == len(d["c"]) == 3
    assert len(set(d["a"]) | set(d["b"]) | set(d["c"])) == 8
    with pytest.raises(ConfigError, match="dim 17 is selected by both 'a' and 'b'"):
        assign_dims(["a", "b"], 32, dims={"a": "3,17", "b": "17"})
    with pytest.raises(ConfigError, match="no dims for task"):
        assign_dims(["a", "b"], 32, dims={"a": "3"})


@pytest.mark.parametrize("mode", ["alternate", "mixed"])
def test_multihead_each_head_sees_only_its_dims(tiny_model_dir, tmp_path, glue_fixture, mode):
    cfg = _cfg(tiny_model_dir, max_train_examples=32, max_eval_examples=16)
    r = multihead_finetune(
        cfg,
        ["demo", "rte"],
        device="cpu",
        out_dir=tmp_path / mode,
        dims={"demo": "3,17"},
        dims_per_task=2,
        mode=mode,
        glue_dir=glue_fixture,
        progress=False,
    )
    assert set(r.metrics) == {"demo", "rte"} and r.record["mode"] == mode
    dims = {t: tuple(d) for t, d in r.record["dims"].items()}
    assert dims["demo"] == (3, 17) and not set(dims["demo"]) & set(dims["rte"])
    assert r.record["epochs"][0]["train_examples"] == 64
    loaded, heads = load_finetuned(r.out_dir, device="cpu")
    x = torch.randn(4, 32)
    for t, h in heads.items():
        assert torch.nonzero(h.mask).flatten().tolist() == list(dims[t])
        other = [d for d in range(32) if d not in dims[t]]
        x2 = x.clone()
        x2[:, other] += torch.randn(4, len(other)) * 10
        assert torch.equal(h(x), h(x2))
    rte_dev = load_task("rte", "dev", glue_dir=glue_fixture, limit=16)
    assert evaluate(loaded, heads, {"rte": rte_dev}, max_length=32)["rte"] == pytest.approx(
        r.metrics["rte"]
    )


def test_cli_finetune_and_multihead(tiny_model_dir, tmp_path, glue_fixture, capsys):
    from cli import main

    out = tmp_path / "cli"
    rc = main(
        [
            "finetune",
            "--model",
            str(tiny_model_dir),
            "--task",
            "rte",
            "--glue-dir",
            str(glue_fixture),
            "--dims",
            "3,17",
            "--layer",
            "-1",
            "--token",
            "cls",
            "--freeze",
            "none",
            "--head-layers",
            "1",
            "--epochs",
            "1",
            "--max-train-examples",
            "32",
            "--max-length",
            "32",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    rec = json.loads((out / "result.json").read_text())
    assert "accuracy" in rec["metrics"] and (out / "model" / "config.json").is_file()
    assert "dev: accuracy" in capsys.readouterr().out
    rc = main(
        [
            "multihead",
            "--model",
            str(tiny_model_dir),
            "--tasks",
            "sst2,rte",
            "--glue-dir",
            str(glue_fixture),
            "--dims-per-task",
            "2",
            "--epochs",
            "1",
            "--max-train-examples",
            "16",
            "--max-length",
            "32",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "mh"),
        ]
    )
    assert rc == 0 and "rte" in capsys.readouterr().out
    rc = main(
        [
            "finetune",
            "--model",
            str(tiny_model_dir),
            "--dims",
            "3,99",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert rc == 2 and "dimension 99 is out of range" in capsys.readouterr().err


def _write_table(path: Path, rows: list[tuple], header: tuple) -> Path:
    path.write_text("\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n")
    return path


def test_cli_finetune_on_own_files(tiny_model_dir, tmp_path, capsys):
    """--train-data/--eval-data: a custom classification task and a custom regression."""
    from cli import main

    words = ["good", "bad", "fine", "awful", "nice", "dull"]
    rows = [(f"it was {words[i % 6]} {i}", "pos" if i % 2 == 0 else "neg") for i in range(40)]
    tr = _write_table(tmp_path / "train.csv", rows[:30], ("sentence", "label"))
    ev = _write_table(tmp_path / "dev.csv", rows[30:], ("sentence", "label"))
    common = [
        "--model",
        str(tiny_model_dir),
        "--text-col",
        "sentence",
        "--label-col",
        "label",
        "--dims",
        "3,17",
        "--epochs",
        "1",
        "--max-length",
        "16",
        "--batch-size",
        "8",
        "--device",
        "cpu",
    ]
    rc = main(
        [
            "finetune",
            "--train-data",
            str(tr),
            "--eval-data",
            str(ev),
            *common,
            "--out",
            str(tmp_path / "c"),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    rec = json.loads((tmp_path / "c" / "result.json").read_text())
    assert "custom" in rec["heads"] and "accuracy" in rec["metrics"]
    assert "train.csv" in capsys.readouterr().out

    bad = _write_table(tmp_path / "bad.csv", [("it was odd", "meh")], ("sentence", "label"))
    rc = main(
        [
            "finetune",
            "--train-data",
            str(tr),
            "--eval-data",
            str(bad),
            *common,
            "--out",
            str(tmp_path / "b"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "bad.csv" in err and "meh" in err
    rc = main(
        [
            "finetune",
            "--train-data",
            str(tr),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(tmp_path / "m"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "--eval-data" in err and "--text-col" in err

    reg = [(f"it was {words[i % 6]} {i}", f"{(i % 6) / 5:.2f}") for i in range(30)]
    tr = _write_table(tmp_path / "rtrain.csv", reg[:20], ("sentence", "score"))
    ev = _write_table(tmp_path / "rdev.csv", reg[20:], ("sentence", "score"))
    common[common.index("label")] = "score"
    rc = main(
        [
            "finetune",
            "--train-data",
            str(tr),
            "--eval-data",
            str(ev),
            "--regression",
            *common,
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert "pearson" in json.loads((tmp_path / "r" / "result.json").read_text())["metrics"]


# ------------------------------------------------------------------------------------- integration


@pytest.mark.integration
def test_minilm_sst2_beats_majority(shared_glue, tmp_path):
    train = load_task("sst2", "train", glue_dir=shared_glue, limit=2000)
    dev = load_task("sst2", "dev", glue_dir=shared_glue)
    majority = max(dev.labels.mean(), 1 - dev.labels.mean())
    cfg = FinetuneConfig(model="minilm", task="sst2", dims="all", epochs=1, max_length=64, lr=5e-5)
    r = finetune(
        cfg,
        device="cpu",
        out_dir=tmp_path / "sst2",
        train_data=train,
        eval_data=dev,
        progress=False,
    )
    assert (
        r.record["data"]["sst2"]["train"]["n"] == 2000
        and r.record["data"]["sst2"]["eval"]["n"] == 872
    )
    assert r.metrics["accuracy"] > majority + 0.1, (r.metrics, majority)


def test_amp_auto_follows_the_gpu_generation(monkeypatch):
    """auto: bf16 on Ampere and newer; fp16 with loss scaling on older cards (V100, T4)."""
    from probekit.finetune.train import _amp_settings

    cuda = torch.device("cuda:1")
    asked = []

    def capability(device):
        asked.append(device)
        return cap

    monkeypatch.setattr(torch.cuda, "get_device_capability", capability)
    cap = (8, 0)
    assert _amp_settings("auto", cuda) == (True, torch.bfloat16, False)
    cap = (7, 5)
    assert _amp_settings("auto", cuda) == (True, torch.float16, True)
    assert asked == [cuda, cuda]  # the device asked about is the training device
    assert _amp_settings("auto", torch.device("cpu")) == (False, None, False)
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        _amp_settings("bf16", torch.device("cpu"))
