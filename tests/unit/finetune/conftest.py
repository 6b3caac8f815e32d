"""Fixtures of the fine-tuning unit tests: one torch thread, GLUE-layout files, a small config."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread (restored after): on this shared, oversubscribed 2-core machine a
    training step runs 2-3x faster on one thread than on two."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


_HEAD_FIELDS = ("dims", "layer", "pool", "include_cls", "head_layers", "hidden", "activation")


@pytest.fixture
def ft_cfg(tiny_model_dir):
    """``ft_cfg(**overrides) -> FinetuneConfig``: a one-epoch CPU-sized run of the tiny BERT.

    Head settings (``dims``, ``layer``, ``pool``, ``include_cls``, ``head_layers``,
    ``hidden``, ``activation``, ``dropout``) go into ``config.head``; the rest into the config.
    """
    from probekit.finetune import FinetuneConfig, HeadConfig

    def make(**kw):
        head = {"dims": "3,17"}
        head.update({k: kw.pop(k) for k in (*_HEAD_FIELDS, "dropout") if k in kw})
        base = dict(
            model=str(tiny_model_dir),
            task="demo",
            epochs=1,
            batch_size=16,
            lr=1e-3,
            head_lr=1e-2,
            max_length=32,
            limit=64,
            eval_limit=32,
            checkpoint_every=0,
            seed=3,
        )
        base.update(kw)
        return FinetuneConfig(head=HeadConfig(**head), **base)

    return make
