"""Extraction with the real embedded MiniLM on real SST-2 dev (``../shared/glue``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probekit.cache import ActivationCache, describe
from probekit.extract import extract
from probekit.tasks import load_task


def _check_against_direct(lm, data, path, rows) -> None:
    """Token vectors of ``rows`` equal a plain transformers pass over each example alone."""
    with ActivationCache(path) as c:
        off = c.offsets
        for layer in range(c.n_layers):
            V, _ = c.tokens(layer)
            for i in rows:
                enc = lm.tokenizer(
                    data.texts[i], return_tensors="pt", max_length=128, truncation=True
                )
                with torch.inference_mode():
                    ref = lm.model(**enc, output_hidden_states=True).hidden_states[layer][0]
                got = V[off[i] : off[i + 1]].astype(np.float32)
                np.testing.assert_allclose(got, ref.numpy(), rtol=2e-3, atol=2e-3)


@pytest.mark.integration
def test_real_minilm_on_sst2_dev(minilm, shared_glue, tmp_path):
    data = load_task("sst2", "dev", glue_dir=shared_glue)
    rep = extract(minilm, data, tmp_path / "sst2-dev.h5", progress=False)
    assert rep.n_examples == 872 and rep.n_layers == 7 and rep.hidden_size == 384
    _check_against_direct(minilm, data, rep.path, [0, 1, 100, 871])
    info = describe(rep.path)
    assert info["meta"]["model"] == "minilm" and info["meta"]["complete"]
    with ActivationCache(rep.path) as c:
        assert c.labels.tolist() == data.labels.tolist()
        assert (np.linalg.norm(c.features(-1, "max_norm", dtype=np.float32), axis=1) > 0).all()
