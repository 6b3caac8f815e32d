"""The package ``probekit.finetune``: every public name importable as before, each from its
module on first use, and the settings (what ``--help`` shows) readable without torch."""

from __future__ import annotations

import dataclasses
import importlib
import json
import subprocess
import sys

import pytest

import probekit.finetune as ft
from probekit.finetune.head_config import ACTIVATION_NAMES, POOLS
from probekit.pooling import POOLINGS


@pytest.mark.parametrize("name", ft.__all__)
def test_every_public_name_imports_from_the_package(name):
    namespace: dict = {}
    exec(f"from probekit.finetune import {name}", namespace)
    home = importlib.import_module(f"probekit.finetune.{ft._HOMES[name]}")
    assert namespace[name] is getattr(home, name)
    assert name in dir(ft)


def test_the_lazy_table_is_the_public_list():
    assert sorted(ft._HOMES) == sorted(ft.__all__)
    namespace: dict = {}
    exec("from probekit.finetune import *", namespace)
    assert set(ft.__all__) <= set(namespace)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        ft.no_such_name  # noqa: B018
    with pytest.raises(ImportError, match="no_such_name"):
        exec("from probekit.finetune import no_such_name", {})


def test_old_homes_still_export_the_settings():
    from probekit.finetune import heads, train

    assert heads.HeadConfig is ft.HeadConfig and heads.POOLS == POOLS == POOLINGS
    assert heads.parse_dims is ft.parse_dims and heads.TOKENS is ft.TOKENS
    assert tuple(heads.ACTIVATIONS) == ACTIVATION_NAMES
    assert train.FinetuneConfig is ft.FinetuneConfig and train.finetune is ft.finetune


def test_finetune_config_fields_and_defaults_are_unchanged():
    defaults = {
        f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        for f in dataclasses.fields(ft.FinetuneConfig)
    }
    assert defaults == {
        "model": "minilm",
        "task": "demo",
        "head": ft.HeadConfig(dims="all"),
        "freeze": "none",
        "lr": 2e-5,
        "head_lr": None,
        "batch_size": 32,
        "grad_accum": 1,
        "eval_batch_size": 64,
        "epochs": 3,
        "max_length": 128,
        "warmup_ratio": 0.1,
        "weight_decay": 0.01,
        "max_grad_norm": 1.0,
        "seed": 0,
        "mixed_precision": "auto",
        "limit": None,
        "eval_limit": None,
        "eval_split": "dev",
        "checkpoint_every": 500,
    }
    head = {f.name: f.default for f in dataclasses.fields(ft.HeadConfig)}
    assert head == {
        "input_size": None,
        "num_labels": None,
        "dims": None,
        "layer": -1,
        "pool": "cls",
        "include_cls": False,
        "head_layers": 1,
        "hidden": None,
        "activation": "tanh",
        "dropout": 0.0,
        "regression": False,
        "task": "",
    }


# reads, checks and records the settings, then prints the heavy modules that got imported
_SETTINGS = """
import json, sys
import probekit.finetune as ft
from probekit.finetune import FinetuneConfig, HeadConfig, parse_freeze, study_recipe
cfg = FinetuneConfig(**study_recipe(), head=HeadConfig(dims="3,17", pool="max_norm"))
FinetuneConfig.from_dict(cfg.to_dict())
HeadConfig.from_dict(cfg.head.to_dict())
parse_freeze("bottom-2")
heavy = ("torch", "transformers", "sklearn", "matplotlib", "datasets", "numpy")
print(json.dumps([m for m in heavy if m in sys.modules]))
"""


def test_settings_import_no_torch():
    """Nor numpy: a template's dims stay as given until the head is bound."""
    proc = subprocess.run(
        [sys.executable, "-c", _SETTINGS], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
