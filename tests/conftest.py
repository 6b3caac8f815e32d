"""Shared fixtures.

Fast unit tests use a tiny randomly initialised BERT (no downloads: the tokenizer is the
embedded MiniLM's, loaded from site-packages). Integration tests use the real embedded
model on real GLUE data from ``../shared/glue`` and skip, with a message, when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_GLUE = Path(os.environ.get("PROBEKIT_GLUE_DIR", REPO.parent / "shared" / "glue"))


@pytest.fixture(scope="session")
def shared_glue() -> Path:
    """The real GLUE files of ``../shared/glue`` (skips when absent)."""
    if not (SHARED_GLUE / "SST-2" / "dev.tsv").is_file():
        pytest.skip(f"real GLUE data not found at {SHARED_GLUE} (set PROBEKIT_GLUE_DIR)")
    return SHARED_GLUE


@pytest.fixture(scope="session")
def minilm_tokenizer():
    from transformers import AutoTokenizer

    from probekit.models import embedded_model_dir

    return AutoTokenizer.from_pretrained(str(embedded_model_dir()))


def tiny_bert_config(**kw):
    from transformers import BertConfig

    base = dict(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    base.update(kw)
    return BertConfig(**base)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, minilm_tokenizer) -> Path:
    """A saved tiny random BERT (2 layers, hidden 32) with the MiniLM tokenizer."""
    import torch
    from transformers import BertModel

    torch.manual_seed(0)
    model = BertModel(tiny_bert_config()).eval()
    out = tmp_path_factory.mktemp("tiny_bert")
    model.save_pretrained(out)
    minilm_tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def minilm(tmp_path_factory):
    """The real embedded model (all-MiniLM-L6-v2), on the CPU."""
    from probekit.models import load_encoder

    return load_encoder("minilm", device="cpu")


@pytest.fixture(scope="session")
def minilm_cache(tmp_path_factory, shared_glue, minilm):
    """Factory ``minilm_cache(task, split, limit=None) -> Path``: a MiniLM cache of real GLUE
    data from ``../shared/glue`` (pooled views only), built once per session."""
    from probekit.extract import extract
    from probekit.tasks import load_task

    root = tmp_path_factory.mktemp("minilm_caches")
    made: dict = {}

    def make(task: str, split: str, limit: int | None = None) -> Path:
        key = (task, split, limit)
        if key not in made:
            data = load_task(task, split, glue_dir=shared_glue, limit=limit)
            out = root / f"{task}-{split}-{limit or 'all'}.h5"
            extract(minilm, data, out, store_tokens=False, max_length=128, progress=False)
            made[key] = out
        return made[key]

    return make


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def glue_fixture(tmp_path_factory) -> Path:
    """Small RTE (pairs), STS-B (regression) and SST-2 train/dev files of random words in the
    GLUE download layout (48 train, 24 dev rows each): the one GLUE-layout fixture."""
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


@pytest.fixture(scope="session")
def tiny_caches(tmp_path_factory, tiny_model_dir):
    """Demo-task caches (train 240, dev 120; pooled views only) of the tiny BERT:
    ``{"train": Path, "dev": Path}``, built once per session."""
    from probekit.extract import extract
    from probekit.models import load_encoder
    from probekit.tasks import load_task

    lm = load_encoder(str(tiny_model_dir), device="cpu")
    out = tmp_path_factory.mktemp("tiny_caches")
    paths = {}
    for split, limit in (("train", 240), ("dev", 120)):
        paths[split] = out / f"demo-{split}.h5"
        extract(lm, load_task("demo", split, limit=limit), paths[split], store_tokens=False)
    return paths
