"""Models: encoders only, and one device check for every command."""

from __future__ import annotations

import pytest
import torch

from probekit.errors import ConfigError, ModelError
from probekit.models import load_encoder, resolve_device


def test_non_encoder_model_is_refused(tmp_path):
    from transformers import GPT2Config

    d = tmp_path / "gpt"
    GPT2Config(n_layer=1, n_embd=16, n_head=2).save_pretrained(d)
    with pytest.raises(ModelError, match="not a BERT-family encoder"):
        load_encoder(str(d), device="cpu")
    with pytest.raises(ModelError, match=r"no config\.json"):
        load_encoder(str(tmp_path), device="cpu")


def test_auto_device_under_torchrun_takes_local_rank(monkeypatch):
    """``--device auto`` in a torchrun process picks cuda:LOCAL_RANK, not cuda:0 for every shard."""
    from probekit.models import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert resolve_device("auto") == torch.device("cuda:2")
    monkeypatch.delenv("LOCAL_RANK")
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize(
    "name, message",
    [
        ("bogus", "unknown device 'bogus'"),
        ("cuda:x", "unknown device 'cuda:x'"),
        ("meta", "unknown device 'meta'"),
    ],
)
def test_unknown_devices_are_config_errors(name, message):
    with pytest.raises(ConfigError, match=message):
        resolve_device(name)


def test_missing_accelerators_are_config_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    for name in ("cuda", "cuda:1", torch.device("cuda")):
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device(name)
    with pytest.raises(ConfigError, match="MPS is not available"):
        resolve_device("MPS")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match="has 2 CUDA device"):
        resolve_device("cuda:2")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
