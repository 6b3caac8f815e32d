"""Freezing specs."""

from __future__ import annotations

import pytest

from probekit.errors import ConfigError
from probekit.finetune import apply_freeze, parse_freeze


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


def test_parse_freeze():
    assert parse_freeze(" Bottom-3 ") == ("bottom", 3)
    assert parse_freeze("encoder") == ("encoder", 0)
    with pytest.raises(ConfigError, match="freeze 'top-2' is not one of"):
        parse_freeze("top-2")
