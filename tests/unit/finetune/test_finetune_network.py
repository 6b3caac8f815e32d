"""Mixed precision settings of the training network."""

from __future__ import annotations

import pytest
import torch

from probekit.errors import ConfigError
from probekit.finetune.network import precision_settings


def test_amp_auto_follows_the_gpu_generation(monkeypatch):
    """auto: bf16 on Ampere and newer; fp16 with loss scaling on older cards (V100, T4)."""
    cuda = torch.device("cuda:1")
    asked = []

    def capability(device):
        asked.append(device)
        return cap

    monkeypatch.setattr(torch.cuda, "get_device_capability", capability)
    cap = (8, 0)
    assert precision_settings("auto", cuda) == (True, torch.bfloat16, False)
    cap = (7, 5)
    assert precision_settings("auto", cuda) == (True, torch.float16, True)
    assert asked == [cuda, cuda]  # the device asked about is the training device
    assert precision_settings("auto", torch.device("cpu")) == (False, None, False)
    assert precision_settings("auto", torch.device("cpu")).name is None
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        precision_settings("bf16", torch.device("cpu"))
