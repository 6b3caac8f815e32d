"""RunConfig (the settings of `probekit run`) and its deprecated name StudyConfig."""

from __future__ import annotations

import dataclasses

import pytest

from probekit.pipeline import REUSE_FIELDS, RunConfig, StudyConfig


def test_run_config_defaults_pick_no_device():
    assert RunConfig().device == "cpu" and RunConfig().seed == 0


def test_study_config_is_a_deprecated_alias():
    with pytest.warns(DeprecationWarning, match="StudyConfig is deprecated; use"):
        cfg = StudyConfig(task="sst2", k=2)
    assert isinstance(cfg, RunConfig)
    assert dataclasses.asdict(cfg) == dataclasses.asdict(RunConfig(task="sst2", k=2))


def test_a_reused_cache_is_checked_on_every_identity_field():
    for field in ("model_hash", "tokenizer", "max_length", "compute_dtype", "task", "data_hash"):
        assert field in REUSE_FIELDS
