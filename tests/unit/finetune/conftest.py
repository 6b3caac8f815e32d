"""Fixtures of the fine-tuning unit tests: one torch thread, GLUE-layout files, a small config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
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
