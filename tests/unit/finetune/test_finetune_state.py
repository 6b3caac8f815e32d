"""Run ids (pinned: runs started before the restructure keep theirs) and checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from probekit.errors import ConfigError
from probekit.finetune import FinetuneConfig, HeadConfig, finetune, run_fingerprint, run_id
from probekit.tasks import get_task


def _id(cfg: FinetuneConfig, task: str, train_fp: str) -> str:
    head = cfg.head.bind(get_task(task), 384, 7)
    fp = run_fingerprint(
        cfg,
        model="minilm",
        mode="alternate",
        precision="float32",
        heads={task: head},
        train={task: train_fp},
    )
    return run_id(fp)


def test_run_ids_are_those_of_probekit_0_1():
    """Known configs -> the ids probekit 0.1 gave them (so their checkpoints resume)."""
    cfg = FinetuneConfig(
        model="minilm",
        task="demo",
        head=HeadConfig(dims="3,17", pool="max_norm", head_layers=2),
        seed=42,
        limit=100,
    )
    assert _id(cfg, "demo", "f00d") == "0726427e38c35f79"
    assert _id(FinetuneConfig(seed=42), "sst2", "beef") == "cdd7ae7b4cfa2715"
    # what does not count: the checkpoint interval and the eval batch size
    assert _id(FinetuneConfig(seed=42, checkpoint_every=7, eval_batch_size=3), "sst2", "beef") == (
        "cdd7ae7b4cfa2715"
    )


def test_checkpoint_is_a_plain_state_dict(ft_cfg, tmp_path):
    cfg = ft_cfg(epochs=2)
    finetune(cfg, device="cpu", out_dir=tmp_path / "r", progress=False, stop_after_steps=3)
    ckpt = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    assert ckpt["format"] == 2 and (ckpt["epoch"], ckpt["micro"], ckpt["global_step"]) == (0, 3, 3)
    assert isinstance(ckpt["history"], list) and isinstance(ckpt["partial_epoch"], dict)
    assert ckpt["partial_epoch"]["n_examples"] == 48 and ckpt["elapsed_s"] > 0
    assert not any(isinstance(v, str) and v.startswith(("{", "[")) for v in ckpt.values())


def _as_v01(path) -> None:
    """Rewrite a checkpoint the way probekit 0.1 wrote it (JSON strings inside)."""
    ckpt = torch.load(path, weights_only=True)
    ckpt.pop("format")
    ckpt["history"] = json.dumps(ckpt["history"])
    ckpt["partial_epoch"] = json.dumps(ckpt["partial_epoch"])
    ckpt["seconds"] = ckpt.pop("elapsed_s")
    torch.save(ckpt, path)


def test_old_checkpoints_resume_to_the_same_run(ft_cfg, tmp_path):
    cfg = ft_cfg(epochs=2)
    full = finetune(cfg, device="cpu", out_dir=tmp_path / "full", progress=False)
    finetune(cfg, device="cpu", out_dir=tmp_path / "cut", progress=False, stop_after_steps=5)
    _as_v01(tmp_path / "cut" / "checkpoint.pt")
    done = finetune(cfg, device="cpu", out_dir=tmp_path / "cut", progress=False)
    assert done.metrics == full.metrics
    assert [e["train_loss"] for e in done.record["epochs"]] == [
        e["train_loss"] for e in full.record["epochs"]
    ]


def test_unreadable_checkpoint_suggests_no_resume(ft_cfg, tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "checkpoint.pt").write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match="--no-resume"):
        finetune(ft_cfg(), device="cpu", out_dir=tmp_path / "r", progress=False)
    r = finetune(ft_cfg(), device="cpu", out_dir=tmp_path / "r", progress=False, resume=False)
    assert r.complete
