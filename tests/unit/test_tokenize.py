"""probekit.tokenize: the one encode + collate, and that extraction and fine-tuning feed the
encoder identical tensors and pool identical vectors from them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probekit.errors import ConfigError
from probekit.tasks import TaskData, get_task, load_demo
from probekit.tokenize import collate, encode, pad_id, uses_token_types


def _pairs(n: int = 9) -> TaskData:
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "while", "dogs", "ran", "far", "away"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(2, 12)))) for _ in range(n)]
    pairs = [" ".join(rng.choice(words, size=int(rng.integers(1, 6)))) for _ in range(n)]
    labels = np.arange(n, dtype=np.int64) % 2
    return TaskData(get_task("rte"), "dev", texts, pairs, labels, np.arange(n), "pairs")


def test_encode_truncates_counts_and_keeps_pairs(minilm_tokenizer):
    data = _pairs()
    enc = encode(minilm_tokenizer, data, 8)
    assert len(enc) == 9 and enc.lengths.max() == 8
    assert enc.n_truncated == int(
        sum(len(x) > 8 for x in encode(minilm_tokenizer, data, 512).input_ids)
    )
    assert set(np.concatenate([np.asarray(s) for s in enc.sequence_ids])) == {-1, 0, 1}
    lean = encode(minilm_tokenizer, data, 8, positions=False)
    assert lean.word_ids is None and lean.sequence_ids is None
    assert lean.input_ids == enc.input_ids and lean.token_type_ids == enc.token_type_ids
    with pytest.raises(ConfigError, match="max_length 3 is too small"):
        encode(minilm_tokenizer, data, 3)


def test_collate_pads_on_the_right(minilm_tokenizer):
    enc = encode(minilm_tokenizer, _pairs(), 32)
    rows = np.array([4, 0, 2])
    b = collate(enc, rows, pad_id=7, token_types=True)
    n = enc.lengths[rows]
    assert b["input_ids"].shape == (3, n.max()) and b["input_ids"].dtype == torch.int64
    for j, i in enumerate(rows):
        assert b["input_ids"][j, : n[j]].tolist() == enc.input_ids[i]
        assert (b["input_ids"][j, n[j] :] == 7).all()
        assert b["attention_mask"][j].tolist() == [1] * n[j] + [0] * (n.max() - n[j])
        assert (b["special_tokens_mask"][j, n[j] :] == 1).all()
        assert (b["token_type_ids"][j, n[j] :] == 0).all()
    assert "token_type_ids" not in collate(enc, rows, pad_id=0, token_types=False)
    assert pad_id(minilm_tokenizer) == minilm_tokenizer.pad_token_id


def test_token_types_only_for_models_with_segments():
    class M:
        def __init__(self, n):
            self.config = type("C", (), {"type_vocab_size": n})()

    assert uses_token_types(M(2)) and not uses_token_types(M(1)) and not uses_token_types(M(0))


@pytest.mark.parametrize("data", [load_demo("dev", limit=10), _pairs()], ids=["single", "pairs"])
def test_finetune_and_extraction_batches_are_identical(tiny_model_dir, data):
    """A fine-tuning batch and an extraction batch of the same examples: the same input
    tensors reach the encoder, and the head pools what the cache stores."""
    from probekit.extract import encode as extract_encode
    from probekit.extract import process_batch
    from probekit.finetune import HeadConfig, SelectedDimHead
    from probekit.finetune.data import encode_split, make_batch
    from probekit.finetune.network import EncoderWithHeads
    from probekit.models import load_encoder

    lm = load_encoder(str(tiny_model_dir), device="cpu")
    seen: list[dict] = []
    original = lm.model.forward

    def spy(*args, **kw):
        seen.append({k: v.clone() for k, v in kw.items() if isinstance(v, torch.Tensor)})
        return original(*args, **kw)

    lm.model.forward = spy
    rows = np.arange(len(data))[::-1].copy()
    enc = extract_encode(lm.tokenizer, data, 32)
    pooled, _ = process_batch(lm, enc, rows, "float32")
    split = encode_split(lm.tokenizer, data, 32)
    batch = make_batch(
        split,
        rows,
        pad_id=pad_id(lm.tokenizer),
        token_types=uses_token_types(lm.model),
        device=lm.device,
    )
    heads = {
        p: SelectedDimHead(HeadConfig(input_size=32, num_labels=2, layer=1, pool=p))
        for p in ("cls", "mean", "max_norm")
    }
    net = EncoderWithHeads(lm.model, heads, lm.n_layers).eval()
    with torch.no_grad():
        feats = net.features(batch, list(heads))
    x, f = seen
    assert x.keys() == f.keys() and ("token_type_ids" in x) == uses_token_types(lm.model)
    for k in x:
        assert torch.equal(x[k], f[k]), k
    for p, v in feats.items():
        np.testing.assert_array_equal(v.numpy(), pooled[p][:, 1], err_msg=p)
