"""FinetuneConfig: validation, the head it holds, the old flat keywords, its record."""

from __future__ import annotations

import pytest

from probekit.errors import ConfigError
from probekit.finetune import FinetuneConfig, HeadConfig, finetune, study_recipe
from probekit.models import DEFAULT_MODEL


def test_config_validation(ft_cfg, tmp_path):
    with pytest.raises(ConfigError, match="freeze 'top-2'"):
        FinetuneConfig(freeze="top-2")
    with pytest.raises(ConfigError, match="batch_size"):
        FinetuneConfig(batch_size=0)
    with pytest.raises(ConfigError, match="limit must be at least 1"):
        FinetuneConfig(limit=0)
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        finetune(ft_cfg(mixed_precision="fp16"), device="cpu", out_dir=tmp_path / "x")
    with pytest.raises(ConfigError, match="layer 7 is out of range"):
        finetune(ft_cfg(layer=7), device="cpu", out_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_defaults():
    cfg = FinetuneConfig()
    assert cfg.model == DEFAULT_MODEL and cfg.seed == 0
    assert cfg.head == HeadConfig(dims="all") and not cfg.head.bound
    assert FinetuneConfig().head is not cfg.head  # not shared between configs


def test_flat_keywords_are_deprecated_aliases():
    with pytest.warns(DeprecationWarning) as caught:
        old = FinetuneConfig(
            dims="3,17",
            layer=1,
            token="max_norm",
            include_cls=True,
            head_layers=2,
            head_hidden=8,
            head_activation="gelu",
            head_dropout=0.1,
            max_train_examples=10,
            max_eval_examples=5,
        )
    assert len(caught) == 10 and "'token' is deprecated" in " ".join(str(w.message) for w in caught)
    new = FinetuneConfig(
        head=HeadConfig(
            dims="3,17",
            layer=1,
            pool="max_norm",
            include_cls=True,
            head_layers=2,
            hidden=8,
            activation="gelu",
            dropout=0.1,
        ),
        limit=10,
        eval_limit=5,
    )
    assert old == new
    with pytest.warns(DeprecationWarning, match="'head_dropout' is deprecated"):
        assert old.head_dropout == 0.1
    with pytest.warns(DeprecationWarning, match="'max_train_examples' is deprecated"):
        assert old.max_train_examples == 10
    with pytest.raises(ConfigError, match="disagree"):
        FinetuneConfig(limit=3, max_train_examples=4)


def test_record_keeps_the_flat_layout_and_reads_old_records():
    cfg = FinetuneConfig(head=HeadConfig(dims="0-3", pool="mean", head_layers=2), limit=7)
    rec = cfg.to_dict()
    assert rec["dims"] == "0-3" and rec["pool"] == rec["token"] == "mean"
    assert rec["head_layers"] == 2 and rec["head_hidden"] is None
    assert rec["limit"] == rec["max_train_examples"] == 7 and rec["seed"] == 0
    assert "head" not in rec
    assert FinetuneConfig.from_dict(rec) == cfg
    v01 = {k: v for k, v in rec.items() if k not in ("pool", "limit", "eval_limit")}
    assert FinetuneConfig.from_dict(v01) == cfg
    assert cfg.legacy_dict() == v01


def test_study_recipe_is_a_valid_set_of_overrides():
    recipe = study_recipe()
    cfg = FinetuneConfig(**recipe)
    assert {k: getattr(cfg, k) for k in recipe} == recipe
    assert recipe["head_lr"] > recipe["lr"]  # tiny heads learn faster than the encoder
    recipe["head_lr"] = 1.0
    assert study_recipe()["head_lr"] != 1.0  # a new dict each call
