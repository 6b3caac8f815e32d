"""Fine-tuning the real embedded MiniLM on real SST-2 (``../shared/glue``)."""

from __future__ import annotations

import pytest

from probekit.finetune import FinetuneConfig, HeadConfig, finetune
from probekit.tasks import load_task


@pytest.mark.integration
def test_minilm_sst2_beats_majority(shared_glue, tmp_path):
    train = load_task("sst2", "train", glue_dir=shared_glue, limit=2000)
    dev = load_task("sst2", "dev", glue_dir=shared_glue)
    majority = max(dev.labels.mean(), 1 - dev.labels.mean())
    cfg = FinetuneConfig(
        model="minilm", task="sst2", head=HeadConfig(dims="all"), epochs=1, max_length=64, lr=5e-5
    )
    r = finetune(
        cfg,
        device="cpu",
        out_dir=tmp_path / "sst2",
        train_data=train,
        eval_data=dev,
        progress=False,
    )
    assert (
        r.record["data"]["sst2"]["train"]["n"] == 2000
        and r.record["data"]["sst2"]["eval"]["n"] == 872
    )
    assert r.metrics["accuracy"] > majority + 0.1, (r.metrics, majority)
